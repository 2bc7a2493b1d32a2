"""Derive training tables from continuous ratings: rating classes and pairwise comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from skpercept._dataframes import as_pandas_frame

_TIES = ("half", "drop")
# Materialising every unordered pair is simple and exact; beyond this many we sample instead.
_MAX_MATERIALISED_PAIRS = 20_000_000


def _bin_edges(values: np.ndarray, bins, strategy: str, scale: tuple[float, float]) -> np.ndarray:
    if not isinstance(bins, (int, np.integer)):
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 3 or np.any(np.diff(edges) <= 0):
            raise ValueError(
                "bins must be an int >= 2 or a strictly increasing sequence of at least 3 bin "
                f"edges (lowest, interior..., highest); got {bins!r}."
            )
        return edges
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}.")
    lo, hi = map(float, scale)
    if not lo < hi:
        raise ValueError(f"scale must be (low, high) with low < high, got {scale!r}.")
    if strategy == "uniform":
        return np.linspace(lo, hi, int(bins) + 1)
    if strategy == "quantile":
        finite = values[~np.isnan(values)]
        if finite.size == 0:
            raise ValueError("strategy='quantile' needs at least one non-missing value.")
        edges = np.quantile(finite, np.linspace(0.0, 1.0, int(bins) + 1))
        edges[0], edges[-1] = lo, hi
        if np.any(np.diff(edges) <= 0):
            raise ValueError(
                f"strategy='quantile' gives repeated bin edges {edges.tolist()} for these values; "
                "use fewer bins or strategy='uniform'."
            )
        return edges
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")


def to_rating_classes(
    values,
    bins: int | Sequence[float] = 4,
    *,
    strategy: str = "uniform",
    scale: tuple[float, float] = (0.0, 100.0),
):
    """Turn continuous ratings (e.g. OMI's 0–100 slider) into ordinal classes 1..K.

    The default cuts the scale into four equal-width bins, ``[0, 25)``, ``[25, 50)``,
    ``[50, 75)``, ``[75, 100]`` → classes 1, 2, 3, 4, like a 4-point rating scale. Equal-width
    bins are the default because the mapping is fixed in advance: it does not depend on which
    faces are in the sample, so train and test rows get the same meaning for "class 3" and no
    information leaks across a split. The price is unequal class sizes (on OMI roughly
    10 / 23 / 39 / 29 % for trustworthy). ``strategy='quantile'`` gives balanced classes
    instead, with edges estimated from ``values`` themselves: compute them on training data.

    Parameters
    ----------
    values : array-like, pandas Series or DataFrame
        Ratings on ``scale``. NaN (missing) stays NaN.
    bins : int or sequence of float, default=4
        Number of classes K, or explicit bin edges ``[low, e1, ..., high]`` (K + 1 values,
        strictly increasing; each bin includes its lower edge, the last also its upper edge).
    strategy : {'uniform', 'quantile'}, default='uniform'
        How to place the edges when ``bins`` is an int: equal width over ``scale``, or at the
        quantiles of the non-missing ``values``.
    scale : (float, float), default=(0.0, 100.0)
        The rating scale's ends. Values outside it raise a ``ValueError``.

    Returns
    -------
    classes : same type as ``values`` (ndarray, Series or DataFrame)
        Integers 1..K (int64), or float64 with NaN where ``values`` had missing values.

    Examples
    --------
    >>> from skpercept.datasets import to_rating_classes
    >>> to_rating_classes([0, 24.9, 25, 60, 100])
    array([1, 1, 2, 3, 4])
    >>> to_rating_classes([10, 90], bins=[0, 50, 100])
    array([1, 2])
    """
    container = values if isinstance(values, (pd.Series, pd.DataFrame)) else None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numeric ratings: {exc}") from exc
    edges = _bin_edges(arr, bins, strategy, scale)
    missing = np.isnan(arr)
    outside = ~missing & ((arr < edges[0]) | (arr > edges[-1]))
    if outside.any():
        bad = np.unique(arr[outside])[:10].tolist()
        raise ValueError(
            f"{int(outside.sum())} value(s) lie outside the rating scale "
            f"[{edges[0]:g}, {edges[-1]:g}], e.g. {bad}; pass the right scale= or bins=."
        )
    classes = np.searchsorted(edges[1:-1], np.where(missing, edges[0], arr), side="right") + 1
    out = np.where(missing, np.nan, classes) if missing.any() else classes.astype(np.int64)
    if isinstance(container, pd.Series):
        return pd.Series(out, index=container.index, name=container.name)
    if isinstance(container, pd.DataFrame):
        return pd.DataFrame(out, index=container.index, columns=container.columns)
    return out


def _check_ties(ties: str) -> None:
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}.")


def _compare(a: np.ndarray, b: np.ndarray, ties: str, min_gap: float = 0.0) -> np.ndarray:
    """1 where a > b, 0 where a < b, 0.5 (or NaN) on ties; NaN where either is missing."""
    y = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5 if ties == "half" else np.nan))
    gap = np.abs(a - b)
    if min_gap > 0:
        y[gap < min_gap] = np.nan
    y[np.isnan(a) | np.isnan(b)] = np.nan
    return y


def _resolve_attributes(frame: pd.DataFrame, attributes, exclude: Sequence[str]) -> list[str]:
    if attributes is None:
        attributes = [c for c in frame.columns if c not in exclude]
    elif isinstance(attributes, str):
        attributes = [attributes]
    attributes = list(attributes)
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not found; available columns: {list(frame.columns)}.")
    if not attributes:
        raise ValueError("No attribute columns to compare.")
    return attributes


def _item_labels(frame: pd.DataFrame, item_column: str) -> np.ndarray:
    if item_column not in frame.columns:
        raise ValueError(f"Column {item_column!r} not found; available columns: {list(frame.columns)}.")
    items = frame[item_column]
    if items.isna().any():
        rows = np.flatnonzero(items.isna().to_numpy())[:10].tolist()
        raise ValueError(f"Column {item_column!r} has missing values at rows {rows}.")
    return items.to_numpy()


def _pair_labels(values: np.ndarray, i: np.ndarray, j: np.ndarray, ties, min_gap) -> np.ndarray:
    return np.column_stack(
        [_compare(values[i, k], values[j, k], ties, min_gap) for k in range(values.shape[1])]
    )


def _eligible_sample(values, n_items, n_pairs, ties, min_gap, rng):
    """Unordered pairs (i < j) with at least one defined label: all of them, or a sample."""
    total = n_items * (n_items - 1) // 2
    if total <= _MAX_MATERIALISED_PAIRS:
        i, j = np.triu_indices(n_items, k=1)
        y = _pair_labels(values, i, j, ties, min_gap)
        keep = ~np.isnan(y).all(axis=1)
        i, j, y = i[keep], j[keep], y[keep]
        if n_pairs is None:
            return i, j, y
        if n_pairs > i.size:
            raise ValueError(
                f"n_pairs={n_pairs} but only {i.size} distinct pairs have a defined label "
                f"(min_gap={min_gap}, ties={ties!r})."
            )
        pick = np.sort(rng.choice(i.size, size=n_pairs, replace=False))
        return i[pick], j[pick], y[pick]
    if n_pairs is None:
        raise ValueError(f"{n_items} items give {total} pairs, too many to list; pass an int n_pairs.")
    # Rejection sampling: cheap because n_pairs is tiny next to the number of possible pairs.
    codes = np.empty(0, dtype=np.int64)
    for _ in range(100):
        a = rng.randint(0, n_items, size=2 * n_pairs)
        b = rng.randint(0, n_items, size=2 * n_pairs)
        i, j = np.minimum(a, b), np.maximum(a, b)
        ok = i != j
        i, j = i[ok], j[ok]
        ok = ~np.isnan(_pair_labels(values, i, j, ties, min_gap)).all(axis=1)
        codes = np.unique(np.concatenate([codes, i[ok] * n_items + j[ok]]))
        if codes.size >= n_pairs:
            break
    else:
        raise ValueError(f"Could not find {n_pairs} distinct pairs with a defined label.")
    codes = np.sort(rng.choice(codes, size=n_pairs, replace=False))
    i, j = codes // n_items, codes % n_items
    return i, j, _pair_labels(values, i, j, ties, min_gap)


def consensus_pairs(
    means: pd.DataFrame,
    attributes: str | Sequence[str] | None = None,
    *,
    n_pairs: int | str | None = "all",
    min_gap: float = 0.0,
    ties: str = "half",
    item_column: str = "image",
    random_state: int | np.random.RandomState | None = None,
) -> pd.DataFrame:
    """Pairwise comparisons between items by their consensus (mean) rating.

    Each unordered pair appears at most once, with a random left/right order (so left wins
    about half the time); the label is 1 where ``image_a``'s mean is higher, 0 where lower.

    Parameters
    ----------
    means : DataFrame
        One row per item: ``item_column`` and one column per attribute (e.g.
        ``load_omi().means``).
    attributes : str, sequence of str or None, default=None
        Attribute columns to compare; None uses every column except ``item_column``.
    n_pairs : int, 'all' or None, default='all'
        How many distinct pairs to return, drawn uniformly at random among pairs with at
        least one defined label; ``'all'``/None returns every such pair (n·(n−1)/2 for n
        items), in a fixed order.
    min_gap : float, default=0.0
        A label is set to NaN (missing) where the two means differ by less than this: such
        pairs are too close to call and mostly teach noise. Pairs with no defined label left
        are not returned.
    ties : {'half', 'drop'}, default='half'
        Equal means give 0.5 (``'half'``) or NaN (``'drop'``).
    item_column : str, default='image'
        Column identifying items.
    random_state : int, RandomState or None, default=None
        Controls the pair sample and the left/right order.

    Returns
    -------
    pairs : DataFrame
        Columns ``image_a``, ``image_b`` and one float column per attribute (1, 0, 0.5 or NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.datasets import consensus_pairs
    >>> means = pd.DataFrame({"image": ["a", "b", "c"], "trustworthy": [10.0, 50.0, 90.0]})
    >>> pairs = consensus_pairs(means, random_state=0)
    >>> len(pairs), sorted(pairs.columns)
    (3, ['image_a', 'image_b', 'trustworthy'])
    """
    _check_ties(ties)
    if min_gap < 0:
        raise ValueError(f"min_gap must be >= 0, got {min_gap}.")
    if isinstance(n_pairs, str) and n_pairs != "all":
        raise ValueError(f"n_pairs must be an int, 'all' or None, got {n_pairs!r}.")
    n_pairs = None if n_pairs is None or isinstance(n_pairs, str) else int(n_pairs)
    if n_pairs is not None and n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}.")
    means = as_pandas_frame(means, "means")  # polars / pyarrow: read by column name
    items = _item_labels(means, item_column)
    if pd.Series(items).duplicated().any():
        dup = pd.Series(items)[pd.Series(items).duplicated()].unique()[:10].tolist()
        raise ValueError(f"means must have one row per item; duplicated {item_column}: {dup}.")
    attributes = _resolve_attributes(means, attributes, exclude=[item_column])
    values = means[attributes].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    rng = check_random_state(random_state)
    i, j, y = _eligible_sample(values, len(items), n_pairs, ties, min_gap, rng)
    swap = rng.rand(i.size) < 0.5
    left, right = np.where(swap, j, i), np.where(swap, i, j)
    y = np.where(swap[:, None], 1.0 - y, y)
    out = pd.DataFrame({"image_a": items[left], "image_b": items[right]})
    for k, attribute in enumerate(attributes):
        out[attribute] = y[:, k]
    return out


def _draw_one(items, start, count, values, rng) -> np.ndarray:
    """One random rating of each item (ratings sorted by item: item k owns values[start[k]:+n])."""
    has = count[items] > 0
    pick = start[items] + np.floor(rng.rand(items.size) * np.maximum(count[items], 1))
    return np.where(has, values[np.minimum(pick.astype(np.int64), values.size - 1)], np.nan)


def sample_comparisons(
    ratings: pd.DataFrame,
    attributes: str | Sequence[str] | None = None,
    n_pairs: int = 10_000,
    *,
    ties: str = "half",
    item_column: str = "image",
    random_state: int | np.random.RandomState | None = None,
) -> pd.DataFrame:
    """Simulate individual raters' pairwise judgments from individual ratings.

    For each simulated judgment two distinct items are drawn at random; for each attribute
    one individual rating of each item is drawn and compared. The labels are therefore as
    noisy as single people are, unlike :func:`consensus_pairs`. Draws are independent, so a
    pair may recur (as when several raters see the same pair).

    Parameters
    ----------
    ratings : DataFrame
        Long table with columns ``item_column``, ``attribute`` and ``rating`` (e.g.
        ``load_omi().ratings``).
    attributes : str, sequence of str or None, default=None
        Attributes to compare; None uses every attribute in ``ratings``.
    n_pairs : int, default=10000
        Number of simulated judgments.
    ties : {'half', 'drop'}, default='half'
        Equal drawn ratings give 0.5 or NaN. Rows where every attribute is NaN are not
        returned, so with ``'drop'`` the result can be a little shorter than ``n_pairs``.
    item_column : str, default='image'
        Column identifying items.
    random_state : int, RandomState or None, default=None
        Controls the pairs and the ratings drawn.

    Returns
    -------
    pairs : DataFrame
        Columns ``image_a``, ``image_b`` and one float column per attribute (1 where
        ``image_a``'s drawn rating is higher; NaN where an item has no rating for it).

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.datasets import sample_comparisons
    >>> ratings = pd.DataFrame({"image": ["a", "a", "b", "b"], "attribute": "smart",
    ...                         "rating": [10, 20, 80, 90]})
    >>> pairs = sample_comparisons(ratings, n_pairs=5, random_state=0)
    >>> bool(((pairs.image_a == "b") == (pairs.smart == 1)).all())
    True
    """
    _check_ties(ties)
    if int(n_pairs) < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}.")
    ratings = as_pandas_frame(ratings, "ratings")  # polars / pyarrow: read by column name
    for column in ("attribute", "rating"):
        if column not in ratings.columns:
            raise ValueError(
                f"ratings needs a {column!r} column; available columns: {list(ratings.columns)}."
            )
    _item_labels(ratings, item_column)
    available = list(pd.unique(ratings["attribute"]))
    if attributes is None:
        attributes = available
    elif isinstance(attributes, str):
        attributes = [attributes]
    attributes = list(attributes)
    unknown = [a for a in attributes if a not in available]
    if unknown:
        raise ValueError(f"Attribute(s) {unknown} not in ratings; available: {available}.")
    rows = ratings[ratings["attribute"].isin(attributes) & ratings["rating"].notna()]
    items, codes = np.unique(rows[item_column].to_numpy(), return_inverse=True)
    if items.size < 2:
        raise ValueError("Need ratings for at least two items to form pairs.")
    rng = check_random_state(random_state)
    n_pairs = int(n_pairs)
    a = rng.randint(0, items.size, size=n_pairs)
    b = (a + rng.randint(1, items.size, size=n_pairs)) % items.size  # uniform over b != a
    out = pd.DataFrame({"image_a": items[a], "image_b": items[b]})
    attr_of_row = rows["attribute"].to_numpy()
    value_of_row = rows["rating"].to_numpy(np.float64)
    for attribute in attributes:
        mask = attr_of_row == attribute
        order = np.argsort(codes[mask], kind="stable")
        item_codes = codes[mask][order]
        values = value_of_row[mask][order]
        start = np.searchsorted(item_codes, np.arange(items.size), side="left")
        count = np.searchsorted(item_codes, np.arange(items.size), side="right") - start

        drawn = [_draw_one(side, start, count, values, rng) for side in (a, b)]
        out[attribute] = _compare(*drawn, ties)
    keep = ~out[attributes].isna().all(axis=1)
    return out[keep].reset_index(drop=True)


def rating_frame(
    ratings: pd.DataFrame,
    attributes: str | Sequence[str] | None = None,
    *,
    bins: int | Sequence[float] | None = 4,
    strategy: str = "uniform",
    scale: tuple[float, float] = (0.0, 100.0),
    item_column: str = "image",
) -> pd.DataFrame:
    """Wide per-judgment rating table for rating estimators: one row per individual rating.

    Each row holds one person's rating of one item for one attribute, placed in that
    attribute's column; the other attribute columns are NaN (missing), which is how
    multi-attribute rating estimators receive partially labelled rows.

    Parameters
    ----------
    ratings : DataFrame
        Long table with ``item_column``, ``attribute`` and ``rating`` (e.g.
        ``load_omi().ratings``).
    attributes : str, sequence of str or None, default=None
        Attributes to keep, in this column order; None keeps all, in order of appearance.
    bins, strategy, scale :
        Passed to :func:`to_rating_classes`, per attribute. ``bins=None`` keeps the raw
        ratings instead of classes.
    item_column : str, default='image'
        Column identifying items; copied to the output as ``image``.

    Returns
    -------
    frame : DataFrame
        Columns ``image`` and one float column per attribute (classes 1..K or raw ratings,
        NaN elsewhere), in the order of ``ratings``' rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.datasets import rating_frame
    >>> ratings = pd.DataFrame({"image": ["a", "b"], "attribute": ["smart", "cute"],
    ...                         "rating": [10, 80]})
    >>> rating_frame(ratings).to_dict("list")
    {'image': ['a', 'b'], 'smart': [1.0, nan], 'cute': [nan, 4.0]}
    """
    ratings = as_pandas_frame(ratings, "ratings")  # polars / pyarrow: read by column name
    _item_labels(ratings, item_column)
    available = list(pd.unique(ratings["attribute"]))
    if attributes is None:
        attributes = available
    elif isinstance(attributes, str):
        attributes = [attributes]
    attributes = list(attributes)
    unknown = [a for a in attributes if a not in available]
    if unknown:
        raise ValueError(f"Attribute(s) {unknown} not in ratings; available: {available}.")
    rows = ratings[ratings["attribute"].isin(attributes)]
    out = pd.DataFrame({"image": rows[item_column].to_numpy()})
    attr_of_row = rows["attribute"].to_numpy()
    value_of_row = rows["rating"].to_numpy(np.float64)
    for attribute in attributes:
        mask = attr_of_row == attribute
        column = np.full(len(rows), np.nan)
        values = value_of_row[mask]
        column[mask] = (
            values if bins is None else to_rating_classes(values, bins, strategy=strategy, scale=scale)
        )
        out[attribute] = column
    return out
