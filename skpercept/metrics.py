"""Metrics and scorers for human judgments: pairs, ratings, calibration, reliability.

Conventions shared by every metric here:

- ``y_true`` and the prediction may be 1-D, or 2-D with one column per attribute (e.g.
  attractive / smart / trustworthy). ``NaN`` marks a missing label: those entries are ignored
  (masked), never imputed. Shapes must match exactly, or a ValueError says how they differ.
- ``multioutput='uniform_average'`` (default) returns the mean over attributes of the
  per-attribute score; ``'raw_values'`` returns one score per attribute. An attribute without
  a single label is NaN in the raw values and left out of the average.
- Pair labels follow the pair contract: ``1`` where the LEFT item is preferred, ``0`` where the
  right is, soft labels in ``[0, 1]`` (e.g. the share of raters preferring left; ``0.5`` = tie).

Defined here: :func:`pairwise_accuracy`, :func:`kendall_tau`, :func:`spearman_rho` (pairs and
item scores), :func:`rating_mae`, :func:`quadratic_weighted_kappa` (ratings),
:func:`per_user_report`, :func:`per_user_scores` (per person), :data:`METRICS` and the scorers.
Defined in their own modules and re-exported here, so that every metric is found in one place:
:func:`brier_score` and :func:`expected_calibration_error` (probabilities,
``skpercept/_metrics_proba.py``); :func:`map_at_k`, :func:`recall_at_k`,
:func:`retrieval_scorer`, :func:`top1_in_series_accuracy` and :func:`grouping_ari` (photo
collections, ``skpercept/_metrics_photos.py``); :func:`noise_ceiling` and
:func:`pair_order_ceiling` (:mod:`skpercept.reliability`), which say how well any model can do
on a given set of ratings.

Scorers (``pairwise_accuracy_scorer``, ``neg_brier_scorer``, ... or :func:`get_scorer`) plug
into ``scoring=`` of ``GridSearchCV`` / ``cross_val_score``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import cohen_kappa_score, make_scorer
from sklearn.metrics import get_scorer as _sklearn_get_scorer

from skpercept._metrics_inputs import as_float, check_unit, paired, per_column, reduce_outputs

# metrics of a concept of their own live in their own modules; re-exported so all are found here
from skpercept._metrics_photos import (
    grouping_ari,
    map_at_k,
    recall_at_k,
    retrieval_scorer,
    top1_in_series_accuracy,
)
from skpercept._metrics_proba import brier_score, expected_calibration_error
from skpercept.reliability import noise_ceiling, pair_order_ceiling

__all__ = [
    "METRICS",
    "brier_score",
    "expected_calibration_error",
    "get_scorer",
    "grouping_ari",
    "kendall_tau",
    "kendall_tau_scorer",
    "map_at_k",
    "neg_brier_scorer",
    "neg_ece_scorer",
    "neg_rating_mae_scorer",
    "noise_ceiling",
    "pair_order_ceiling",
    "pairwise_accuracy",
    "pairwise_accuracy_scorer",
    "per_user_report",
    "per_user_scores",
    "quadratic_weighted_kappa",
    "qwk_scorer",
    "rating_mae",
    "recall_at_k",
    "retrieval_scorer",
    "spearman_rho",
    "spearman_rho_scorer",
    "top1_in_series_accuracy",
]


# -- pairs and item scores ------------------------------------------------------------------
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


# -- ratings --------------------------------------------------------------------------------
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


# -- per person -----------------------------------------------------------------------------
def per_user_report(
    y_true, y_pred, users, *, metrics: Mapping[str, Callable] | Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per user: number of labels and each metric on that user's rows only.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_attributes)
        NaN in ``y_true`` = missing label.
    users : array-like of shape (n_samples,)
        The user of each row; a missing user id is an error.
    metrics : dict of name -> callable, list of metric names, or None
        Callables take ``(y_true, y_pred)``. Names are those of :data:`METRICS`.
        Default: ``{'pairwise_accuracy': pairwise_accuracy}``.

    Returns
    -------
    report : DataFrame
        Indexed by user (sorted), columns ``n_labels`` then one per metric. A user without any
        non-missing label gets ``n_labels = 0`` and NaN metrics.

    Examples
    --------
    >>> from skpercept.metrics import per_user_report
    >>> report = per_user_report([1, 0, 1, 1], [1, 1, 1, 0], ["ann", "ann", "bob", "bob"])
    >>> report  # doctest: +NORMALIZE_WHITESPACE
          n_labels  pairwise_accuracy
    user
    ann          2                0.5
    bob          2                0.5
    """
    if metrics is None:
        metrics = {"pairwise_accuracy": pairwise_accuracy}
    elif not isinstance(metrics, Mapping):
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"Unknown metric(s) {unknown}; known: {sorted(METRICS)}.")
        metrics = {m: METRICS[m] for m in metrics}
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    u = pd.Series(np.asarray(users, dtype=object).reshape(-1))
    if not len(t) == len(p) == len(u):
        raise ValueError(
            f"y_true, y_pred and users must have the same length; got {len(t)}, {len(p)}, {len(u)}."
        )
    if u.isna().any():
        raise ValueError(f"users has a missing id (NaN/None) at row {int(u.isna().argmax())}.")
    rows = {}
    for user, idx in u.groupby(u, sort=True).indices.items():
        n = int(np.sum(~pd.isna(t[idx])))
        row = {"n_labels": n}
        for name, fn in metrics.items():
            row[name] = fn(t[idx].astype(np.float64), p[idx].astype(np.float64)) if n else np.nan
        rows[user] = row
    report = pd.DataFrame.from_dict(rows, orient="index")
    report.index.name = "user"
    return report


