"""Input checks and reshaping shared by the rater-quality functions.

Every public function takes long pandas frames with configurable column names. The helpers
here validate those frames once (a missing column or a bad value raises an error naming it)
and turn comparisons into orientation-normalised, per-user majority votes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from skpercept._dataframes import as_pandas_frame

# Numeric columns that are never judgments (reference xlsx schema; the default user column,
# which stays an id even when a function is told to pool users with user_col=None).
_META_COLUMNS = frozenset({"_id", "id", "item_id", "pair_id", "lang", "rating_id", "user_id"})


def check_frame(frame: Any, name: str, required: Iterable[str | None]) -> pd.DataFrame:
    """``frame`` as a pandas DataFrame (a polars or pyarrow table converted), or a clear error
    when it is no table or lacks a required column."""
    frame = as_pandas_frame(frame, name)
    for col in required:
        if col is not None and col not in frame.columns:
            raise ValueError(
                f"{name} has no column {col!r} (columns: {list(frame.columns)}); "
                "pass the right name with the matching *_col / attributes argument."
            )
    return frame


def resolve_attributes(
    frame: pd.DataFrame,
    attributes: str | Sequence[str] | None,
    reserved: Iterable[str | None],
    name: str,
) -> list[str]:
    """Return the judgment columns: the given ones (checked) or every other numeric column."""
    reserved = {c for c in reserved if c is not None}
    if attributes is None:
        cols = [
            c
            for c in frame.columns
            if c not in reserved
            and c not in _META_COLUMNS
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if not cols:
            raise ValueError(
                f"{name} has no numeric judgment column besides {sorted(map(str, reserved))}; "
                "pass attributes=[...] explicitly."
            )
        return cols
    cols = [attributes] if isinstance(attributes, str) else list(attributes)
    if not cols:
        raise ValueError("attributes must name at least one column.")
    check_frame(frame, name, cols)
    for c in cols:
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
            bad = pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()
            row = frame.index[bad.to_numpy()][0] if bad.any() else None
            raise ValueError(
                f"{name} column {c!r} must be numeric (NaN = missing); "
                f"first non-numeric value at row {row!r}: {frame[c].loc[row]!r}."
                if row is not None
                else f"{name} column {c!r} must be numeric, got dtype {frame[c].dtype}."
            )
    return cols


def user_codes(frame: pd.DataFrame, user_col: str | None, name: str) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row and the user labels; ``user_col=None`` pools everyone as 'all'."""
    if user_col is None:
        return np.zeros(len(frame), dtype=np.int64), pd.Index(["all"], name="user_id")
    codes, users = pd.factorize(frame[user_col], sort=True)
    if (codes < 0).any():
        row = frame.index[codes < 0][0]
        raise ValueError(f"{name} column {user_col!r} is missing at row {row!r}.")
    return codes.astype(np.int64), pd.Index(users, name=user_col)


@dataclass
class PairVotes:
    """Per (user, attribute, unordered pair) vote summary.

    ``table`` has integer columns ``user``, ``attr``, ``lo``, ``hi`` (item codes, ``lo < hi``)
    and ``mean`` (mean oriented vote: 1 = ``lo`` preferred) and ``n`` (number of votes).
    """

    table: pd.DataFrame
    users: pd.Index
    items: pd.Index
    attributes: list[str]


def pair_votes(
    comparisons: pd.DataFrame,
    *,
    attributes: str | Sequence[str] | None,
    user_col: str | None,
    left_col: str,
    right_col: str,
    time_col: str | None = None,
    name: str = "comparisons",
) -> PairVotes:
    """Orientation-normalise comparisons and majority-vote repeats of a pair by one user.

    A row says ``value`` = 1 when ``left_col`` was preferred, 0 when ``right_col`` was,
    0.5 for a tie, NaN when that attribute was not judged. Values in between are soft votes.
    Each unordered pair ``{a, b}`` is stored once with ``lo < hi`` (item codes), the vote flipped
    when the row listed them the other way round; repeats are averaged, so ``mean > 0.5`` is a
    majority for ``lo``, ``mean < 0.5`` for ``hi`` and ``mean == 0.5`` an undecided pair.
    """
    comparisons = check_frame(comparisons, name, [user_col, left_col, right_col])
    attrs = resolve_attributes(comparisons, attributes, [user_col, left_col, right_col, time_col], name)
    n = len(comparisons)
    left = comparisons[left_col].to_numpy()
    right = comparisons[right_col].to_numpy()
    for col, arr in ((left_col, left), (right_col, right)):
        missing = pd.isna(arr)
        if missing.any():
            raise ValueError(f"{name} column {col!r} is missing at row {comparisons.index[missing][0]!r}.")
    codes, items = pd.factorize(np.concatenate([left, right]), sort=True)
    ca, cb = codes[:n], codes[n:]
    same = ca == cb
    if same.any():
        row = comparisons.index[same][0]
        raise ValueError(f"{name} row {row!r} compares item {left[same][0]!r} with itself.")
    users, user_index = user_codes(comparisons, user_col, name)
    swap = ca > cb
    lo, hi = np.where(swap, cb, ca), np.where(swap, ca, cb)
    parts = []
    for k, attr in enumerate(attrs):
        v = comparisons[attr].to_numpy(dtype=float)
        ok = ~np.isnan(v)
        bad = ok & ((v < 0) | (v > 1))
        if bad.any():
            row = comparisons.index[bad][0]
            raise ValueError(
                f"{name} column {attr!r} must hold 1 (left preferred), 0 (right), 0.5 (tie) "
                f"or NaN; row {row!r} has {v[bad][0]!r}."
            )
        v = np.where(swap, 1.0 - v, v)
        parts.append(pd.DataFrame({"user": users[ok], "attr": k, "lo": lo[ok], "hi": hi[ok], "v": v[ok]}))
    long = pd.concat(parts, ignore_index=True)
    table = (
        long.groupby(["user", "attr", "lo", "hi"], sort=True)["v"].agg(mean="mean", n="size").reset_index()
    )
    return PairVotes(table=table, users=user_index, items=pd.Index(items), attributes=attrs)
