"""Inter-rater agreement: user x user agreement, Krippendorff's alpha, Fleiss-style kappa."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skpercept.raters._frames import check_frame, pair_votes, resolve_attributes, user_codes

_LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _coincidence(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix from a units x values count matrix."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    n = counts[pairable]
    w = 1.0 / (m[pairable] - 1.0)
    return (n * w[:, None]).T @ n - np.diag(w @ n)


def _delta(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ratio":
        s = np.add.outer(values, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (np.subtract.outer(values, values) / s) ** 2
        return np.nan_to_num(d)
    # ordinal: ranks are the value order, distances use the marginal frequencies in between.
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[lo] + n_c[hi]) / 2.0) ** 2


def _alpha_from_counts(counts: np.ndarray, values: np.ndarray, level: str) -> float:
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}.")
    o = _coincidence(counts)
    n_c = o.sum(axis=0)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    delta = _delta(np.asarray(values, dtype=float), n_c, level)
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * (o * delta).sum() / expected)


def _kappa_from_counts(counts: np.ndarray) -> float:
    m = counts.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        return float("nan")
    n, m = counts[keep], m[keep]
    p_unit = ((n**2).sum(axis=1) - m) / (m * (m - 1.0))
    p_c = n.sum(axis=0) / m.sum()
    p_e = float((p_c**2).sum())
    if p_e == 1.0:
        return float("nan")
    return float((p_unit.mean() - p_e) / (1.0 - p_e))


def _counts_from_reliability(data) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"reliability data must be 2-D (raters x units), got shape {arr.shape}.")
    values = np.unique(arr[~np.isnan(arr)])
    counts = (
        np.stack([(arr == v).sum(axis=0) for v in values], axis=1)
        if len(values)
        else np.zeros((arr.shape[1], 0))
    )
    return counts.astype(float), values


def krippendorff_alpha(data, *, level: str = "nominal") -> float:
    """Krippendorff's alpha from reliability data (raters x units, NaN = not coded).

    Computed through the coincidence matrix: each unit coded by ``m >= 2`` raters adds its
    ``m (m - 1)`` ordered value pairs with weight ``1 / (m - 1)``; alpha is
    ``1 - (n - 1) * sum(o_ck * delta_ck) / sum(n_c * n_k * delta_ck)`` with the difference
    function ``delta`` of the chosen ``level``. Units with a single value are not pairable and
    are ignored. Returns NaN when fewer than two pairable values exist or all values are equal.

    Parameters
    ----------
    data : array-like of shape (n_raters, n_units)
        Values (numbers) with NaN where a rater did not code a unit.
    level : {'nominal', 'ordinal', 'interval', 'ratio'}, default='nominal'
        Level of measurement.

    Returns
    -------
    float

    Examples
    --------
    Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C:

    >>> import numpy as np
    >>> from skpercept.raters import krippendorff_alpha
    >>> nan = np.nan
    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    ...         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    ...         [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    ...         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    >>> round(krippendorff_alpha(data, level="nominal"), 3)
    0.743
    >>> round(krippendorff_alpha(data, level="interval"), 3)
    0.849
    """
    counts, values = _counts_from_reliability(data)
    return _alpha_from_counts(counts, values, level)


def fleiss_kappa(data) -> float:
    """Fleiss-style kappa from reliability data (raters x units, NaN = not coded).

    The number of raters may vary between units: the observed agreement is the mean over
    units with at least two codes of the fraction of agreeing rater pairs, chance agreement
    ``sum_c p_c**2`` uses the pooled value proportions of those units (nominal values).

    Examples
    --------
    >>> from skpercept.raters import fleiss_kappa
    >>> round(fleiss_kappa([[1, 1, 0, 0], [1, 1, 0, 1]]), 3)
    0.467
    """
    counts, _ = _counts_from_reliability(data)
    return _kappa_from_counts(counts)


@dataclass
class AgreementResult:
    """Output of :func:`agreement_matrix`.

    Attributes
    ----------
    agreement : DataFrame
        User x user fraction of shared units with the same value (NaN below ``min_shared``).
    n_shared : DataFrame
        User x user number of shared units (diagonal: units coded by the user).
    per_user : DataFrame
        Per user: ``n_shared`` (summed over other users) and ``agreement_with_others``
        (agreeing / shared, pooled over all other users).
    alpha : float
        Krippendorff's alpha over all units at ``level``.
    kappa : float
        Fleiss-style kappa over all units (nominal).
    level : str
        Level used for alpha.
    n_units : int
        Units coded by at least two users.
    alpha_by_attribute : dict of str to float
        Krippendorff's alpha of each attribute's units alone.

    Examples
    --------
    Three people rate three images:

    >>> import pandas as pd
    >>> from skpercept.raters import agreement_matrix
    >>> ratings = pd.DataFrame({"user_id": ["ann", "bob", "cy"] * 3, "image": list("aaabbbccc"),
    ...                         "trust": [1, 1, 2, 3, 3, 3, 2, 1, 2]})
    >>> result = agreement_matrix(ratings)
    >>> result.agreement.round(2)  # doctest: +NORMALIZE_WHITESPACE
    user_id   ann   bob    cy
    user_id
    ann      1.00  0.67  0.67
    bob      0.67  1.00  0.33
    cy       0.67  0.33  1.00
    >>> result.per_user["agreement_with_others"].round(2).tolist()
    [0.67, 0.5, 0.5]
    >>> round(result.alpha, 3), result.level, result.n_units, list(result.alpha_by_attribute)
    (0.704, 'interval', 3, ['trust'])
    """

    agreement: pd.DataFrame
    n_shared: pd.DataFrame
    per_user: pd.DataFrame
    alpha: float
    kappa: float
    level: str
    n_units: int
    alpha_by_attribute: dict = field(default_factory=dict)


def agreement_matrix(
    frame: pd.DataFrame,
    *,
    attributes: str | Sequence[str] | None = None,
    user_col: str = "user_id",
    left_col: str = "image_a",
    right_col: str = "image_b",
    item_col: str = "image",
    time_col: str | None = "insert_time",
    level: str | None = None,
    min_shared: int = 1,
) -> AgreementResult:
    """User x user agreement on shared units, with Krippendorff's alpha and Fleiss-style kappa.

    With ``left_col``/``right_col`` present, ``frame`` holds comparisons: a unit is an
    (attribute, unordered pair); (a, b) and (b, a) are the same unit with the vote flipped, a
    user's repeats are majority-voted and the user's value is 1 / 0 (which item won) or 0.5
    (undecided), a nominal category. Otherwise ``frame`` holds ratings: a unit is an
    (attribute, item) and the user's value their (mean) rating. Two users agree on a unit when
    their values are equal.

    Parameters
    ----------
    frame : DataFrame
        Comparisons or wide ratings.
    attributes : str or list of str, default=None
        Judgment columns; ``None`` takes the numeric non-id columns.
    user_col, left_col, right_col, item_col, time_col : str
        Column names (``time_col`` only excluded from attribute inference).
    level : {'nominal', 'ordinal', 'interval', 'ratio'}, default=None
        Level for alpha; ``None`` means nominal for comparisons, interval for ratings.
    min_shared : int, default=1
        Pairs of users sharing fewer units get NaN agreement.

    Returns
    -------
    AgreementResult

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import agreement_matrix
    >>> comps = pd.DataFrame({"user_id": [1, 2, 1, 2], "image_a": ["x", "y", "x", "z"],
    ...                       "image_b": ["y", "x", "z", "x"], "trust": [1, 0, 1, 1]})
    >>> res = agreement_matrix(comps)
    >>> res.agreement.loc[1, 2], int(res.n_shared.loc[1, 2])
    (np.float64(0.5), 2)
    """
    frame = check_frame(frame, "frame", [user_col])
    comparisons = left_col in frame.columns and right_col in frame.columns
    if comparisons:
        votes = pair_votes(
            frame,
            attributes=attributes,
            user_col=user_col,
            left_col=left_col,
            right_col=right_col,
            time_col=time_col,
            name="frame",
        )
        t = votes.table
        value = np.where(t["mean"] > 0.5, 1.0, np.where(t["mean"] < 0.5, 0.0, 0.5))
        unit_keys = [t["attr"].to_numpy(), t["lo"].to_numpy(), t["hi"].to_numpy()]
        user, users, attrs = t["user"].to_numpy(), votes.users, votes.attributes
        level = level or "nominal"
    else:
        check_frame(
            frame,
            f"frame (neither comparison columns {left_col!r}/{right_col!r} nor a ratings item column)",
            [item_col],
        )
        attrs = resolve_attributes(frame, attributes, [user_col, item_col, time_col], "frame")
        codes, users = user_codes(frame, user_col, "frame")
        item_codes, _ = pd.factorize(frame[item_col], sort=True)
        parts = []
        for k, attr in enumerate(attrs):
            v = frame[attr].to_numpy(dtype=float)
            ok = ~np.isnan(v)
            parts.append(pd.DataFrame({"user": codes[ok], "attr": k, "item": item_codes[ok], "v": v[ok]}))
        long = pd.concat(parts).groupby(["user", "attr", "item"], sort=True)["v"].mean().reset_index()
        value = long["v"].to_numpy()
        unit_keys = [long["attr"].to_numpy(), long["item"].to_numpy()]
        user = long["user"].to_numpy()
        level = level or "interval"
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}.")

    unit = pd.MultiIndex.from_arrays(unit_keys).factorize()[0] if len(value) else np.zeros(0, int)
    val_code, values = pd.factorize(value, sort=True)
    n_units_all, n_values, n_users = int(unit.max() + 1) if len(unit) else 0, len(values), len(users)
    ones = np.ones(len(unit))
    presence = sp.csr_matrix((ones, (user, unit)), shape=(n_users, n_units_all))
    coded = sp.csr_matrix((ones, (user, unit * n_values + val_code)), shape=(n_users, n_units_all * n_values))
    shared = (presence @ presence.T).toarray()
    agree = (coded @ coded.T).toarray()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(shared >= max(min_shared, 1), agree / shared, np.nan)
    off = ~np.eye(n_users, dtype=bool)
    shared_others = (shared * off).sum(axis=1)
    agree_others = (agree * off).sum(axis=1)
    per_user = pd.DataFrame(
        {
            "n_shared": shared_others.astype(np.int64),
            "agreement_with_others": np.where(
                shared_others > 0, agree_others / np.maximum(shared_others, 1), np.nan
            ),
        },
        index=users,
    )
    counts = np.zeros((n_units_all, n_values))
    np.add.at(counts, (unit, val_code), 1.0)
    unit_attr = np.zeros(n_units_all, dtype=np.int64)
    unit_attr[unit] = unit_keys[0]
    alpha_by_attr = {
        a: _alpha_from_counts(counts[unit_attr == k], np.asarray(values, float), level)
        for k, a in enumerate(attrs)
    }
    return AgreementResult(
        agreement=pd.DataFrame(rate, index=users, columns=users),
        n_shared=pd.DataFrame(shared.astype(np.int64), index=users, columns=users),
        per_user=per_user,
        alpha=_alpha_from_counts(counts, np.asarray(values, float), level),
        kappa=_kappa_from_counts(counts),
        level=level,
        n_units=int((counts.sum(axis=1) >= 2).sum()),
        alpha_by_attribute=alpha_by_attr,
    )
