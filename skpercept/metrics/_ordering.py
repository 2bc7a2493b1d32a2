"""How well predicted pairs and item scores follow the people's order: pair accuracy, Kendall, Spearman."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from skpercept.metrics._inputs import check_unit, paired, per_column, reduce_outputs

__all__ = ["kendall_tau", "pairwise_accuracy", "spearman_rho"]


def pairwise_accuracy(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Share of pairs ordered as the raters ordered them.

    Each pair earns ``y`` if the model prefers left (``y_pred > 0.5``), ``1 - y`` if it prefers
    right (``y_pred < 0.5``) and ``0.5`` if it abstains (``y_pred == 0.5``). For hard labels
    this is plain accuracy; for a soft label ``y`` (the share of raters preferring left) it is
    the expected accuracy against one rater drawn at random, so a tie (``y = 0.5``) earns 0.5
    whatever the model says.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,) or (n_pairs, n_attributes)
        1 = left preferred, 0 = right, values in between = soft labels, NaN = missing.
    y_pred : array-like of the same shape
        Predicted labels (0/1) or probabilities ``P(left ≻ right)``.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Returns
    -------
    score : float or ndarray of shape (n_attributes,)

    Examples
    --------
    >>> from skpercept.metrics import pairwise_accuracy
    >>> pairwise_accuracy([1, 0, 1, 0.5], [0.9, 0.2, 0.4, 0.7])
    0.625
    """
    t, p, one_d = paired(y_true, y_pred)
    check_unit(t, "y_true", "a pair label")
    check_unit(p, "y_pred", "a label or probability")

    def credit(y, q):
        return np.mean(y * (q > 0.5) + (1 - y) * (q < 0.5) + 0.5 * (q == 0.5))

    return reduce_outputs(per_column(t, p, credit), multioutput, one_d)


def _correlation(fn: Callable) -> Callable:
    def corr(y, s):
        if len(y) < 2 or np.ptp(y) == 0 or np.ptp(s) == 0:
            return np.nan  # undefined for fewer than two distinct values
        return fn(y, s).statistic

    return corr


def kendall_tau(y_true, y_score, *, multioutput: str = "uniform_average"):
    """Kendall's τ-b between consensus values and predicted item scores.

    Use it to compare ``score_items`` output with per-item mean ratings (or Bradley–Terry
    scores): only the order matters, not the scale.

    Parameters
    ----------
    y_true : array-like of shape (n_items,) or (n_items, n_attributes)
        Consensus per item; NaN = missing.
    y_score : array-like of the same shape
        Predicted item scores.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Returns
    -------
    tau : float or ndarray
        NaN for an attribute with fewer than two distinct values.

    Examples
    --------
    >>> from skpercept.metrics import kendall_tau
    >>> round(kendall_tau([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.9]), 3)
    0.667
    """
    t, s, one_d = paired(y_true, y_score, "y_score")
    return reduce_outputs(per_column(t, s, _correlation(stats.kendalltau)), multioutput, one_d)


def spearman_rho(y_true, y_score, *, multioutput: str = "uniform_average"):
    """Spearman's ρ between consensus values and predicted item scores (see kendall_tau).

    Examples
    --------
    >>> from skpercept.metrics import spearman_rho
    >>> round(spearman_rho([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.9]), 3)
    0.8
    """
    t, s, one_d = paired(y_true, y_score, "y_score")
    return reduce_outputs(per_column(t, s, _correlation(stats.spearmanr)), multioutput, one_d)
