"""Random-clicker detection: a user's ratings against a low-rank model of everyone else."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from skpercept.raters._frames import check_frame, resolve_attributes, user_codes


def _pairwise_abs_sum(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of |x_i - x_j| over unordered pairs within each group, and the number of pairs."""
    order = np.lexsort((values, groups))
    v, g = values[order], groups[order]
    size = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.arange(len(v)) - start[g]
    # sorted x: sum_{i<j} (x_j - x_i) = sum_k x_k (2k - m + 1)
    total = np.bincount(g, weights=v * (2 * rank - size[g] + 1), minlength=n_groups)
    return total, size * (size - 1) / 2.0


def _item_features(
    user: np.ndarray,
    item: np.ndarray,
    r: np.ndarray,
    train: np.ndarray,
    n_items: int,
    n_components: int,
    shrink: float,
    seed: int,
) -> tuple[np.ndarray, float]:
    """Item features from training users only: [item-mean offset, low-rank residual factors]."""
    ut, it, rt = user[train], item[train], r[train]
    gm = float(rt.mean())
    s = np.bincount(it, weights=rt, minlength=n_items)
    c = np.bincount(it, minlength=n_items)
    mu = (s + shrink * gm) / (c + shrink)
    feats = [(mu - gm)[:, None]]
    rows, urow = np.unique(ut, return_inverse=True)
    k = min(n_components, len(rows) - 1, n_items - 1)
    if k > 0:
        e = rt - mu[it]
        e -= (np.bincount(urow, weights=e) / np.bincount(urow))[urow]
        mat = sp.csr_matrix((e, (urow, it)), shape=(len(rows), n_items))
        _, sing, vt = randomized_svd(mat, k, n_iter=4, random_state=seed)
        # Scale so that a typical user's loading on each factor is O(1) under the ridge penalty.
        feats.append(vt.T * (sing / np.sqrt(len(rows))))
    return np.hstack(feats), gm


def _crossfit_sse(x: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int, ridge: float) -> np.ndarray:
    """Out-of-fold squared error of per-user ridge fits, one value per target column of ``y``."""
    p = x.shape[1] + 1
    xb = np.hstack([np.ones((len(x), 1)), x])
    pen = ridge * np.eye(p)
    pen[0, 0] = 1e-8  # the user's own offset is not shrunk
    sse = np.zeros(y.shape[1])
    for f in range(n_folds):
        test = folds == f
        if not test.any():
            continue
        tr = ~test
        w = np.linalg.solve(xb[tr].T @ xb[tr] + pen, xb[tr].T @ y[tr])
        sse += ((y[test] - xb[test] @ w) ** 2).sum(axis=0)
    return sse


