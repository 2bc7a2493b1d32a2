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

:func:`noise_ceiling` (defined in :mod:`skpercept.reliability`) says how well any model can
do on a given set of ratings. Scorers (``pairwise_accuracy_scorer``, ``neg_brier_scorer``,
... or :func:`get_scorer`) plug into ``scoring=`` of ``GridSearchCV`` / ``cross_val_score``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import cohen_kappa_score, make_scorer
from sklearn.metrics import get_scorer as _sklearn_get_scorer

# the reliability side lives in its own module; re-exported so all metrics are found here
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

_MULTIOUTPUT = ("uniform_average", "raw_values")


# -- input handling -------------------------------------------------------------------------
def _as_float(y, name: str) -> np.ndarray:
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (NaN for missing); got {y!r:.80}.") from exc
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D (one column per attribute), got shape {arr.shape}.")
    return arr


def _paired(y_true, y_pred, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as (n, k) float arrays of equal shape; also whether the input was 1-D."""
    t, p = _as_float(y_true, "y_true"), _as_float(y_pred, pred_name)
    if t.ndim == 2 and p.ndim == 1 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and t.ndim == 1 and p.shape[1] == 1:
        p = p[:, 0]
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and {pred_name} have different shapes: {t.shape} vs {p.shape}; they must "
            "have one row per sample and the same columns (attributes)."
        )
    if t.shape[0] == 0:
        raise ValueError("y_true is empty: at least one sample is required.")
    one_d = t.ndim == 1
    return (t[:, None], p[:, None], True) if one_d else (t, p, False)


def _check_unit(arr: np.ndarray, name: str, what: str) -> None:
    bad = ~np.isnan(arr) & ((arr < 0) | (arr > 1))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} must be {what} in [0, 1]; got {float(arr[bad][0])!r} at row {row}.")


def _reduce(values: np.ndarray, multioutput: str, one_d: bool):
    if multioutput not in _MULTIOUTPUT:
        raise ValueError(f"multioutput must be one of {_MULTIOUTPUT}, got {multioutput!r}.")
    values = np.asarray(values, dtype=np.float64)
    if multioutput == "raw_values":
        return values
    if one_d or np.isnan(values).all():  # all undefined (e.g. constant scores): NaN, no warning
        return float(values[0]) if one_d else float("nan")
    return float(np.nanmean(values))


def _no_labels_error() -> ValueError:
    return ValueError("No non-missing labels: every entry of y_true (or the prediction) is NaN.")


def _per_column(t: np.ndarray, p: np.ndarray, fn: Callable) -> np.ndarray:
    out = np.full(t.shape[1], np.nan)
    keep = ~np.isnan(t) & ~np.isnan(p)
    if not keep.any():
        raise _no_labels_error()
    for j in range(t.shape[1]):
        if keep[:, j].any():
            out[j] = fn(t[keep[:, j], j], p[keep[:, j], j])
    return out


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
    t, p, one_d = _paired(y_true, y_pred)
    _check_unit(t, "y_true", "a pair label")
    _check_unit(p, "y_pred", "a label or probability")

    def credit(y, q):
        return np.mean(y * (q > 0.5) + (1 - y) * (q < 0.5) + 0.5 * (q == 0.5))

    return _reduce(_per_column(t, p, credit), multioutput, one_d)


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
    t, s, one_d = _paired(y_true, y_score, "y_score")
    return _reduce(_per_column(t, s, _correlation(stats.kendalltau)), multioutput, one_d)


def spearman_rho(y_true, y_score, *, multioutput: str = "uniform_average"):
    """Spearman's ρ between consensus values and predicted item scores (see kendall_tau).

    Examples
    --------
    >>> from skpercept.metrics import spearman_rho
    >>> round(spearman_rho([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.9]), 3)
    0.8
    """
    t, s, one_d = _paired(y_true, y_score, "y_score")
    return _reduce(_per_column(t, s, _correlation(stats.spearmanr)), multioutput, one_d)


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
    t, p, one_d = _paired(y_true, y_pred)
    return _reduce(_per_column(t, p, lambda a, b: np.mean(np.abs(a - b))), multioutput, one_d)


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
    t, p, one_d = _paired(y_true, y_pred)
    frac = ~np.isnan(p) & (p != np.round(p))
    if frac.any() and labels is None:
        raise ValueError(
            "quadratic_weighted_kappa needs rating levels, but y_pred has non-integer values "
            f"(e.g. {p[frac][0]!r}); round the predictions or pass labels=."
        )
    kappa = _per_column(t, p, lambda a, b: cohen_kappa_score(a, b, labels=labels, weights="quadratic"))
    return _reduce(kappa, multioutput, one_d)


# -- probabilities --------------------------------------------------------------------------
def _proba_outputs(y_true, y_prob, labels) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """Split into per-attribute (labels, probabilities) with rows of missing labels removed.

    Probabilities come out as 1-D ``P(y = 1)`` (binary, soft labels allowed) or as an
    ``(n, n_classes)`` matrix with labels turned into column indices (multi-class).
    """
    t = np.asarray(y_true, dtype=object if labels is not None else None)
    one_d = t.ndim == 1
    if isinstance(y_prob, (list, tuple)) and len(y_prob) and np.ndim(y_prob[0]) == 2:
        outputs = [np.asarray(q, dtype=np.float64) for q in y_prob]  # sklearn multi-output
    else:
        q = np.asarray(y_prob, dtype=np.float64)
        if q.shape == t.shape or (one_d and q.ndim == 2 and q.shape[1] == 1 and t.ndim == 1):
            q = q.reshape(t.shape)
            outputs = [q] if one_d else [q[:, j] for j in range(q.shape[1])]
        elif one_d and q.ndim == 2:
            outputs = [q]
        elif q.ndim == 3:
            outputs = [q[:, j, :] for j in range(q.shape[1])]
        else:
            raise ValueError(
                f"y_prob of shape {q.shape} does not fit y_true of shape {t.shape}: expected "
                "the same shape (binary), (n_samples, n_classes) for 1-D y_true, or "
                "(n_samples, n_attributes, n_classes)."
            )
    cols = [t] if one_d else [t[:, j] for j in range(t.shape[1])]
    if len(cols) != len(outputs):
        raise ValueError(f"y_true has {len(cols)} attribute(s) but y_prob has {len(outputs)}.")
    return [_one_output(y, q, labels) for y, q in zip(cols, outputs)], one_d


def _one_output(y: np.ndarray, q: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    if len(y) != len(q):
        raise ValueError(f"y_true has {len(y)} samples but y_prob has {len(q)}.")
    if len(y) == 0:
        raise ValueError("y_true is empty: at least one sample is required.")
    missing = pd.isna(y)
    if q.ndim == 1 or q.shape[1] == 1:
        q = q.reshape(-1)
        if labels is not None:  # hard labels given by name: positive class is labels[1]
            y = np.where(missing, np.nan, y == np.asarray(labels, dtype=object)[1])
        y = y.astype(np.float64)
        _check_unit(y, "y_true", "a binary (or soft) label")  # before masking: true row numbers
        _check_unit(q, "y_prob", "a probability")
        return y[~missing], q[~missing]
    y, q = y[~missing], q[~missing]
    n_classes = q.shape[1]
    if labels is None:
        present = np.unique(y)
        if len(present) == n_classes:
            labels = present
        elif np.isin(present, np.arange(n_classes)).all():
            labels = np.arange(n_classes)
        else:
            raise ValueError(
                f"Cannot tell which of the {n_classes} probability columns belongs to which of "
                f"the labels {present.tolist()}; pass labels= (the classifier's classes_), e.g. "
                "get_scorer('neg_brier_score', labels=[1, 2, 3, 4])."
            )
    labels = np.asarray(labels)
    if len(labels) != n_classes:
        raise ValueError(f"labels has {len(labels)} entries but y_prob has {n_classes} columns.")
    index = {label: i for i, label in enumerate(labels.tolist())}
    try:
        codes = np.array([index[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"y_true contains {exc.args[0]!r}, not one of labels {labels.tolist()}.") from None
    if len(q) and (q.min() < 0 or q.max() > 1):
        raise ValueError("y_prob must contain probabilities in [0, 1].")
    if n_classes == 2:  # same numbers as the 1-D P(second class) form of the same model
        return codes.astype(np.float64), q[:, 1]
    return codes, q


def _proba_metric(y_true, y_prob, labels, multioutput, binary: Callable, multi: Callable):
    outputs, one_d = _proba_outputs(y_true, y_prob, labels)
    if all(len(y) == 0 for y, _ in outputs):
        raise _no_labels_error()
    values = [np.nan if len(y) == 0 else (binary(y, q) if q.ndim == 1 else multi(y, q)) for y, q in outputs]
    return _reduce(np.array(values), multioutput, one_d)


def brier_score(y_true, y_prob, *, labels=None, multioutput: str = "uniform_average"):
    """Brier score: mean squared error of predicted probabilities (lower is better).

    Binary: ``mean((p - y)²)`` with ``p = P(y = 1)`` (for pairs, ``P(left ≻ right)``) and soft
    labels allowed, in [0, 1]. Multi-class (an ``(n, n_classes)`` matrix): the sum over classes
    of the squared error against the one-hot label, averaged over samples, in [0, 2].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_attributes)
        Labels; NaN = missing.
    y_prob : array-like
        Same shape as ``y_true`` (binary); ``(n_samples, n_classes)`` for 1-D ``y_true``;
        ``(n_samples, n_attributes, n_classes)`` or a list of ``(n_samples, n_classes)``
        arrays for several attributes.
    labels : array-like or None, default=None
        Class of each probability column (a classifier's ``classes_``). Inferred when all
        classes occur in ``y_true`` or labels are ``0..n_classes-1``; otherwise required.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Examples
    --------
    >>> from skpercept.metrics import brier_score
    >>> brier_score([1, 0], [0.8, 0.4])
    0.1
    """
    return _proba_metric(
        y_true,
        y_prob,
        labels,
        multioutput,
        binary=lambda y, q: float(np.mean((q - y) ** 2)),
        multi=lambda y, q: float(np.mean(np.sum((q - np.eye(q.shape[1])[y]) ** 2, axis=1))),
    )


def _binned_gap(confidence: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=outcome, minlength=n_bins) - np.bincount(
        bins, weights=confidence, minlength=n_bins
    )
    return float(np.sum(np.abs(gap)) / count.sum())


def expected_calibration_error(
    y_true, y_prob, *, n_bins: int = 10, labels=None, multioutput: str = "uniform_average"
):
    """Expected calibration error over ``n_bins`` equal-width probability bins (lower is better).

    ``ECE = Σ_b (n_b / n) · |observed_b − predicted_b|``. Binary (and pairs): the bins are over
    ``p = P(y = 1)``, and observed is the mean (soft) label, i.e. the calibration of
    ``P(left ≻ right)`` itself. Multi-class: top-label ECE, bins over the highest probability,
    observed = the share of samples whose most probable class is right.

    Parameters
    ----------
    y_true, y_prob, labels, multioutput
        As in :func:`brier_score`.
    n_bins : int, default=10
        Number of equal-width bins on [0, 1]; the last bin includes 1.

    Examples
    --------
    >>> from skpercept.metrics import expected_calibration_error
    >>> expected_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.2, 0.3], n_bins=2)
    0.575
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")

    def multi(y, q):
        top = q.argmax(axis=1)
        return _binned_gap(q.max(axis=1), (top == y).astype(np.float64), n_bins)

    return _proba_metric(
        y_true,
        y_prob,
        labels,
        multioutput,
        binary=lambda y, q: _binned_gap(q, y, n_bins),
        multi=multi,
    )


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
    pred = _as_float(y_pred, "y_pred")
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
    t = _as_float(y_true, "y_true")
    u = np.asarray(users, dtype=object).reshape(-1)
    if kind == "pairs":
        p = _as_float(y_pred, "y_pred")
        _check_unit(t, "y_true", "a pair label")
        _check_unit(p, "y_pred", "a label or probability")
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


