"""Rater-quality analytics on synthetic raters with planted structure."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from skpercept.raters import (
    AgreementResult,
    agreement_matrix,
    filter_raters,
    fleiss_kappa,
    krippendorff_alpha,
    labeling_speed,
    plot_agreement,
    plot_rater_scores,
    random_rater_scores,
    rater_weights,
    rating_comparison_consistency,
    transitivity_violations,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C (4 coders, 12 units).
KRIPP_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def _tournament(user, order, flip=()):
    """All pairs among items ``order`` (best first) judged consistently, except ``flip``."""
    rows = []
    for i, j in itertools.combinations(range(len(order)), 2):
        a, b = order[i], order[j]
        rows.append((user, a, b, 0.0 if (a, b) in flip else 1.0))
    return rows


def _comps(rows):
    return pd.DataFrame(rows, columns=["user_id", "image_a", "image_b", "trust"])


def _brute_cycles(df):
    wins = {}
    for a, b, v in df[["image_a", "image_b", "trust"]].itertuples(index=False):
        wins[(a, b) if v == 1 else (b, a)] = True
    items = sorted(set(df.image_a) | set(df.image_b))
    tri = cyc = 0
    for x, y, z in itertools.combinations(items, 3):
        edges = [(p, q) for p, q in itertools.permutations((x, y, z), 2) if (p, q) in wins]
        if len(edges) == 3:
            tri += 1
            out = {p: sum(1 for e in edges if e[0] == p) for p in (x, y, z)}
            cyc += all(v == 1 for v in out.values())
    return tri, cyc


def _ratings_world(n_users=30, n_items=80, random_users=(3, 11, 25), seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n_items, 2))
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, 60, replace=False):
            if u in random_users:
                vals = rng.integers(1, 5, size=2)
            else:
                sign = -1 if u == 7 else 1  # user 7 has consistently reversed taste
                vals = np.clip(np.rint(2.5 + sign * q[i] + 0.5 * rng.normal(size=2)), 1, 4)
            rows.append((u, f"img{i}", *vals, 1e5 * u + 10.0 * len(rows)))
    return pd.DataFrame(rows, columns=["user_id", "image", "trust", "smart", "insert_time"])


# ---------------------------------------------------------------- transitivity
def test_transitivity_finds_planted_cycles_and_matches_brute_force():
    items = list("abcdefgh")
    rng = np.random.default_rng(1)
    random_rows = [(3, a, b, float(rng.integers(0, 2))) for a, b in itertools.combinations(items, 2)]
    df = _comps(_tournament(1, items) + _tournament(2, items, flip={("a", "c")}) + random_rows)
    res = transitivity_violations(df)
    assert res.loc[1, "n_triads"] == 56 and res.loc[1, "n_cycles"] == 0
    # flipping a>c turns exactly the triads (a, b, c) into a cycle: c > a > b > c
    assert res.loc[2, "n_cycles"] == 1
    tri, cyc = _brute_cycles(_comps(random_rows))
    assert (res.loc[3, "n_triads"], res.loc[3, "n_cycles"]) == (tri, cyc)
    assert res.attrs["overall"]["n_cycles"] == 1 + cyc
    assert res.loc[3, "cycle_fraction"] == pytest.approx(cyc / tri)


def test_transitivity_majority_votes_orientation_and_ties():
    # user 1 says x>y twice (once written as (y, x) with 0) and y>x once: majority x>y.
    df = _comps(
        [
            (1, "x", "y", 1),
            (1, "y", "x", 0),
            (1, "y", "x", 1),
            (1, "y", "z", 1),
            (1, "z", "x", 1),
            (2, "x", "y", 1),
            (2, "y", "x", 1),
            (2, "y", "z", 1),
            (2, "z", "x", 1),
        ]
    )
    res = transitivity_violations(df)
    assert res.loc[1, "n_cycles"] == 1 and res.loc[1, "n_pairs"] == 3
    # user 2's x/y votes tie: undecided pair, so no closed triad
    assert res.loc[2, "n_undecided"] == 1 and res.loc[2, "n_triads"] == 0
    assert np.isnan(res.loc[2, "cycle_fraction"])
    crowd = transitivity_violations(df, user_col=None)
    assert list(crowd.index) == ["all"] and crowd.loc["all", "n_triads"] == 1


def test_transitivity_by_attribute_and_missing_values():
    df = _comps(_tournament(1, list("abcd"), flip={("a", "c")}))
    df["smart"] = df["trust"]
    df.loc[0, "smart"] = NAN
    res = transitivity_violations(df, by_attribute=True)
    assert res.loc[(1, "trust"), "n_triads"] == 4 and res.loc[(1, "smart"), "n_pairs"] == 5
    assert transitivity_violations(df).loc[1, "n_pairs"] == 11


# ---------------------------------------------------------------- consistency
def test_consistency_separates_consistent_reversed_and_random_users():
    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(30)]
    true = dict(zip(items, rng.permutation(30)))
    ratings, comps = [], []
    for u, kind in enumerate(["good", "good", "reversed", "random"]):
        for it in items:
            ratings.append((u, it, 1 + true[it] // 8))
        for _ in range(200):
            a, b = rng.choice(items, 2, replace=False)
            v = float(true[a] > true[b])
            v = 1 - v if kind == "reversed" else rng.integers(0, 2) if kind == "random" else v
            comps.append((u, a, b, float(v)))
    comps.append((0, "i0", "never_rated", 1.0))
    res = rating_comparison_consistency(
        pd.DataFrame(ratings, columns=["user_id", "image", "trust"]), _comps(comps)
    )
    assert res.loc[0, "consistency"] == 1.0 and res.loc[1, "consistency"] == 1.0
    assert res.loc[2, "consistency"] == 0.0
    assert 0.35 < res.loc[3, "consistency"] < 0.65
    assert res.loc[0, "unrated"] == 1 and res.loc[0, "equal_rating"] > 0
    assert (res["agree"] + res["contradict"] + res["undecided"] == res["n_comparisons"]).all()


# ---------------------------------------------------------------- random raters
def test_random_rater_scores_flags_planted_random_users_only():
    df = _ratings_world()
    res = random_rater_scores(df, n_components=2, n_user_folds=5, n_shuffles=20)
    assert set(res.index[res["flag_random"]]) == {3, 11, 25}
    assert res.loc[7, "random_z"] > 5  # reversed but consistent taste is not random
    assert res["rmse_ratio"].drop([3, 11, 25]).max() < res["rmse_ratio"][[3, 11, 25]].min()
    by_attr = random_rater_scores(df, attributes="trust", by_attribute=True, n_user_folds=5, n_shuffles=10)
    assert by_attr.index.names == ["user_id", "attribute"] and len(by_attr) == 30
    again = random_rater_scores(df, n_components=2, n_user_folds=5, n_shuffles=20)
    pd.testing.assert_frame_equal(res, again)


def test_random_rater_scores_repeats_constant_and_tiny_users():
    df = _ratings_world(n_users=12, random_users=(3,))
    first = df[df.user_id == 0].head(20)
    df = pd.concat([df, first, df[df.user_id == 3].head(20).assign(trust=lambda d: 5 - d.trust)])
    df = pd.concat(
        [
            df,
            pd.DataFrame(
                {
                    "user_id": [90] * 30,
                    "image": [f"img{i}" for i in range(30)],
                    "trust": 2.0,
                    "smart": 2.0,
                    "insert_time": 0.0,
                }
            ),
            pd.DataFrame(
                {"user_id": [91], "image": ["img0"], "trust": [3.0], "smart": [3.0], "insert_time": [0.0]}
            ),
        ],
        ignore_index=True,
    )
    res = random_rater_scores(df, n_user_folds=4, n_shuffles=10)
    assert res.loc[0, "repeat_mad"] == 0 and res.loc[0, "n_repeat_pairs"] == 40
    assert res.loc[3, "repeat_ratio"] > 0.5
    assert np.isnan(res.loc[5, "repeat_mad"])
    assert res.loc[90, "random_z"] == 0 and res.loc[90, "flag_random"]  # straight-liner
    assert np.isnan(res.loc[91, "random_z"]) and not res.loc[91, "flag_random"]


# ---------------------------------------------------------------- speed
def test_labeling_speed_flags_fast_users_and_parses_dates():
    t0 = pd.Timestamp("2024-01-01 10:00")
    rows = [(1, t0 + pd.Timedelta(seconds=0.5 * k)) for k in range(20)]
    rows += [(2, t0 + pd.Timedelta(seconds=8 * k)) for k in range(20)]
    rows += [(2, t0 + pd.Timedelta(hours=5))]  # session break, left out
    rows += [(3, t0)]
    df = pd.DataFrame(rows, columns=["user_id", "insert_time"]).sample(frac=1, random_state=0)
    df["insert_time"] = df["insert_time"].astype(str)
    res = labeling_speed(df, threshold_s=2.0)
    assert res.loc[1, "flag_fast"] and not res.loc[2, "flag_fast"]
    assert res.loc[1, "median_s"] == pytest.approx(0.5) and res.loc[2, "p10_s"] == pytest.approx(8)
    assert res.loc[2, "n_sessions"] == 2 and res.loc[2, "n_intervals"] == 19
    assert np.isnan(res.loc[3, "median_s"]) and not res.loc[3, "flag_fast"]


# ---------------------------------------------------------------- agreement
@pytest.mark.parametrize(
    "level, expected", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_alpha_matches_published_example(level, expected):
    assert krippendorff_alpha(KRIPP_C, level=level) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_matches_reference_package(level):
    kd = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(0)
    data = rng.integers(1, 6, size=(6, 40)).astype(float)
    data[rng.random(data.shape) < 0.3] = NAN
    assert krippendorff_alpha(data, level=level) == pytest.approx(
        kd.alpha(reliability_data=data, level_of_measurement=level), abs=1e-9
    )


def test_fleiss_kappa_matches_wikipedia_example():
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    data = np.array([np.repeat(np.arange(5), row) for row in counts], dtype=float).T
    assert fleiss_kappa(data) == pytest.approx(0.210, abs=5e-4)


def test_agreement_matrix_orientation_reversed_user_and_no_shared_pairs():
    items = list("cafbed")  # not sorted, so both outcomes occur after orientation
    good = _tournament(0, items) + _tournament(1, items)
    # user 2 lists every pair the other way round (b, a) with the vote flipped: same judgments
    flipped = [(2, b, a, 1 - v) for _, a, b, v in _tournament(2, items)]
    reversed_ = [(3, a, b, 1 - v) for _, a, b, v in _tournament(3, items)]
    loner = [(4, "p", "q", 1.0)]
    res = agreement_matrix(_comps(good + flipped + reversed_ + loner))
    assert isinstance(res, AgreementResult)
    assert res.agreement.loc[0, 2] == 1.0 and res.n_shared.loc[0, 2] == 15
    assert res.agreement.loc[0, 3] == 0.0
    assert np.isnan(res.agreement.loc[0, 4]) and res.n_shared.loc[0, 4] == 0
    assert res.per_user.loc[3, "agreement_with_others"] == 0.0
    assert np.isnan(res.per_user.loc[4, "agreement_with_others"])
    assert res.n_units == 15 and res.level == "nominal"
    assert res.alpha < 0.1
    consistent = agreement_matrix(_comps(good + flipped))
    assert consistent.alpha == 1.0 and consistent.kappa == 1.0  # value set {0,1} across units


def test_agreement_matrix_on_ratings_uses_interval_alpha():
    df = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "image": list("xyzxyz"), "trust": [1, 2, 4, 1, 2, 3]})
    res = agreement_matrix(df)
    assert res.level == "interval" and res.agreement.loc[1, 2] == pytest.approx(2 / 3)
    expected = krippendorff_alpha([[1, 2, 4], [1, 2, 3]], level="interval")
    assert res.alpha == pytest.approx(expected)


# ---------------------------------------------------------------- filtering / weights / plots
def test_filter_raters_and_weights_drop_planted_bad_raters():
    ratings = _ratings_world(n_users=20, random_users=(3,))
    ratings.loc[ratings.user_id == 5, "insert_time"] = np.arange((ratings.user_id == 5).sum()) * 0.3
    ratings = pd.concat([ratings, ratings.head(5).assign(user_id=99)], ignore_index=True)
    report = filter_raters(ratings, min_labels=10)
    assert not report.loc[3, "keep"] and "random" in report.loc[3, "reasons"]
    assert not report.loc[5, "keep"] and "too fast" in report.loc[5, "reasons"]
    assert not report.loc[99, "keep"] and "too few labels" in report.loc[99, "reasons"]
    assert report.drop([3, 5, 99])["keep"].all() and (report.drop([3, 5, 99])["reasons"] == "").all()
    w = rater_weights(ratings, report)
    assert w.shape == (len(ratings),)
    np.testing.assert_array_equal(w == 0, ratings.user_id.isin([3, 5, 99]).to_numpy())
    soft = rater_weights(ratings, report, scheme="reliability")
    assert (soft[w == 0] == 0).all() and (soft[w > 0] > 0).all() and soft.max() <= 1
    with pytest.raises(ValueError, match="missing from the report"):
        rater_weights(pd.DataFrame({"user_id": [12345]}), report)
    assert rater_weights(pd.DataFrame({"user_id": [12345]}), report, unknown="one")[0] == 1.0


def test_plots_return_axes():
    import matplotlib

    matplotlib.use("Agg")
    scores = pd.DataFrame({"random_z": [5.0, 0.2, 8.0], "flag_random": [False, True, False]})
    ax = plot_rater_scores(scores, "random_z", flag="flag_random", threshold=2.0)
    assert len(ax.patches) == 3 and ax.get_ylabel() == "random_z"
    res = agreement_matrix(_comps(_tournament(0, list("abc")) + _tournament(1, list("abc"))))
    ax = plot_agreement(res)
    assert ax.images[0].get_array().shape == (2, 2)
    with pytest.raises(ValueError, match="column"):
        plot_rater_scores(scores, "nope")


# ---------------------------------------------------------------- bad input
def test_bad_columns_and_values_raise_clear_errors():
    comps = _comps(_tournament(1, list("abc")))
    with pytest.raises(ValueError, match="'image_b'"):
        transitivity_violations(comps.drop(columns="image_b"))
    with pytest.raises(ValueError, match="'who'"):
        agreement_matrix(comps, user_col="who")
    with pytest.raises(ValueError, match="'smart'"):
        transitivity_violations(comps, attributes=["smart"])
    with pytest.raises(ValueError, match="'trust'.*row 1"):
        transitivity_violations(comps.assign(trust=[1, 2, 0]))
    with pytest.raises(ValueError, match="with itself"):
        transitivity_violations(comps.assign(image_b=comps.image_a))
    with pytest.raises(ValueError, match="'trust' must be numeric"):
        random_rater_scores(
            pd.DataFrame({"user_id": [1], "image": ["x"], "trust": ["high"]}), attributes="trust"
        )
    ratings = pd.DataFrame({"user_id": [1], "image": ["x"], "smart": [2.0]})
    with pytest.raises(ValueError, match="ratings has no column 'trust'"):
        rating_comparison_consistency(ratings, comps)
    with pytest.raises(ValueError, match="'insert_time'"):
        labeling_speed(ratings)
    with pytest.raises(ValueError, match="cannot be read as times"):
        labeling_speed(ratings.assign(insert_time=["not a date"]))
    with pytest.raises(ValueError, match="'user_id' is missing at row 0"):
        transitivity_violations(comps.assign(user_id=[NAN, 1, 1]))
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPP_C, level="bogus")
