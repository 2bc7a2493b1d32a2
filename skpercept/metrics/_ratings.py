"""How close predicted ratings come to the people's: mean absolute error, quadratic weighted kappa."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score

from skpercept.metrics._inputs import paired, per_column, reduce_outputs

__all__ = ["quadratic_weighted_kappa", "rating_mae"]


def rating_mae(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Mean absolute error of ratings, ignoring missing (NaN) labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.metrics import rating_mae
    >>> rating_mae([[1, 4], [2, np.nan]], [[2, 4], [2, 1]])  # attribute MAEs 0.5 and 0
    0.25
    """
    t, p, one_d = paired(y_true, y_pred)
    return reduce_outputs(per_column(t, p, lambda a, b: np.mean(np.abs(a - b))), multioutput, one_d)


def quadratic_weighted_kappa(y_true, y_pred, *, labels=None, multioutput: str = "uniform_average"):
    """Cohen's kappa with quadratic weights (agreement on an ordinal scale, chance-corrected).

    A thin NaN-masking, multi-attribute wrapper of
    ``sklearn.metrics.cohen_kappa_score(weights='quadratic')``. Weights use the *positions*
    of the levels in ``labels``, so pass the full scale (e.g. ``labels=[1, 2, 3, 4]``) to keep
    scores comparable across folds that miss a level. Predictions must be rating levels:
    round a regressor's output first.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_attributes)
    labels : array-like or None, default=None
        The rating levels; default: those present in ``y_true`` or ``y_pred``.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Examples
    --------
    >>> from skpercept.metrics import quadratic_weighted_kappa
    >>> quadratic_weighted_kappa([1, 2, 3, 4], [1, 2, 3, 4])
    1.0
    """
    t, p, one_d = paired(y_true, y_pred)
    frac = ~np.isnan(p) & (p != np.round(p))
    if frac.any() and labels is None:
        raise ValueError(
            "quadratic_weighted_kappa needs rating levels, but y_pred has non-integer values "
            f"(e.g. {p[frac][0]!r}); round the predictions or pass labels=."
        )
    kappa = per_column(t, p, lambda a, b: cohen_kappa_score(a, b, labels=labels, weights="quadratic"))
    return reduce_outputs(kappa, multioutput, one_d)
