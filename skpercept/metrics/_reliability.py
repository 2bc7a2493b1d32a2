"""Reliability of human ratings: split-half r, Spearman–Brown, and the pair-order ceiling.

No model can predict a consensus better than the consensus agrees with itself. These functions
measure that from individual ratings, so model scores can be read against what is achievable.
Also available from :mod:`skpercept.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skpercept._dataframes import as_pandas_frame


def pair_order_ceiling(reliability):
    """Best achievable pairwise accuracy given the reliability of the observed consensus.

    With observed item means ``m = t + e`` of reliability ``r`` (``corr(t, m)² = r``), a
    perfect model of the true consensus ``t`` orders two random items as their observed means
    do with probability ``½ + asin(√r)/π`` (the orthant probability of a bivariate normal with
    correlation ``√r``). Negative reliabilities are clipped to 0 (ceiling 0.5).

    Examples
    --------
    >>> from skpercept.metrics import pair_order_ceiling
    >>> round(pair_order_ceiling(0.957), 3)
    0.934
    """
    r = np.clip(np.asarray(reliability, dtype=np.float64), 0.0, 1.0)
    out = 0.5 + np.arcsin(np.sqrt(r)) / np.pi
    return float(out) if out.ndim == 0 else out


def _split_half_r(codes: np.ndarray, values: np.ndarray, n_splits: int, rng) -> np.ndarray:
    """Pearson r between item means of two random halves of each item's ratings, per split."""
    n_items = codes.max() + 1
    rs = np.empty(n_splits)
    for s in range(n_splits):
        order = np.lexsort((rng.random(len(codes)), codes))
        c, v = codes[order], values[order]
        starts = np.searchsorted(c, np.arange(n_items))
        first = (np.arange(len(c)) - starts[c]) % 2 == 0  # alternate within shuffled items
        m0 = np.bincount(c[first], v[first], n_items) / np.bincount(c[first], None, n_items)
        m1 = np.bincount(c[~first], v[~first], n_items) / np.bincount(c[~first], None, n_items)
        rs[s] = np.corrcoef(m0, m1)[0, 1]
    return rs


def _ceiling_row(items: pd.Series, values: pd.Series, n_splits: int, rng) -> dict:
    keep = values.notna().to_numpy()
    codes, _ = pd.factorize(items.to_numpy()[keep])
    vals = values.to_numpy(dtype=np.float64)[keep]
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=int)
    enough = counts >= 2  # an item needs a rating in each half
    if enough.sum() < 3:
        raise ValueError(
            f"Too few items with at least two ratings ({int(enough.sum())}) to estimate "
            "split-half reliability; at least 3 are needed."
        )
    sel = enough[codes]
    codes, _ = pd.factorize(codes[sel])
    r = _split_half_r(codes, vals[sel], n_splits, rng)
    r_mean = float(np.mean(r))
    sb = 2 * r_mean / (1 + r_mean)
    return {
        "n_items": int(enough.sum()),
        "n_ratings": int(sel.sum()),
        "ratings_per_item": float(np.median(counts[enough])),
        "split_half_r": r_mean,
        "split_half_r_sd": float(np.std(r)),
        "spearman_brown_r": sb,
        "pair_order_ceiling": pair_order_ceiling(sb),
    }


def noise_ceiling(
    ratings: pd.DataFrame,
    *,
    item_col: str = "image",
    rating_col: str | Sequence[str] | None = None,
    group_col: str | None = None,
    n_splits: int = 20,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """How well can any model predict the consensus? Split-half reliability and its ceilings.

    Each item's individual ratings are shuffled and dealt alternately into two halves; the
    Pearson r between the items' half means, averaged over ``n_splits`` random splits, is the
    split-half r. Spearman–Brown ``2r / (1 + r)`` gives the reliability of the full mean
    rating, and :func:`pair_order_ceiling` turns it into the best achievable accuracy at
    ordering two items by their observed mean rating.

    Parameters
    ----------
    ratings : DataFrame
        Individual ratings, one row per judgment. Wide: ``item_col`` and one column per
        attribute (NaN = not rated). Long: ``item_col``, one ``rating_col`` and a
        ``group_col`` naming the attribute (as in OMI's ``attribute``). Filter out repeated
        judgments first (e.g. OMI's ``rating_type == 'repeat'``): they are not independent.
    item_col : str, default='image'
    rating_col : str, list of str or None, default=None
        Rating column(s). ``None``: every numeric column except ``item_col``, ``group_col``
        and ``'user_id'`` (wide format only).
    group_col : str or None, default=None
        Long format: one result row per value of this column.
    n_splits : int, default=20
    random_state : int, numpy Generator or None, default=None

    Returns
    -------
    report : DataFrame
        One row per attribute: ``n_items`` (items with ≥ 2 ratings; the others are left out),
        ``n_ratings``, ``ratings_per_item`` (median), ``split_half_r`` (mean over splits),
        ``split_half_r_sd``, ``spearman_brown_r``, ``pair_order_ceiling``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skpercept.metrics import noise_ceiling
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=200)
    >>> df = pd.DataFrame({"image": np.repeat(np.arange(200), 10)})
    >>> df["trustworthy"] = truth[df["image"]] + rng.normal(size=len(df))
    >>> report = noise_ceiling(df, rating_col="trustworthy", random_state=0)
    >>> bool(0.8 < report.loc["trustworthy", "spearman_brown_r"] < 0.95)
    True
    """
    ratings = as_pandas_frame(ratings, "ratings")
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}.")
    if rating_col is None:
        if group_col is not None:
            raise ValueError("With group_col (long format), name the rating column: rating_col=.")
        skip = {item_col, "user_id"}
        rating_col = [
            c for c in ratings.columns if c not in skip and pd.api.types.is_numeric_dtype(ratings[c])
        ]
    columns = [rating_col] if isinstance(rating_col, str) else list(rating_col)
    needed = [item_col, *columns] + ([group_col] if group_col is not None else [])
    missing = [c for c in needed if c not in ratings.columns]
    if missing:
        raise ValueError(f"Columns {missing} not in ratings; its columns are {list(ratings.columns)}.")
    if not columns:
        raise ValueError("No rating column found; pass rating_col=.")
    if ratings[item_col].isna().any():
        raise ValueError(
            f"{item_col!r} has a missing item id at row {int(ratings[item_col].isna().to_numpy().argmax())}."
        )
    rng = np.random.default_rng(random_state)
    rows = {}
    if group_col is not None:
        if len(columns) != 1:
            raise ValueError("With group_col (long format), rating_col must be one column.")
        for name, part in ratings.groupby(group_col, sort=True):
            rows[name] = _ceiling_row(part[item_col], part[columns[0]], n_splits, rng)
    else:
        for c in columns:
            rows[c] = _ceiling_row(ratings[item_col], ratings[c], n_splits, rng)
    report = pd.DataFrame.from_dict(rows, orient="index")
    report.index.name = "attribute"
    return report