# -- near-duplicate retrieval and photo series ----------------------------------------------
def _retrieval_order(groups, X, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Group codes and, per query, the other items from nearest to farthest (self excluded)."""
    from sklearn.metrics import pairwise_distances

    labels = pd.Series(np.asarray(groups, dtype=object).reshape(-1))
    if labels.isna().any():
        raise ValueError(f"groups has a missing label (NaN/None) at row {int(labels.isna().argmax())}.")
    codes = pd.factorize(labels)[0]
    D = np.asarray(X, dtype=np.float64) if metric == "precomputed" else None
    if D is None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(codes):
            raise ValueError(
                f"X must have shape (n_items, n_features) with n_items={len(codes)}; got {X.shape}."
            )
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity; drop the items that could not be embedded first.")
        D = pairwise_distances(X, metric=metric)
    if D.shape != (len(codes), len(codes)):
        raise ValueError(f"a precomputed X must be ({len(codes)}, {len(codes)}); got {D.shape}.")
    if len(codes) < 2:
        raise ValueError("Retrieval needs at least two items.")
    D = D.copy()
    np.fill_diagonal(D, np.inf)
    # stable: equally distant items keep their input order, so results never depend on sort internals
    order = np.argsort(D, axis=1, kind="stable")[:, :-1]
    return codes, order


def _check_k(k) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def _retrieval_hits(groups, X, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(queries x k) relevance of the top-k neighbours and each query's number of relevant items;
    only queries with at least one relevant item (a group of two or more) are kept."""
    codes, order = _retrieval_order(groups, X, metric)
    n_relevant = np.bincount(codes)[codes] - 1
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError("Every item is alone in its group: no query has a relevant item to retrieve.")
    top = order[keep, :k]
    return codes[top] == codes[keep, None], n_relevant[keep]


def map_at_k(groups, X, *, k: int = 10, metric: str = "cosine") -> float:
    """Mean average precision at ``k`` of near-duplicate retrieval.

    Every item is a query; the other items are ranked by distance to it, and the items of its
    own group are the relevant ones. ``AP@k = Σ_{i≤k} P@i · rel_i / min(k, R)`` with ``R`` the
    number of relevant items, so a query scores 1 when its first ``min(k, R)`` neighbours are
    all relevant. Items alone in their group have nothing to retrieve and are not queries.

    Parameters
    ----------
    groups : array-like of shape (n_items,)
        True group (series, scene) of each item.
    X : array-like of shape (n_items, n_features), or (n_items, n_items) if precomputed
        Embeddings, or a distance matrix with ``metric='precomputed'``.
    k : int, default=10
    metric : str, default='cosine'
        Any :func:`sklearn.metrics.pairwise_distances` metric, or ``'precomputed'``.

    Returns
    -------
    score : float in [0, 1]

    Examples
    --------
    >>> from skpercept.metrics import map_at_k
    >>> X = [[0.0], [0.1], [1.0], [2.2]]  # item 2's two nearest items are 1 and 0, not its partner 3
    >>> round(map_at_k(["a", "a", "b", "b"], X, k=2, metric="euclidean"), 3)
    0.75
    """
    hits, n_relevant = _retrieval_hits(groups, X, _check_k(k), metric)
    precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    ap = (precision * hits).sum(axis=1) / np.minimum(hits.shape[1], n_relevant)
    return float(ap.mean())


def recall_at_k(groups, X, *, k: int = 10, metric: str = "cosine") -> float:
    """Share of each query's near-duplicates found among its ``k`` nearest items, averaged.

    The information-retrieval recall (relevant items retrieved / relevant items), not the "any
    hit" rate of metric learning: a query whose group has more than ``k`` other members cannot
    reach 1. Queries as in :func:`map_at_k`.

    Parameters
    ----------
    groups, X, k, metric
        As in :func:`map_at_k`.

    Returns
    -------
    score : float in [0, 1]

    Examples
    --------
    >>> from skpercept.metrics import recall_at_k
    >>> X = [[0.0], [0.1], [1.0], [2.2]]
    >>> recall_at_k(["a", "a", "b", "b"], X, k=1, metric="euclidean")
    0.75
    """
    hits, n_relevant = _retrieval_hits(groups, X, _check_k(k), metric)
    return float((hits.sum(axis=1) / n_relevant).mean())


def top1_in_series_accuracy(series, y_true, y_score) -> float:
    """Share of series whose highest-scored item is (one of) the truly best.

    Parameters
    ----------
    series : array-like of shape (n_items,)
        Series (group) of each item; series of one item are skipped (nothing to choose).
    y_true : array-like of shape (n_items,)
        True quality, higher = better (e.g. 1 for the undamaged photo, 0 for the others);
        several items tied at the maximum are all right answers.
    y_score : array-like of shape (n_items,)
        Predicted score, higher = better. A tie at the top earns the share of the tied items
        that are right (the expected accuracy of breaking the tie at random).

    Returns
    -------
    accuracy : float in [0, 1]

    Examples
    --------
    >>> from skpercept.metrics import top1_in_series_accuracy
    >>> top1_in_series_accuracy([1, 1, 1, 2, 2], [1, 0, 0, 1, 0], [0.2, 0.9, 0.1, 0.7, 0.7])
    0.25
    """
    labels = pd.Series(np.asarray(series, dtype=object).reshape(-1))
    t, s = _as_float(y_true, "y_true"), _as_float(y_score, "y_score")
    if not t.shape == s.shape == (len(labels),):
        raise ValueError(
            f"series, y_true and y_score must be 1-D of one length; got {len(labels)}, {t.shape}, {s.shape}."
        )
    if labels.isna().any() or np.isnan(t).any() or np.isnan(s).any():
        raise ValueError("series, y_true and y_score must not have missing values (NaN/None).")
    credits = []
    for index in labels.groupby(labels, sort=False).indices.values():
        if len(index) < 2:
            continue
        top = s[index] == s[index].max()
        right = t[index] == t[index].max()
        credits.append(np.mean(right[top]))
    if not credits:
        raise ValueError("No series has two or more items: there is no choice to score.")
    return float(np.mean(credits))


def grouping_ari(groups_true, groups_pred) -> float:
    """Group purity as the adjusted Rand index of a grouping against the true groups.

    ``sklearn.metrics.adjusted_rand_score``: 1 for the same partition (whatever the group
    names), about 0 for a random one; it penalises both merged and split groups. Missing labels
    are an error: group unreadable files separately before scoring.

    Examples
    --------
    >>> from skpercept.metrics import grouping_ari
    >>> grouping_ari(["a", "a", "b", "b"], [7, 7, 3, 3])
    1.0
    >>> round(grouping_ari(["a", "a", "b", "b"], [0, 0, 0, 1]), 3)
    0.0
    """
    from sklearn.metrics import adjusted_rand_score

    a = pd.Series(np.asarray(groups_true, dtype=object).reshape(-1))
    b = pd.Series(np.asarray(groups_pred, dtype=object).reshape(-1))
    if len(a) != len(b):
        raise ValueError(f"groups_true and groups_pred have different lengths: {len(a)} and {len(b)}.")
    if a.isna().any() or b.isna().any():
        raise ValueError("groups_true and groups_pred must not have missing labels (NaN/None).")
    return float(adjusted_rand_score(pd.factorize(a)[0], pd.factorize(b)[0]))


def retrieval_scorer(*, k: int = 10, metric: str = "cosine", kind: str = "map"):
    """A ``scoring=`` callable for embedders: ``scorer(embedder, images, groups)``.

    It embeds ``images`` with the (fitted) transformer and returns :func:`map_at_k`
    (``kind='map'``) or :func:`recall_at_k` (``kind='recall'``) against ``groups``; use it to
    compare backbones or their settings with ``cross_val_score`` / ``GridSearchCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skpercept.metrics import retrieval_scorer
    >>> scorer = retrieval_scorer(k=1, metric="euclidean")
    >>> scorer(FunctionTransformer().fit(None), np.array([[0.0], [0.1], [5.0], [5.2]]), [0, 0, 1, 1])
    1.0
    """
    if kind not in ("map", "recall"):
        raise ValueError(f"kind must be 'map' or 'recall', got {kind!r}.")
    fn = map_at_k if kind == "map" else recall_at_k
    _check_k(k)

    def scorer(estimator, X, y) -> float:
        return fn(y, estimator.transform(X), k=k, metric=metric)

    return scorer
