"""Metrics per person: one row per rater, with how many training judgments each had."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from skpercept.metrics._inputs import as_float, check_unit
from skpercept.metrics._ordering import pairwise_accuracy
from skpercept.metrics._proba import brier_score, expected_calibration_error
from skpercept.metrics._ratings import rating_mae
from skpercept.metrics._scorers import METRICS

__all__ = ["per_user_report", "per_user_scores"]


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
        Pairs are scored by :func:`pairwise_accuracy` (soft labels earn partial credit),
        :func:`brier_score` and :func:`expected_calibration_error` of ``P(left ≻ right)``
        (how far a person's stated certainty is from how often they are right; a few
        judgments make a person's ECE noisy, and 0/1 predictions make it the error rate);
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
        ``accuracy``, ``brier`` and ``ece`` (pairs only), ``mae`` (ratings only), then ``n_train`` and ``known`` when
        ``train_users`` is given. A person without a scored judgment has ``n_test = 0`` and
        NaN scores.

    Examples
    --------
    >>> from skpercept.metrics import per_user_scores
    >>> per_user_scores([1, 0, 1, 0.5], [0.9, 0.6, 0.8, 0.3], ["ann", "ann", "bob", "bob"],
    ...                 train_users=["ann", "ann", "ann"])  # doctest: +NORMALIZE_WHITESPACE
          n_test  accuracy  brier   ece  n_train  known
    user
    ann        2      0.50  0.185  0.35        3   True
    bob        2      0.75  0.040  0.20        0  False
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
        metrics: dict[str, Callable] = {
            "accuracy": pairwise_accuracy,
            "brier": brier_score,
            "ece": expected_calibration_error,
        }
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
