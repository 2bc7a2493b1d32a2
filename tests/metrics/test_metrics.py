"""Metrics and scorers: hand-computed answers, NaN masking, scorers inside scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, cohen_kappa_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.metrics import (
    brier_score,
    expected_calibration_error,
    grouping_ari,
    kendall_tau,
    map_at_k,
    neg_brier_scorer,
    neg_ece_scorer,
    noise_ceiling,
    pair_order_ceiling,
    pairwise_accuracy,
    pairwise_accuracy_scorer,
    per_user_report,
    per_user_scores,
    percept_scorer,
    quadratic_weighted_kappa,
    qwk_scorer,
    rating_mae,
    recall_at_k,
    retrieval_scorer,
    spearman_rho,
    top1_in_series_accuracy,
)

NAN = np.nan


# -- pairwise accuracy ----------------------------------------------------------------------
def test_pairwise_accuracy_soft_labels_ties_and_abstentions():
    assert pairwise_accuracy([1, 0, 1, 0], [1, 1, 1, 0]) == 0.75
    # soft label 0.7 (70 % of raters prefer left): predicting left earns 0.7, right 0.3
    assert pairwise_accuracy([0.7, 0.7], [0.9, 0.1]) == pytest.approx(0.5)
    assert pairwise_accuracy([0.7], [0.9]) == pytest.approx(0.7)
    # a tie earns 0.5 whatever is predicted; an abstaining 0.5 prediction earns 0.5
    assert pairwise_accuracy([0.5, 1], [0.99, 0.5]) == 0.5


def test_pairwise_accuracy_masks_nan_and_averages_attributes():
    y = [[1, NAN], [0, 1], [1, 0]]
    p = [[0.8, 0.3], [0.6, 0.9], [0.7, 0.2]]
    raw = pairwise_accuracy(y, p, multioutput="raw_values")
    np.testing.assert_allclose(raw, [2 / 3, 1.0])
    assert pairwise_accuracy(y, p) == pytest.approx(5 / 6)


def test_pairwise_accuracy_errors():
    with pytest.raises(ValueError, match=r"different shapes: \(3,\) vs \(2,\)"):
        pairwise_accuracy([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match=r"in \[0, 1\]; got 2.0 at row 1"):
        pairwise_accuracy([1, 2], [1, 0])
    with pytest.raises(ValueError, match="every entry"):
        pairwise_accuracy([NAN, NAN], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        pairwise_accuracy([], [])
    with pytest.raises(ValueError, match="multioutput"):
        pairwise_accuracy([1], [1], multioutput="weighted")


# -- item scores and ratings ----------------------------------------------------------------
def test_rank_correlations_match_scipy_and_mask_nan():
    rng = np.random.default_rng(0)
    y, s = rng.normal(size=20), rng.normal(size=20)
    assert kendall_tau(y, s) == pytest.approx(stats.kendalltau(y, s).statistic)
    assert spearman_rho(y, s) == pytest.approx(stats.spearmanr(y, s).statistic)
    y2 = np.column_stack([y, np.where(np.arange(20) < 5, NAN, -y)])
    raw = spearman_rho(y2, np.column_stack([s, s]), multioutput="raw_values")
    assert raw[1] == pytest.approx(stats.spearmanr(-y[5:], s[5:]).statistic)
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))  # constant: undefined


def test_rating_mae_and_qwk():
    assert rating_mae([[1, 4], [2, NAN]], [[2, 4], [2, 1]]) == 0.25
    t, p = [1, 2, 3, 4, 4, 2], [1, 3, 3, 4, 2, 2]
    assert quadratic_weighted_kappa(t, p) == pytest.approx(cohen_kappa_score(t, p, weights="quadratic"))
    # hand: confusion [[1,0],[0,1]] on levels 1, 2 -> perfect agreement
    assert quadratic_weighted_kappa([1, 2], [1, 2]) == 1.0
    two = quadratic_weighted_kappa(
        [[1, 1], [2, NAN], [3, 3]], [[1, 2], [2, 4], [3, 3]], multioutput="raw_values"
    )
    assert two[0] == 1.0 and two[1] == pytest.approx(cohen_kappa_score([1, 3], [2, 3], weights="quadratic"))
    with pytest.raises(ValueError, match="non-integer"):
        quadratic_weighted_kappa([1, 2], [1.4, 2.0])


# -- probabilities --------------------------------------------------------------------------
def test_brier_binary_multiclass_and_two_column_forms():
    assert brier_score([1, 0], [0.8, 0.4]) == pytest.approx(0.1)
    assert brier_score([1, 0, 1], [0.8, 0.4, 0.3]) == pytest.approx(
        brier_score_loss([1, 0, 1], [0.8, 0.4, 0.3])
    )
    # hand: (.09 + .04 + .01 + .01 + .01 + .04) / 2
    q = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
    assert brier_score([0, 2], q) == pytest.approx(0.10)
    assert brier_score(["lo", "hi"], q, labels=["lo", "mid", "hi"]) == pytest.approx(0.10)
    # (n, 2) matrix = P(second class) in column 2
    assert brier_score([1, 0], [[0.2, 0.8], [0.6, 0.4]]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="pass labels="):
        brier_score([1, 4], q)


def test_brier_multi_attribute_nan_and_list_of_outputs():
    y = [[1, NAN], [0, 0]]
    p = [[0.8, 0.9], [0.4, 0.5]]
    np.testing.assert_allclose(brier_score(y, p, multioutput="raw_values"), [0.1, 0.25])
    as_list = [np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.1, 0.9], [0.5, 0.5]])]
    assert brier_score(y, as_list) == pytest.approx(0.175)
    with pytest.raises(ValueError, match="does not fit"):
        brier_score(y, [0.1, 0.2, 0.3])


def test_expected_calibration_error_known_answers():
    # bins [0, .5): labels 1, 1 vs mean p .25; [.5, 1]: mean label .5 vs .9
    assert expected_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.2, 0.3], n_bins=2) == (
        pytest.approx(0.5 * 0.75 + 0.5 * 0.4)
    )
    q = [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]]
    y = [0, 1, 2, 2]
    assert expected_calibration_error(y, q, n_bins=2) == pytest.approx(0.2)  # |.5 - .7|
    assert expected_calibration_error(y, q, n_bins=10) == pytest.approx((0.4 + 0.5 + 0.2 + 0.9) / 4)
    # perfectly calibrated: in each bin the label frequency equals p
    assert expected_calibration_error(
        [1, 0, 1, 1, 0, 0, 0, 0], [0.5] * 2 + [0.25] * 4 + [0.75] * 2, n_bins=4
    ) == pytest.approx(0.375 / 2 + 0.0 + 0.25 / 4 * 2)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([1], [0.5], n_bins=0)


# -- per user -------------------------------------------------------------------------------
def test_per_user_scores_pairs_pool_attributes_and_count_training():
    # ann: attractive right (1), smart wrong (0), soft 0.75 label earns 0.75 -> 1.75 / 3
    y = np.array([[1, 0], [0.75, NAN], [NAN, NAN], [1, 1]])
    p = np.array([[0.9, 0.8], [0.6, 0.1], [0.5, 0.5], [0.2, 0.7]])
    users = ["ann", "ann", "cid", "bob"]
    scores = per_user_scores(y, p, users, train_users=["ann"] * 4 + ["zoe"])
    assert scores.index.tolist() == ["ann", "bob", "cid"]  # zoe only trained: not listed
    assert scores.loc["ann", "accuracy"] == pytest.approx(1.75 / 3)
    assert scores.loc["bob", "accuracy"] == pytest.approx(0.5)
    assert scores["n_test"].tolist() == [3, 2, 0] and np.isnan(scores.loc["cid", "accuracy"])
    assert scores["n_train"].tolist() == [4, 0, 0]
    assert scores["known"].tolist() == [True, False, False]
    pooled = pairwise_accuracy(y[:2].reshape(-1), p[:2].reshape(-1))
    assert scores.loc["ann", "accuracy"] == pytest.approx(pooled)
    counted = per_user_scores(y, p, users, train_users={"ann": 4, "zoe": 1})
    pd.testing.assert_frame_equal(counted, scores)


def test_per_user_scores_ratings_levels_and_probabilities():
    y = [1, 2, 4, 3]
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.0, 0.0, 0.2, 0.8]])
    scores = per_user_scores(y, proba, ["a", "a", "b", "b"], kind="ratings", labels=[1, 2, 3, 4])
    assert "n_train" not in scores and scores.loc["a", "accuracy"] == 0.5
    assert scores.loc["a", "mae"] == pytest.approx(0.5) and scores.loc["b", "mae"] == pytest.approx(0.5)
    levels = per_user_scores(y, [1, 3, 4, 4], ["a", "a", "b", "b"], kind="ratings")
    pd.testing.assert_frame_equal(levels, scores)
    with pytest.raises(ValueError, match="labels="):
        per_user_scores(y, proba, ["a"] * 4, kind="ratings")


def test_per_user_scores_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        per_user_scores([1], [1], ["a"], kind="rank")
    with pytest.raises(ValueError, match="users"):
        per_user_scores([1, 0], [1, 0], ["a"])
    with pytest.raises(ValueError, match="shapes"):
        per_user_scores([1, 0], [[1, 0]], ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        per_user_scores([1, 0], [0.7, NAN], ["a", "b"])
    with pytest.raises(ValueError, match="probability"):
        per_user_scores([1, 0], [1.7, 0.2], ["a", "b"])


def test_per_user_report():
    y = [[1, NAN], [0, 1], [1, 1], [NAN, NAN]]
    p = [[1, 0], [1, 1], [1, 0], [1, 1]]
    report = per_user_report(y, p, ["b", "a", "a", "c"], metrics=["pairwise_accuracy", "brier_score"])
    assert report.index.tolist() == ["a", "b", "c"]
    assert report.loc["a", "n_labels"] == 4 and report.loc["b", "n_labels"] == 1
    assert report.loc["a", "pairwise_accuracy"] == pytest.approx(0.5)  # 1/2 per attribute
    assert report.loc["b", "pairwise_accuracy"] == 1.0
    assert report.loc["c", "n_labels"] == 0 and np.isnan(report.loc["c", "brier_score"])
    with pytest.raises(ValueError, match="same length"):
        per_user_report([1, 0], [1, 0], ["a"])
    with pytest.raises(ValueError, match="row 1"):
        per_user_report([1, 0], [1, 0], ["a", None])
    with pytest.raises(ValueError, match="Unknown metric"):
        per_user_report([1], [1], ["a"], metrics=["auc"])


# -- noise ceiling --------------------------------------------------------------------------
def _synthetic_ratings(n_items=800, k=20, noise_sd=2.0, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n_items)
    items = np.repeat(np.arange(n_items), k)
    return truth, pd.DataFrame(
        {"image": items, "rating": truth[items] + noise_sd * rng.normal(size=len(items))}
    )


def test_noise_ceiling_recovers_known_reliability():
    truth, df = _synthetic_ratings()
    report = noise_ceiling(df, rating_col="rating", n_splits=10, random_state=0)
    row = report.loc["rating"]
    # var(true) = 1, noise var 4: a mean of m ratings has reliability 1 / (1 + 4 / m)
    assert row["split_half_r"] == pytest.approx(1 / (1 + 4 / 10), abs=0.03)
    assert row["spearman_brown_r"] == pytest.approx(1 / (1 + 4 / 20), abs=0.03)
    assert row["n_items"] == 800 and row["ratings_per_item"] == 20
    # the ceiling is the rate at which the true consensus orders pairs as the observed means do
    means = df.groupby("image")["rating"].mean().to_numpy()
    i, j = np.triu_indices(len(truth), 1)
    agree = np.mean(np.sign(truth[i] - truth[j]) == np.sign(means[i] - means[j]))
    assert row["pair_order_ceiling"] == pytest.approx(agree, abs=0.01)


def test_noise_ceiling_wide_and_long_formats_agree_and_nan_is_skipped():
    _, df = _synthetic_ratings(n_items=100, k=6)
    wide = df.rename(columns={"rating": "smart"})
    wide["trustworthy"] = np.where(np.arange(len(df)) % 3 == 0, NAN, wide["smart"])
    long = pd.concat(
        [
            pd.DataFrame({"image": wide["image"], "rating": wide[c], "attribute": c})
            for c in ["smart", "trustworthy"]
        ]
    )
    a = noise_ceiling(wide, random_state=0)  # rating columns found automatically
    b = noise_ceiling(long, rating_col="rating", group_col="attribute", random_state=0)
    assert a.index.tolist() == ["smart", "trustworthy"] == b.index.tolist()
    assert a.loc["trustworthy", "n_ratings"] == int(wide["trustworthy"].notna().sum())
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())


def test_noise_ceiling_errors_and_pair_order_ceiling():
    assert pair_order_ceiling(1.0) == 1.0 and pair_order_ceiling(0.0) == 0.5
    assert pair_order_ceiling(-0.2) == 0.5
    _, df = _synthetic_ratings(n_items=10, k=4)
    with pytest.raises(ValueError, match=r"\['stimulus'\] not in ratings"):
        noise_ceiling(df, item_col="stimulus", rating_col="rating")
    with pytest.raises(ValueError, match="Too few items"):
        noise_ceiling(df.drop_duplicates("image").head(5), rating_col="rating")
    with pytest.raises(TypeError, match="DataFrame"):
        noise_ceiling(df.to_numpy())


# -- scorers in scikit-learn ----------------------------------------------------------------
def _pairs(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    logit = 2 * (a - b) @ w
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.hstack([a, b]), y


def _difference(X):
    half = X.shape[1] // 2
    return X[:, :half] - X[:, half:]


def _diff_logreg(**kw):
    return make_pipeline(FunctionTransformer(_difference), LogisticRegression(**kw))


def test_pairwise_scorers_in_cross_val_score():
    X, y = _pairs()
    cv = KFold(3, shuffle=True, random_state=0)
    ours = cross_val_score(_diff_logreg(), X, y, cv=cv, scoring=pairwise_accuracy_scorer)
    sk = cross_val_score(_diff_logreg(), X, y, cv=cv, scoring="accuracy")
    np.testing.assert_allclose(ours, sk)
    assert ours.mean() > 0.7
    brier = cross_val_score(_diff_logreg(), X, y, cv=cv, scoring=neg_brier_scorer)
    np.testing.assert_allclose(brier, cross_val_score(_diff_logreg(), X, y, cv=cv, scoring="neg_brier_score"))
    ece = cross_val_score(_diff_logreg(), X, y, cv=cv, scoring=neg_ece_scorer)
    assert np.all((ece <= 0) & (ece > -0.3))


def test_proba_scorer_uses_predict_proba_and_works_in_grid_search():
    X, y = _pairs()
    model = _diff_logreg().fit(X, y)
    expected = -expected_calibration_error(y, model.predict_proba(X)[:, 1])
    assert neg_ece_scorer(model, X, y) == pytest.approx(expected)
    search = GridSearchCV(
        _diff_logreg(),
        {"logisticregression__C": [0.01, 1.0]},
        cv=3,
        scoring={
            "acc": pairwise_accuracy_scorer,
            "ece": percept_scorer("neg_expected_calibration_error", n_bins=5),
        },
        refit="acc",
    ).fit(X, y)
    assert set(search.cv_results_) >= {"mean_test_acc", "mean_test_ece"}


def test_rating_scorers_with_a_multiclass_classifier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=200), [-0.7, 0, 0.7]) + 1  # levels 1..4
    clf = LogisticRegression().fit(X, y)
    assert qwk_scorer(clf, X, y) == pytest.approx(cohen_kappa_score(y, clf.predict(X), weights="quadratic"))
    brier = percept_scorer("neg_brier_score", labels=[1, 2, 3, 4])
    assert brier(clf, X, y) == pytest.approx(-brier_score(y, clf.predict_proba(X), labels=clf.classes_))
    scores = cross_val_score(LogisticRegression(), X, y, cv=3, scoring=qwk_scorer)
    assert np.all(scores > 0.5)
    assert percept_scorer("neg_rating_mae")(clf, X, y) <= 0
    assert percept_scorer("accuracy")(clf, X, y) > 0.5  # falls back to scikit-learn's names


def test_noise_ceiling_reproduces_the_omi_readme_table():
    datasets = pytest.importorskip("skpercept.datasets")
    omi = datasets.load_omi(["trustworthy", "attractive", "smart"])  # repeats excluded
    report = noise_ceiling(
        omi.ratings, item_col="image", rating_col="rating", group_col="attribute", n_splits=10, random_state=0
    )
    readme = {  # split-half r, Spearman-Brown r, pair-order ceiling (data README)
        "trustworthy": (0.917, 0.957, 0.933),
        "attractive": (0.822, 0.902, 0.899),
        "smart": (0.761, 0.864, 0.880),
    }
    for attribute, expected in readme.items():
        got = report.loc[attribute, ["split_half_r", "spearman_brown_r", "pair_order_ceiling"]]
        np.testing.assert_allclose(got.to_numpy(dtype=float), expected, atol=0.01)


# -- near-duplicate retrieval and photo series (hand-computed cases) ----------------------------
# positions on a line; groups a a a b b, and c alone far away (a candidate, never a query)
_POSITIONS = np.array([[0.0], [1.0], [5.0], [5.5], [10.2], [100.0]])
_GROUPS = ["a", "a", "a", "b", "b", "c"]


def test_map_at_k_hand_checked():
    # neighbours (nearest first) and relevant flags per query:
    # 0: 1 2 3 4 -> 1 1 0 0   AP = 1
    # 1: 0 2 3 4 -> 1 1 0 0   AP = 1
    # 2: 3 1 0 4 -> 0 1 1 0   AP = (1/2 + 2/3) / 2 = 7/12
    # 3: 2 1 4 0 -> 0 0 1 0   AP = 1/3 (one relevant item)
    # 4: 3 2 1 0 -> 1 0 0 0   AP = 1
    assert map_at_k(_GROUPS, _POSITIONS, metric="euclidean") == pytest.approx((3 + 7 / 12 + 1 / 3) / 5)
    # at k=2 the denominator is min(2, R): query 2 gets (1/2) / 2, query 3 gets 0
    assert map_at_k(_GROUPS, _POSITIONS, k=2, metric="euclidean") == pytest.approx(0.65)
    distances = np.abs(_POSITIONS - _POSITIONS.T)
    assert map_at_k(_GROUPS, distances, metric="precomputed") == pytest.approx((3 + 7 / 12 + 1 / 3) / 5)


def test_recall_at_k_hand_checked():
    assert recall_at_k(_GROUPS, _POSITIONS, k=1, metric="euclidean") == pytest.approx(
        (0.5 + 0.5 + 0 + 0 + 1) / 5
    )
    assert recall_at_k(_GROUPS, _POSITIONS, k=2, metric="euclidean") == pytest.approx(
        (1 + 1 + 0.5 + 0 + 1) / 5
    )
    assert recall_at_k(_GROUPS, _POSITIONS, k=10, metric="euclidean") == 1.0


def test_retrieval_metrics_use_cosine_by_default_and_refuse_bad_input():
    X = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [1.0, 12.0]])  # direction, not length, matters
    assert map_at_k([0, 0, 1, 1], X, k=1) == 1.0
    with pytest.raises(ValueError, match="alone in its group"):
        map_at_k([0, 1, 2], np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        recall_at_k([0, 0], [[1.0, np.nan], [1.0, 0.0]])
    with pytest.raises(ValueError, match="k must be"):
        map_at_k([0, 0], np.eye(2), k=0)
    with pytest.raises(ValueError, match="shape"):
        map_at_k([0, 0, 1], np.eye(2))


def test_retrieval_scorer_embeds_then_scores():
    from sklearn.preprocessing import FunctionTransformer

    scorer = retrieval_scorer(k=2, metric="euclidean", kind="recall")
    assert scorer(FunctionTransformer().fit(None), _POSITIONS, _GROUPS) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="kind"):
        retrieval_scorer(kind="ndcg")


def test_top1_in_series_accuracy_hand_checked():
    series = ["s1", "s1", "s1", "s2", "s2", "s3", "s4", "s4"]
    truth = [1, 0, 0, 0.5, 0.5, 1, 2, 1]  # s2: both are right; s3: one item, skipped
    score = [0.9, 0.1, 0.2, 0.3, 0.4, 0.0, 0.5, 0.5]  # s4: a tie at the top, half right
    assert top1_in_series_accuracy(series, truth, score) == pytest.approx((1 + 1 + 0.5) / 3)
    assert top1_in_series_accuracy([1, 1, 2, 2], [1, 0, 0, 1], [0, 1, 1, 0]) == 0.0
    with pytest.raises(ValueError, match="No series"):
        top1_in_series_accuracy([1, 2], [1, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match="missing"):
        top1_in_series_accuracy([1, 1], [1, 0], [np.nan, 0.5])


def test_grouping_ari_hand_checked():
    # contingency pairs: 1 + 1 = 2 agreeing; rows 3 + 3 = 6, columns 1 + 1 + 1 = 3, of 15 pairs:
    # (2 - 6 * 3 / 15) / ((6 + 3) / 2 - 6 * 3 / 15) = 0.8 / 3.3
    assert grouping_ari([0, 0, 0, 1, 1, 1], ["x", "x", "y", "y", "z", "z"]) == pytest.approx(0.8 / 3.3)
    assert grouping_ari(["a", "a", "b"], [5, 5, 9]) == 1.0
    with pytest.raises(ValueError, match="lengths"):
        grouping_ari([0, 0], [0])
    with pytest.raises(ValueError, match="missing"):
        grouping_ari([0, None], [0, 0])
