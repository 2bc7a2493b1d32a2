"""Metrics of photo collections: near-duplicate retrieval, the best of a series, grouping.

:func:`map_at_k` and :func:`recall_at_k` score how well embeddings find an item's near-duplicates
(:func:`retrieval_scorer` wraps them for ``scoring=``), :func:`top1_in_series_accuracy` whether
the best photo of each series is picked, and :func:`grouping_ari` how pure the found groups
are. Also available, and documented with the other metrics, from :mod:`skpercept.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, pairwise_distances

from skpercept.metrics._inputs import as_float


def _retrieval_order(groups, X, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Group codes and, per query, the other items from nearest to farthest (self excluded)."""
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
    t, s = as_float(y_true, "y_true"), as_float(y_score, "y_score")
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


def _group_codes(groups_true, groups_pred) -> tuple[np.ndarray, np.ndarray]:
    """Two labellings of the same photos as integer codes; different lengths or missing labels are an error."""
    a = pd.Series(np.asarray(groups_true, dtype=object).reshape(-1))
    b = pd.Series(np.asarray(groups_pred, dtype=object).reshape(-1))
    if len(a) != len(b):
        raise ValueError(f"groups_true and groups_pred have different lengths: {len(a)} and {len(b)}.")
    if a.isna().any() or b.isna().any():
        raise ValueError("groups_true and groups_pred must not have missing labels (NaN/None).")
    return pd.factorize(a)[0], pd.factorize(b)[0]


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
    true, pred = _group_codes(groups_true, groups_pred)
    return float(adjusted_rand_score(true, pred))


def grouping_errors(groups_true, groups_pred) -> dict:
    """The two errors of a grouping, apart: groups that mix subjects, and series split apart.

    A false merge (a group holding photos of two subjects) can cost a person a photo when they
    keep only the best of each group; a split (one subject's photos in two groups) costs a second
    look. The adjusted Rand index (:func:`grouping_ari`) blends both; these keep them apart.

    Parameters
    ----------
    groups_true, groups_pred : array-like of shape (n_photos,)
        True subject of each photo, and the group it was put in. No missing labels.

    Returns
    -------
    errors : dict
        ``groups`` (predicted groups with more than one photo), ``mixed`` (of those, how many
        hold more than one subject), ``false_merge_rate`` (``mixed / groups``, 0 when there are
        none), ``series`` (true subjects with more than one photo), ``split`` (of those, how many
        are spread over more than one group), ``split_rate`` (``split / series``) and
        ``apart_rate`` (the share of those series' photos outside their series' largest group:
        how many photos a person has to look at again).

    Examples
    --------
    >>> from skpercept.metrics import grouping_errors
    >>> errors = grouping_errors(["a", "a", "b", "b", "c"], [0, 0, 1, 2, 2])
    >>> errors["mixed"], errors["false_merge_rate"], errors["split"], errors["split_rate"]
    (1, 0.5, 1, 0.5)
    """
    true, pred = _group_codes(groups_true, groups_pred)
    frame = pd.DataFrame({"true": true, "pred": pred})
    by_group = frame.groupby("pred")["true"].agg(["size", "nunique"])
    shared = by_group[by_group["size"] > 1]
    by_series = frame.groupby("true")["pred"].agg(["size", "nunique"])
    series = by_series[by_series["size"] > 1]
    mixed, split = int((shared["nunique"] > 1).sum()), int((series["nunique"] > 1).sum())
    in_series = frame[frame["true"].isin(series.index)]
    largest = in_series.groupby(["true", "pred"]).size().groupby(level=0).max().sum()
    return {
        "groups": len(shared),
        "mixed": mixed,
        "false_merge_rate": mixed / len(shared) if len(shared) else 0.0,
        "series": len(series),
        "split": split,
        "split_rate": split / len(series) if len(series) else 0.0,
        "apart_rate": float(1.0 - largest / len(in_series)) if len(in_series) else 0.0,
    }


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
