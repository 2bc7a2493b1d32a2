"""Internal validation splits that hold out items (images), not rows.

Early stopping judges a model on rows it does not train on. When rows share items (pairs of
the same faces, several ratings of one image), a row-wise split puts the same item on both
sides: the validation loss then rewards memorizing items and training runs past the point
where the model is best for new images. Every skorch-trained estimator of skpercept (heads on
features and LoRA estimators) therefore holds out a share of the *items*: validation rows are
those whose items are all held out, training rows those with none held out, and rows that
straddle the cut (a pair with one item on each side) are left out of both and counted.
Validating on the straddling rows too would lose none, but each of them holds an item that
training sees, whose memorized score lowers their loss: training then runs on past the epoch
that is best for new images, as with a row-wise split, only less far.

When items are identity codes (one-hot item ids, as in a Bradley–Terry design), no model can
score an unseen item, so what matters is new judgments of known items: ``'auto'`` then holds
out rows. The rule needs no threshold: items count as described by features when some column
that tells them apart holds values other than 0 and 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class HoldOut(NamedTuple):
    """Row positions of an item-disjoint split, and how many rows straddle it."""

    train: np.ndarray
    valid: np.ndarray
    n_straddling: int
    n_items: int


def item_codes(groups, n_rows: int) -> np.ndarray:
    """Item ids given by the user (``groups``) as int codes of shape ``(n_rows, k)``.

    ``groups`` is 1-D (one id per row: the image of a rating, or any key of rows that must
    stay together) or 2-D (one column per item of a row, e.g. the left and right images of a
    pair). Ids may be of any hashable type; a missing id is an error.
    """
    arr = groups.to_numpy() if hasattr(groups, "to_numpy") else np.asarray(groups)
    if arr.ndim not in (1, 2) or len(arr) != n_rows:
        raise ValueError(
            f"groups must have one entry (1-D) or one column per item (2-D) for each of the "
            f"{n_rows} rows of X; got shape {arr.shape}."
        )
    flat = pd.Series(arr.reshape(-1))
    if flat.isna().any():
        raise ValueError("groups contains a missing item id (NaN/None).")
    codes, _ = pd.factorize(flat)
    return codes.reshape(n_rows, -1)


def identical_rows(X: np.ndarray) -> np.ndarray:
    """Int code per row of a 2-D array: equal codes for rows that are equal bit for bit."""
    X = np.ascontiguousarray(X)
    if X.shape[1] == 0:
        return np.zeros(len(X), dtype=np.int64)
    rows = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    return np.unique(rows, return_inverse=True)[1].reshape(-1).astype(np.int64)


def indicator_columns(X: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns holding only 0 and 1 (one-hot codes, flags)."""
    return np.all((X == 0) | (X == 1), axis=0)


def _descriptive(columns: np.ndarray, indicators: np.ndarray) -> np.ndarray:
    # An item's identity is carried by its descriptive (non-indicator) columns when it has
    # any: an image embedding with a user one-hot beside it is one item for every user.
    descriptive = columns & ~indicators
    return descriptive if descriptive.any() else columns