def _rating_accuracy(y_true, y_pred) -> float:
    """Share of exact rating matches over the entries where both are present."""
    keep = ~np.isnan(y_true) & ~np.isnan(y_pred)
    return float(np.mean(y_true[keep] == y_pred[keep])) if keep.any() else float("nan")


def _rating_levels(y_true: np.ndarray, y_pred, labels) -> np.ndarray:
    """Predicted levels: as given, or the most probable class of an (n, n_classes) matrix."""
    pred = as_float(y_pred, "y_pred")
    if pred.ndim == 2 and y_true.ndim == 1 and pred.shape[1] > 1:
        if labels is None or len(labels) != pred.shape[1]:
            raise ValueError(
                f"y_pred looks like probabilities of {pred.shape[1]} classes; pass labels= (the "
                "classifier's classes_, in column order) to turn them into rating levels."
            )
        return np.asarray(labels, dtype=np.float64)[pred.argmax(axis=1)]
    return pred


def per_user_scores(
    y_true, y_pred, users, *, kind: str = "pairs", train_users=None, labels=None
) -> pd.DataFrame:
    """Accuracy per person, with how many training judgments each person had.

    Every judgment counts once: with several attributes (columns), a person's accuracy pools
    all of their judgments rather than averaging attributes, so a person with one
    ``trustworthy`` and ten ``attractive`` judgments is scored on eleven.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_attributes)
        Held-out labels; NaN = not judged. Pairs: 1 = left preferred, 0 = right, soft labels
        in between. Ratings: rating levels.
    y_pred : array-like
        Pairs: ``P(left ≻ right)`` (or 0/1 predictions) of ``y_true``'s shape. Ratings:
        predicted levels of ``y_true``'s shape, or for 1-D ``y_true`` an
        ``(n_samples, n_classes)`` matrix of class probabilities (with ``labels``), scored at
        its most probable class.
    users : array-like of shape (n_samples,)
        The person of each row; a missing id is an error.
    kind : {'pairs', 'ratings'}, default='pairs'
        Pairs are scored by :func:`pairwise_accuracy` (soft labels earn partial credit);
        ratings by exact-match accuracy and :func:`rating_mae`.
    train_users : array-like, dict or None, default=None
        The person of each *training* judgment (e.g. the training table's user column), one
        entry per judgment, or a dict of person -> number of training judgments. When given,
        the result gains ``n_train`` (the count per person) and ``known`` (``n_train > 0``);
        people who appear only here are not listed.
    labels : array-like or None, default=None
        Ratings with a probability matrix only: the classes in column order.

    Returns
    -------
    scores : DataFrame
        Indexed by person (``user``, sorted); columns ``n_test`` (judgments scored),
        ``accuracy``, ``mae`` (ratings only), then ``n_train`` and ``known`` when
        ``train_users`` is given. A person without a scored judgment has ``n_test = 0`` and
        NaN scores.

    Examples
    --------
    >>> from skpercept.metrics import per_user_scores
    >>> per_user_scores([1, 0, 1, 0.5], [0.9, 0.6, 0.8, 0.3], ["ann", "ann", "bob", "bob"],
    ...                 train_users=["ann", "ann", "ann"])  # doctest: +NORMALIZE_WHITESPACE
          n_test  accuracy  n_train  known
    user
    ann        2      0.50        3   True
    bob        2      0.75        0  False
    >>> per_user_scores([1, 4, 2], [2, 4, 2], ["ann", "ann", "bob"], kind="ratings")
    ...  # doctest: +NORMALIZE_WHITESPACE
          n_test  accuracy  mae
    user
    ann        2       0.5  0.5
    bob        1       1.0  0.0
    """
    if kind not in ("pairs", "ratings"):
        raise ValueError(f"kind must be 'pairs' or 'ratings', got {kind!r}.")
    t = as_float(y_true, "y_true")
    u = np.asarray(users, dtype=object).reshape(-1)
    if kind == "pairs":
        p = as_float(y_pred, "y_pred")
        check_unit(t, "y_true", "a pair label")
        check_unit(p, "y_pred", "a label or probability")
        metrics: dict[str, Callable] = {"accuracy": pairwise_accuracy}
    else:
        p = _rating_levels(t, y_pred, labels)
        metrics = {"accuracy": _rating_accuracy, "mae": rating_mae}
    if p.shape != t.shape:
        raise ValueError(f"y_true and y_pred have different shapes: {t.shape} vs {p.shape}.")
    if len(u) != len(t):
        raise ValueError(f"users has {len(u)} entries but y_true has {len(t)} rows.")
    if t.ndim == 2:  # one entry per judgment: a row's attributes are separate judgments
        u = np.repeat(u, t.shape[1])
        t, p = t.reshape(-1), p.reshape(-1)
    # NaN predictions of judged entries would be silently skipped by the metrics: refuse them
    unscored = ~np.isnan(t) & np.isnan(p)
    if unscored.any():
        raise ValueError(f"y_pred is NaN where y_true has a label ({int(unscored.sum())} entries).")
    scores = per_user_report(t, p, u, metrics=metrics)
    scores = scores.rename(columns={"n_labels": "n_test"})
    if train_users is not None:
        if isinstance(train_users, Mapping):
            counts = pd.Series(train_users, dtype=np.int64)
        else:
            counts = pd.Series(np.asarray(train_users, dtype=object).reshape(-1)).value_counts()
        scores["n_train"] = counts.reindex(scores.index, fill_value=0).astype(np.int64).to_numpy()
        scores["known"] = scores["n_train"] > 0
    return scores


# -- scorers --------------------------------------------------------------------------------
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


def get_scorer(name: str, **kwargs):
    """A scorer for ``scoring=`` by name, with optional metric keyword arguments.

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
    >>> from skpercept.metrics import get_scorer
    >>> scorer = get_scorer("neg_brier_score", labels=[1, 2, 3, 4])
    """
    if name not in _SCORER_SPECS:
        if kwargs:
            raise ValueError(f"{name!r} is not a skpercept scorer; it takes no kwargs here.")
        return _sklearn_get_scorer(name)
    fn, greater, method = _SCORER_SPECS[name]
    return make_scorer(fn, greater_is_better=greater, response_method=method, **kwargs)


pairwise_accuracy_scorer = get_scorer("pairwise_accuracy")
kendall_tau_scorer = get_scorer("kendall_tau")
spearman_rho_scorer = get_scorer("spearman_rho")
neg_rating_mae_scorer = get_scorer("neg_rating_mae")
qwk_scorer = get_scorer("quadratic_weighted_kappa")
neg_brier_scorer = get_scorer("neg_brier_score")
neg_ece_scorer = get_scorer("neg_expected_calibration_error")
