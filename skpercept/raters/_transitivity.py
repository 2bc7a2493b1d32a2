"""Intransitive 3-cycles in each rater's pairwise judgments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skpercept.raters._frames import pair_votes


def transitivity_violations(
    comparisons: pd.DataFrame,
    *,
    attributes: str | Sequence[str] | None = None,
    user_col: str | None = "user_id",
    left_col: str = "image_a",
    right_col: str = "image_b",
    time_col: str | None = "insert_time",
    by_attribute: bool = False,
) -> pd.DataFrame:
    """Count closed triads and intransitive 3-cycles among the pairs each user compared.

    For one user and one attribute the decided pairs form a tournament-like directed graph
    (edge ``a -> b`` when the user preferred ``a``). A *closed triad* is three items whose
    three pairs were all decided; it is *intransitive* when the edges form a cycle
    ``a > b > c > a``. A perfectly consistent rater has no cycles; a rater clicking at random
    closes cycles in 1/4 of triads (2 of the 8 orientations of a triangle are cycles).

    Repeats of the same pair by the same user (in either order) are majority-voted first;
    a pair whose votes tie (or that was judged 0.5) is undecided and belongs to no triad.
    All users are counted at once: every (user, attribute) graph is a block of one sparse
    adjacency matrix ``D``, triangles through each node are ``diag(A @ A @ A) / 2`` with
    ``A = D + D.T`` and directed 3-cycles ``diag(D @ D @ D)``, so the cost grows with the number
    of two-step paths, not with the number of users.

    Parameters
    ----------
    comparisons : DataFrame
        One row per judgment: ``user_col``, ``left_col``, ``right_col`` and one column per
        attribute with 1 (left preferred), 0 (right preferred), 0.5 (tie) or NaN (not judged).
    attributes : str or list of str, default=None
        Judgment columns; ``None`` takes every numeric column other than the id/time columns.
    user_col : str or None, default='user_id'
        Rater column. ``None`` pools all rows as one rater ``'all'`` (the crowd's majority graph).
    left_col, right_col : str, default='image_a', 'image_b'
        The two items of each pair.
    time_col : str or None, default='insert_time'
        Excluded from attribute inference only.
    by_attribute : bool, default=False
        One row per (user, attribute) instead of per user summed over attributes.

    Returns
    -------
    DataFrame
        Indexed by user (or by user and attribute), columns ``n_pairs`` (decided distinct
        pairs), ``n_undecided`` (tied pairs), ``n_triads`` (closed triads), ``n_cycles``
        (intransitive triads) and ``cycle_fraction`` = ``n_cycles / n_triads`` (NaN without any
        closed triad). ``result.attrs['overall']`` holds the same figures summed over users.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import transitivity_violations
    >>> comps = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2],
    ...                       "image_a": ["x", "y", "z", "x", "y", "x"],
    ...                       "image_b": ["y", "z", "x", "y", "z", "z"],
    ...                       "trust": [1, 1, 1, 1, 1, 1]})
    >>> transitivity_violations(comps)[["n_triads", "n_cycles"]]  # doctest: +NORMALIZE_WHITESPACE
             n_triads  n_cycles
    user_id
    1               1         1
    2               1         0
    """
    votes = pair_votes(
        comparisons,
        attributes=attributes,
        user_col=user_col,
        left_col=left_col,
        right_col=right_col,
        time_col=time_col,
    )
    t = votes.table
    n_attr = len(votes.attributes)
    group = t["user"].to_numpy() * n_attr + t["attr"].to_numpy()
    n_groups = len(votes.users) * n_attr
    decided = t["mean"].to_numpy() != 0.5
    n_pairs = np.bincount(group[decided], minlength=n_groups)
    n_undecided = np.bincount(group[~decided], minlength=n_groups)

    g = group[decided]
    lo, hi = t["lo"].to_numpy()[decided], t["hi"].to_numpy()[decided]
    lo_wins = t["mean"].to_numpy()[decided] > 0.5
    n_items = len(votes.items)
    # One node per (user, attribute, item) so that users' graphs are disjoint blocks.
    keys = np.concatenate([g * n_items + lo, g * n_items + hi])
    node, uniq = pd.factorize(keys)
    node_group = np.asarray(uniq) // n_items
    m = len(g)
    node_lo, node_hi = node[:m], node[m:]
    src = np.where(lo_wins, node_lo, node_hi)
    dst = np.where(lo_wins, node_hi, node_lo)
    n_nodes = len(uniq)
    ones = np.ones(m, dtype=np.int64)
    d = sp.csr_matrix((ones, (src, dst)), shape=(n_nodes, n_nodes))
    a = (d + d.T).tocsr()
    tri_node = np.asarray((a @ a).multiply(a).sum(axis=1)).ravel() // 2
    cyc_node = np.asarray((d @ d).multiply(d.T.tocsr()).sum(axis=1)).ravel()
    n_triads = np.bincount(node_group, weights=tri_node, minlength=n_groups) / 3
    n_cycles = np.bincount(node_group, weights=cyc_node, minlength=n_groups) / 3

    arrays = {
        "n_pairs": n_pairs,
        "n_undecided": n_undecided,
        "n_triads": np.rint(n_triads).astype(np.int64),
        "n_cycles": np.rint(n_cycles).astype(np.int64),
    }
    if by_attribute:
        index = pd.MultiIndex.from_product([votes.users, pd.Index(votes.attributes, name="attribute")])
        out = pd.DataFrame(arrays, index=index)
    else:
        out = pd.DataFrame(
            {k: v.reshape(-1, n_attr).sum(axis=1) for k, v in arrays.items()}, index=votes.users
        )
    out["cycle_fraction"] = _safe_ratio(out["n_cycles"], out["n_triads"])
    total = out[["n_pairs", "n_undecided", "n_triads", "n_cycles"]].sum()
    out.attrs["overall"] = {
        **{k: int(v) for k, v in total.items()},
        "cycle_fraction": float(total["n_cycles"] / total["n_triads"]) if total["n_triads"] else float("nan"),
    }
    return out


def _safe_ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)