def random_rater_scores(
    ratings: pd.DataFrame,
    *,
    attributes: str | Sequence[str] | None = None,
    user_col: str = "user_id",
    item_col: str = "image",
    time_col: str | None = "insert_time",
    n_components: int = 5,
    n_user_folds: int = 10,
    n_item_folds: int = 5,
    n_shuffles: int = 30,
    ridge: float = 1.0,
    min_ratings: int = 10,
    z_threshold: float = 2.0,
    by_attribute: bool = False,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Score how much each user's ratings look like random clicks, with a shuffle baseline.

    Method, per attribute (a user's repeated ratings of one item are averaged first):

    1. Users are split into ``n_user_folds`` groups. For the users of one group, item features
       come only from the *other* users (leave-the-group-out, so a user never explains
       themselves): the shrunken item mean (as an offset from the grand mean) and the
       ``n_components`` right singular vectors of the other users' residual matrix
       (rating - item mean - user mean, zero where unrated), i.e. a rank-k SVD completion.
       This costs ``n_user_folds`` truncated SVDs instead of one refit per user.
    2. Each held-out user gets a ridge regression of their ratings on those item features
       (own intercept, own slope on the crowd's item mean, own loadings on the factors), fitted
       and evaluated out-of-fold over the user's items (``n_item_folds``), so the error is a
       prediction error. A user with idiosyncratic but consistent taste is predicted well.
    3. The *same* procedure is repeated with the user's ratings permuted among the items they
       rated (``n_shuffles`` times). The item features do not depend on the user, so the
       shuffle baseline is exact and cheap. A random clicker's real error is just another
       draw from the shuffled errors; a consistent rater's is far below them.

    Errors are pooled over attributes (sums of squares). ``random_z`` = (mean shuffled RMSE -
    real RMSE) / std of shuffled RMSE: about N(0, 1) for a random clicker, large for a real
    rater; ``rmse_ratio`` = real / mean shuffled (about 1 for a random clicker). A user who
    gives every item the same rating carries no information: ``random_z`` = 0.

    Repeat consistency uses the raw rows: for items a user rated more than once,
    ``repeat_mad`` is the mean absolute difference between the repeated ratings and
    ``repeat_mad_random`` the same expectation for two independent draws from the user's own
    ratings; ``repeat_ratio`` = their ratio (about 1 for a random clicker, 0 for a perfectly
    repeatable one).

    Parameters
    ----------
    ratings : DataFrame
        Wide ratings: ``user_col``, ``item_col`` and one numeric column per attribute.
    attributes : str or list of str, default=None
        Rating columns; ``None`` takes every numeric column other than the id/time columns.
    user_col, item_col, time_col : str
        Column names (``time_col`` only excluded from attribute inference).
    n_components : int, default=5
        Rank of the SVD completion (0 = item means only).
    n_user_folds, n_item_folds : int, default=10, 5
        Leave-group-out folds over users, cross-fitting folds over a user's items.
    n_shuffles : int, default=30
        Permutations of each user's ratings for the baseline.
    ridge : float, default=1.0
        Ridge penalty on a user's slope and loadings.
    min_ratings : int, default=10
        Users with fewer rated items (over all attributes) get NaN scores and no flag.
    z_threshold : float, default=2.0
        ``flag_random`` is ``random_z < z_threshold``.
    by_attribute : bool, default=False
        One row per (user, attribute) instead of pooling attributes.
    random_state : int or None, default=0
        Seeds folds, SVDs and shuffles.

    Returns
    -------
    DataFrame
        Indexed by user (or user and attribute): ``n_ratings``, ``rmse``, ``rmse_shuffled``,
        ``rmse_ratio``, ``random_z``, ``p_value`` (share of shuffles at least as good as the
        real labels, with the +1 correction), ``flag_random``, ``n_repeat_pairs``,
        ``repeat_mad``, ``repeat_mad_random``, ``repeat_ratio``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skpercept.raters import random_rater_scores
    >>> rng = np.random.default_rng(0)
    >>> quality = rng.normal(size=60)
    >>> rows = [(u, i, np.clip(np.rint(2.5 + (quality[i] if u < 8 else rng.normal())
    ...          + 0.3 * rng.normal()), 1, 4)) for u in range(10) for i in range(60)]
    >>> df = pd.DataFrame(rows, columns=["user_id", "image", "trust"])
    >>> scores = random_rater_scores(df, n_components=1, n_user_folds=5)
    >>> scores["flag_random"].tolist()
    [False, False, False, False, False, False, False, False, True, True]
    """
    ratings = check_frame(ratings, "ratings", [user_col, item_col])
    attrs = resolve_attributes(ratings, attributes, [user_col, item_col, time_col], "ratings")
    if min(n_user_folds, n_item_folds) < 2 or n_shuffles < 2:
        raise ValueError("n_user_folds and n_item_folds must be >= 2 and n_shuffles >= 2.")
    users, user_index = user_codes(ratings, user_col, "ratings")
    items, _ = pd.factorize(ratings[item_col], sort=True)
    if (items < 0).any():
        raise ValueError(f"ratings column {item_col!r} is missing at row {ratings.index[items < 0][0]!r}.")
    n_users, n_items, n_attr = len(user_index), int(items.max()) + 1, len(attrs)
    rng = np.random.default_rng(random_state)
    user_fold = rng.permutation(np.arange(n_users) % min(n_user_folds, max(n_users, 2)))

    sse = np.zeros((n_users, n_attr))
    evaluated = np.zeros((n_users, n_attr), dtype=bool)
    sse_shuf = np.zeros((n_users, n_attr, n_shuffles))
    n_obs = np.zeros((n_users, n_attr))
    rep_sum = np.zeros((n_users, n_attr))
    rep_pairs = np.zeros((n_users, n_attr))
    base = np.zeros((n_users, n_attr))
    for a, attr in enumerate(attrs):
        v = ratings[attr].to_numpy(dtype=float)
        ok = ~np.isnan(v)
        u_raw, i_raw, r_raw = users[ok], items[ok], v[ok]
        key = u_raw * n_items + i_raw
        uniq, inv = np.unique(key, return_inverse=True)
        s_rep, p_rep = _pairwise_abs_sum(r_raw, inv, len(uniq))
        np.add.at(rep_sum[:, a], uniq // n_items, s_rep)
        np.add.at(rep_pairs[:, a], uniq // n_items, p_rep)
        s_all, p_all = _pairwise_abs_sum(r_raw, u_raw, n_users)
        with np.errstate(divide="ignore", invalid="ignore"):
            base[:, a] = s_all / p_all
        # one entry per (user, item): repeats averaged
        r = np.bincount(inv, weights=r_raw) / np.bincount(inv)
        u, i = uniq // n_items, uniq % n_items
        n_obs[:, a] = np.bincount(u, minlength=n_users)
        order = np.argsort(u, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(n_obs[:, a].astype(int))])
        u, i, r = u[order], i[order], r[order]
        for g in np.unique(user_fold):
            held = user_fold[u] == g
            if held.all():
                continue
            feats, _gm = _item_features(
                u, i, r, ~held, n_items, n_components, 1.0, int(rng.integers(2**31 - 1))
            )
            for uid in np.flatnonzero(user_fold == g):
                lo, hi = bounds[uid], bounds[uid + 1]
                m = hi - lo
                if m < 2:
                    continue
                y = r[lo:hi]
                perms = np.stack([y] + [rng.permutation(y) for _ in range(n_shuffles)], axis=1)
                folds = rng.permutation(np.arange(m) % min(n_item_folds, m))
                errs = _crossfit_sse(feats[i[lo:hi]], perms, folds, n_item_folds, ridge)
                sse[uid, a], sse_shuf[uid, a] = errs[0], errs[1:]
                evaluated[uid, a] = True
    # A user who could not be held out against others stays unscored (NaN), never scored 0.
    n_eval = np.where(evaluated, n_obs, 0.0)
    return _score_frame(
        sse,
        sse_shuf,
        n_obs,
        n_eval,
        rep_sum,
        rep_pairs,
        base,
        user_index,
        attrs,
        by_attribute,
        min_ratings,
        z_threshold,
    )


def _score_frame(
    sse,
    sse_shuf,
    n_rated,
    n_obs,
    rep_sum,
    rep_pairs,
    base,
    users,
    attrs,
    by_attribute,
    min_ratings,
    z_threshold,
) -> pd.DataFrame:
    if by_attribute:
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        sse, sse_shuf, n_obs, n_rated = flat(sse), flat(sse_shuf), flat(n_obs), flat(n_rated)
        rep_sum, rep_pairs, rep_base = flat(rep_sum), flat(rep_pairs), flat(rep_pairs * base)
        index = pd.MultiIndex.from_product([users, pd.Index(attrs, name="attribute")])
    else:
        rep_base = np.nansum(rep_pairs * np.nan_to_num(base), axis=1)
        sse, sse_shuf, n_obs, n_rated = sse.sum(1), sse_shuf.sum(1), n_obs.sum(1), n_rated.sum(1)
        rep_sum, rep_pairs = rep_sum.sum(1), rep_pairs.sum(1)
        index = users
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt(sse / n_obs)
        rmse_s = np.sqrt(sse_shuf / n_obs[:, None])
        mean_s, std_s = rmse_s.mean(axis=1), rmse_s.std(axis=1, ddof=1)
        z = np.where(std_s > 1e-12 * np.maximum(mean_s, 1), (mean_s - rmse) / std_s, 0.0)
        p = (1 + (rmse_s <= rmse[:, None] + 1e-12).sum(axis=1)) / (1 + rmse_s.shape[1])
        ratio = rmse / mean_s
    enough = (n_obs >= min_ratings) & (n_obs > 0)
    out = pd.DataFrame(
        {
            "n_ratings": n_rated.astype(np.int64),
            "rmse": np.where(enough, rmse, np.nan),
            "rmse_shuffled": np.where(enough, mean_s, np.nan),
            "rmse_ratio": np.where(enough, ratio, np.nan),
            "random_z": np.where(enough, z, np.nan),
            "p_value": np.where(enough, p, np.nan),
            "flag_random": enough & (z < z_threshold),
            "n_repeat_pairs": rep_pairs.astype(np.int64),
        },
        index=index,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        has = rep_pairs > 0
        out["repeat_mad"] = np.where(has, rep_sum / np.where(has, rep_pairs, 1), np.nan)
        out["repeat_mad_random"] = np.where(has, rep_base / np.where(has, rep_pairs, 1), np.nan)
        out["repeat_ratio"] = out["repeat_mad"] / out["repeat_mad_random"]
    return out
