"""Agreement between a user's comparisons and the same user's own ratings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skpercept.raters._frames import check_frame, resolve_attributes, user_codes


def rating_comparison_consistency(
    ratings: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    attributes: str | Sequence[str] | None = None,
    user_col: str = "user_id",
    item_col: str = "image",
    left_col: str = "image_a",
    right_col: str = "image_b",
    time_col: str | None = "insert_time",
    by_attribute: bool = False,
) -> pd.DataFrame:
    """How often each user's comparisons agree with the same user's ratings of the two items.

    For a comparison of ``a`` and ``b`` on an attribute, look up the user's own ratings
    ``r_a`` and ``r_b`` of that attribute (a user's repeated ratings of one item are averaged).
    The comparison *agrees* when it prefers the higher-rated item, *contradicts* when it
    prefers the lower-rated one, and is *undecided* when the user rated the two items equally,
    did not rate one of them, or the comparison itself is a tie (0.5). Soft comparison values
    count by their side of 0.5. Every comparison row counts (repeats are not merged).

    Parameters
    ----------
    ratings : DataFrame
        Wide ratings: ``user_col``, ``item_col`` and one numeric column per attribute.
    comparisons : DataFrame
        ``user_col``, ``left_col``, ``right_col`` and the same attribute columns holding
        1 (left preferred), 0 (right preferred), 0.5 (tie) or NaN (not judged).
    attributes : str or list of str, default=None
        Attributes to check; ``None`` takes the numeric judgment columns of ``comparisons``.
        Each must also be a column of ``ratings``.
    user_col, item_col, left_col, right_col, time_col : str
        Column names; ``time_col`` is only excluded from attribute inference.
    by_attribute : bool, default=False
        One row per (user, attribute) instead of per user summed over attributes.

    Returns
    -------
    DataFrame
        Indexed by user (only users with at least one comparison), columns ``n_comparisons``,
        ``agree``, ``contradict``, ``undecided`` (= ``unrated`` + ``equal_rating`` +
        ``tied_comparison``, also reported) and ``consistency`` = agree / (agree + contradict),
        NaN when nothing was decided. A random clicker scores about 0.5.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import rating_comparison_consistency
    >>> ratings = pd.DataFrame({"user_id": [1, 1, 1], "image": ["x", "y", "z"],
    ...                         "trust": [4, 2, 2]})
    >>> comps = pd.DataFrame({"user_id": [1, 1, 1], "image_a": ["x", "y", "y"],
    ...                       "image_b": ["y", "x", "z"], "trust": [1, 1, 0]})
    >>> rating_comparison_consistency(ratings, comps)[["agree", "contradict", "undecided"]]  # doctest: +NORMALIZE_WHITESPACE
             agree  contradict  undecided
    user_id
    1            1           1          1
    """
    comparisons = check_frame(comparisons, "comparisons", [user_col, left_col, right_col])
    ratings = check_frame(ratings, "ratings", [user_col, item_col])
    attrs = resolve_attributes(
        comparisons, attributes, [user_col, left_col, right_col, time_col], "comparisons"
    )
    resolve_attributes(ratings, attrs, [user_col, item_col, time_col], "ratings")
    # A missing user id would be dropped by groupby; refuse it instead.
    user_codes(comparisons, user_col, "comparisons")
    user_codes(ratings, user_col, "ratings")

    users = comparisons[user_col].to_numpy()
    key_a = pd.MultiIndex.from_arrays([users, comparisons[left_col].to_numpy()])
    key_b = pd.MultiIndex.from_arrays([users, comparisons[right_col].to_numpy()])
    mean_ratings = ratings.groupby([user_col, item_col], sort=False)[attrs].mean()

    rows = []
    for attr in attrs:
        v = comparisons[attr].to_numpy(dtype=float)
        bad = ~np.isnan(v) & ((v < 0) | (v > 1))
        if bad.any():
            raise ValueError(
                f"comparisons column {attr!r} must hold 1, 0, 0.5 or NaN; "
                f"row {comparisons.index[bad][0]!r} has {v[bad][0]!r}."
            )
        ra = mean_ratings[attr].reindex(key_a).to_numpy(dtype=float)
        rb = mean_ratings[attr].reindex(key_b).to_numpy(dtype=float)
        judged = ~np.isnan(v)
        unrated = judged & (np.isnan(ra) | np.isnan(rb))
        rated = judged & ~unrated
        diff = np.sign(np.where(rated, ra - rb, 0.0))
        pref = np.sign(np.where(judged, v - 0.5, 0.0))
        tied_comp = rated & (pref == 0)
        equal = rated & (diff == 0) & ~tied_comp
        decided = rated & (diff != 0) & (pref != 0)
        frame = pd.DataFrame(
            {
                "user": users,
                "n_comparisons": judged,
                "agree": decided & (diff == pref),
                "contradict": decided & (diff != pref),
                "unrated": unrated,
                "equal_rating": equal,
                "tied_comparison": tied_comp,
            }
        )[judged]
        counts = frame.groupby("user", sort=True).sum().astype(np.int64)
        counts["attribute"] = attr
        rows.append(counts)
    long = pd.concat(rows)
    long.index.name = user_col
    if by_attribute:
        out = long.set_index("attribute", append=True).sort_index()
    else:
        out = long.drop(columns="attribute").groupby(level=0, sort=True).sum()
    out.insert(3, "undecided", out["unrated"] + out["equal_rating"] + out["tied_comparison"])
    decided_n = out["agree"] + out["contradict"]
    out["consistency"] = (out["agree"] / decided_n.where(decided_n > 0)).astype(float)
    return out
