"""Metrics by name and scorers for ``scoring=`` of scikit-learn's searches and cross-validation."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.metrics import get_scorer, make_scorer

from skpercept.metrics._ordering import kendall_tau, pairwise_accuracy, spearman_rho
from skpercept.metrics._proba import brier_score, expected_calibration_error
from skpercept.metrics._ratings import quadratic_weighted_kappa, rating_mae

__all__ = [
    "METRICS",
    "kendall_tau_scorer",
    "neg_brier_scorer",
    "neg_ece_scorer",
    "neg_rating_mae_scorer",
    "pairwise_accuracy_scorer",
    "percept_scorer",
    "qwk_scorer",
    "spearman_rho_scorer",
]

#: The metrics by name (``per_user_report(metrics=[...])`` takes these names).
METRICS: dict[str, Callable] = {
    "pairwise_accuracy": pairwise_accuracy,
    "kendall_tau": kendall_tau,
    "spearman_rho": spearman_rho,
    "rating_mae": rating_mae,
    "quadratic_weighted_kappa": quadratic_weighted_kappa,
    "brier_score": brier_score,
    "expected_calibration_error": expected_calibration_error,
}

# name -> (metric, greater_is_better, response_method)
_SCORER_SPECS: dict[str, tuple[Callable, bool, str]] = {
    "pairwise_accuracy": (pairwise_accuracy, True, "predict"),
    "kendall_tau": (kendall_tau, True, "predict"),
    "spearman_rho": (spearman_rho, True, "predict"),
    "neg_rating_mae": (rating_mae, False, "predict"),
    "quadratic_weighted_kappa": (quadratic_weighted_kappa, True, "predict"),
    "neg_brier_score": (brier_score, False, "predict_proba"),
    "neg_expected_calibration_error": (expected_calibration_error, False, "predict_proba"),
}


def percept_scorer(name: str, **kwargs):
    """A scorer for ``scoring=`` by name, with optional metric keyword arguments.

    Named so as not to shadow :func:`sklearn.metrics.get_scorer`, which it falls back to.
    skpercept's names: ``'pairwise_accuracy'``, ``'kendall_tau'``, ``'spearman_rho'``,
    ``'neg_rating_mae'``, ``'quadratic_weighted_kappa'``, ``'neg_brier_score'``,
    ``'neg_expected_calibration_error'`` (the last two call ``predict_proba``). Any other name
    is looked up in :func:`sklearn.metrics.get_scorer`.

    Parameters
    ----------
    name : str
    **kwargs
        Passed to the metric, e.g. ``labels=[1, 2, 3, 4]`` or ``n_bins=15``.

    Examples
    --------
    >>> from skpercept.metrics import percept_scorer
    >>> scorer = percept_scorer("neg_brier_score", labels=[1, 2, 3, 4])
    """
    if name not in _SCORER_SPECS:
        if kwargs:
            raise ValueError(f"{name!r} is not a skpercept scorer; it takes no kwargs here.")
        return get_scorer(name)
    fn, greater, method = _SCORER_SPECS[name]
    return make_scorer(fn, greater_is_better=greater, response_method=method, **kwargs)


#: Scorer of :func:`~skpercept.metrics.pairwise_accuracy` (greater is better; calls ``predict``).
pairwise_accuracy_scorer = percept_scorer("pairwise_accuracy")
#: Scorer of :func:`~skpercept.metrics.kendall_tau` (greater is better; calls ``predict``).
kendall_tau_scorer = percept_scorer("kendall_tau")
#: Scorer of :func:`~skpercept.metrics.spearman_rho` (greater is better; calls ``predict``).
spearman_rho_scorer = percept_scorer("spearman_rho")
#: Scorer of :func:`~skpercept.metrics.rating_mae`, negated so that greater is better (calls
#: ``predict``).
neg_rating_mae_scorer = percept_scorer("neg_rating_mae")
#: Scorer of :func:`~skpercept.metrics.quadratic_weighted_kappa` (greater is better; calls
#: ``predict``).
qwk_scorer = percept_scorer("quadratic_weighted_kappa")
#: Scorer of :func:`~skpercept.metrics.brier_score`, negated so that greater is better (calls
#: ``predict_proba``).
neg_brier_scorer = percept_scorer("neg_brier_score")
#: Scorer of :func:`~skpercept.metrics.expected_calibration_error`, negated so that greater is
#: better (calls ``predict_proba``).
neg_ece_scorer = percept_scorer("neg_expected_calibration_error")