def rating_item_codes(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """Item code ``(n_rows, 1)`` of each rating row, and whether items are described by features.

    Rows equal in their descriptive columns (those not holding only 0/1) are one item, so the
    ratings of one image by several users (a user one-hot beside the embedding) stay together.
    The flag is False when every column is an indicator: items are then identity codes
    (one-hot), which cannot describe an unseen item.
    """
    indicators = indicator_columns(X)
    own = _descriptive(np.ones(X.shape[1], dtype=bool), indicators)
    return identical_rows(X[:, own])[:, None], bool((~indicators).any())


def equal_in_both_halves(X: np.ndarray) -> np.ndarray:
    """Mask (one entry per column of a half) of the columns equal in both halves of every row
    of pair features ``[left | right]``: context appended to both halves, or unused columns."""
    half = X.shape[1] // 2
    return np.all(X[:, :half] == X[:, half:], axis=0)


def context_columns(X: np.ndarray) -> np.ndarray:
    """Mask of the context columns of pair features: equal in both halves of every row and not
    constant (a constant column tells no row apart, e.g. an item id that never occurs)."""
    half = X.shape[1] // 2
    varies = ~np.all(X[:, :half] == X[:1, :half], axis=0)
    return equal_in_both_halves(X) & varies


def pair_item_codes(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """Left and right item codes ``(n_rows, 2)`` of pair features ``[left | right]``, and
    whether items are described by features.

    Equal half-rows are the same item. Columns that are equal in both halves of every row
    (context appended to both, such as a user one-hot) are not part of an item's identity, so
    one image judged by several users stays one item; among the remaining columns the
    descriptive ones (not only 0/1) identify the item when there are any. The flag is False
    when every column that tells the items apart is an indicator (one-hot item ids).
    """
    half = X.shape[1] // 2
    left, right = X[:, :half], X[:, half:]
    own = ~equal_in_both_halves(X)
    indicators = indicator_columns(left) & indicator_columns(right)
    key = _descriptive(own, indicators)
    codes = identical_rows(np.vstack([left[:, key], right[:, key]]))
    return codes.reshape(2, -1).T, bool((own & ~indicators).any())


def hold_out_items(items: np.ndarray, fraction: float, seed: int) -> HoldOut:
    """Hold out ``fraction`` of the distinct items (at least one row's worth, never all).

    The held-out items are those of randomly ordered rows, taken row by row while they fit
    in ``round(fraction · n_items)``: every held-out item then comes with validation rows,
    also for sparse designs (pairs of items seen once) where items drawn one by one would
    rarely form a pair on the held-out side.

    Parameters
    ----------
    items : ndarray of shape (n_rows, k)
        Item codes of each row (k = 1 for ratings, 2 for pairs).
    fraction : float in (0, 1)
        Share of the distinct items held out.
    seed : int
        Chooses the held-out items (a local ``RandomState``; global state is not used).

    Returns
    -------
    HoldOut
        ``train`` and ``valid`` row positions; ``n_straddling`` rows are in neither.
    """
    items = np.asarray(items).reshape(len(items), -1)
    distinct, codes = np.unique(items, return_inverse=True)
    codes = codes.reshape(items.shape)
    n_items = distinct.size
    if n_items < 2:
        raise ValueError(f"cannot hold out items for validation: the data has {n_items} distinct item(s).")
    budget = min(max(int(round(fraction * n_items)), codes.shape[1]), n_items - 1)
    held: set[int] = set()
    rows = codes.tolist()
    for r in np.random.RandomState(seed).permutation(len(rows)).tolist():
        new = set(rows[r]) - held
        if len(held) + len(new) <= budget:
            held |= new
            if len(held) == budget:
                break
    mask = np.zeros(n_items, dtype=bool)
    mask[list(held)] = True
    valid = mask[codes].all(axis=1)
    train = ~mask[codes].any(axis=1)
    if not valid.any() or not train.any():
        side = "validation" if not valid.any() else "training"
        raise ValueError(
            f"holding out {len(held)} of {n_items} items leaves no {side} row (rows whose items "
            "fall on both sides are dropped); there are too few items to hold out."
        )
    n_straddling = int(len(items) - valid.sum() - train.sum())
    return HoldOut(np.flatnonzero(train), np.flatnonzero(valid), n_straddling, n_items)


class HoldOutError(ValueError):
    """``early_stopping`` cannot hold items out: there are too few of them."""


def early_stopping_split(
    items: np.ndarray, fraction: float, seed: int, *, what: str = "items", instead: str = ""
) -> HoldOut:
    """:func:`hold_out_items` for ``early_stopping``: an impossible split says what to change.

    ``what`` names the items in the message (``'images'``), ``instead`` adds alternatives to
    "pass more data or early_stopping=False".
    """
    try:
        return hold_out_items(items, float(fraction), seed)
    except ValueError as exc:
        options = (
            f"pass more data, early_stopping=False, or {instead}"
            if instead
            else "pass more data or early_stopping=False"
        )
        raise HoldOutError(
            f"early_stopping holds out validation_fraction={fraction} of the {what} ({exc}); {options}."
        ) from exc
