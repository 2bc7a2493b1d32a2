"""Calibrated probabilities: the heads' temperatures on held-out items, and scikit-learn's
``CalibratedClassifierCV`` around the ranker with image-disjoint folds."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss
from sklearn.utils.fixes import parse_version

from skpercept._holdout import hold_out_items, pair_item_codes
from skpercept.heads._joint import JointRatingRanker, join_labels, rating_rows
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier
from skpercept.heads.calibration import fit_level_temperature, fit_temperature
from skpercept.model_selection import ImageDisjointSplit

# A wide net trained hard on few noisy images: overconfident for new images when trained long.
OVERFIT = dict(hidden_layer_sizes=(64,), dropout=0.0, weight_decay=0.0, lr=1e-2, batch_size=64, device="cpu")


def _pairs(rng, items, n_pairs, noise=1.0):
    a, b = rng.randint(0, len(items), size=(2, n_pairs))
    keep = a != b
    a, b = a[keep], b[keep]
    d = 2.0 * (items[a, 0] - items[b, 0])
    y = (rng.uniform(size=len(a)) < 1 / (1 + np.exp(-d / noise))).astype(np.float32)
    return np.hstack([items[a], items[b]]).astype(np.float32), y, np.column_stack([a, b])


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    train_items = rng.normal(size=(80, 6))
    test_items = rng.normal(size=(80, 6))  # new images
    X, y, groups = _pairs(rng, train_items, 2000)
    X_test, y_test, _ = _pairs(rng, test_items, 2000)
    return X, y, groups, X_test, y_test


def test_fit_temperature_recovers_the_scale_with_soft_and_missing_labels():
    rng = np.random.RandomState(0)
    d = rng.normal(scale=3.0, size=4000)
    soft = 1 / (1 + np.exp(-d / 2.5))  # soft labels: the true probabilities
    soft[::10] = np.nan
    assert fit_temperature(d, soft) == pytest.approx(2.5, rel=1e-2)
    assert fit_temperature(d, np.full_like(d, np.nan)) == 1.0


def test_fit_temperature_is_not_made_certain_by_a_few_lucky_pairs():
    # five held-out pairs, each won by the favourite: without the prior on log T the log-loss
    # falls all the way to the search's bound (T = e⁻⁴, every probability 0.99+)
    T = fit_temperature(np.array([0.5, 1.0, 0.8, 1.5, 0.3]), np.ones(5))
    assert 0.2 < T < 1.0


def test_temperature_is_fitted_on_the_held_out_items(data):
    X, y, *_ = data
    params = dict(OVERFIT, max_epochs=15, patience=3, random_state=0)
    raw = PairwiseRanker(**params).fit(X, y)
    cal = PairwiseRanker(**params, calibration="temperature").fit(X, y)
    np.testing.assert_array_equal(raw.temperature_, np.ones((1, 1)))
    assert (raw.calibration_, cal.calibration_) == (None, "temperature")  # 'auto': None without people
    # the rows training never saw: the early-stopping hold-out (the same seed draws the same
    # held-out images) and the rows straddling it
    train = hold_out_items(pair_item_codes(X)[0], 0.1, 0).train
    held = np.setdiff1d(np.arange(len(X)), train)
    expected = fit_temperature(raw.decision_function(X[held]), y[held])
    assert cal.temperature_[0, 0] == pytest.approx(expected, rel=1e-6)
    # calibration changes the scale only: same training, same decisions, same item order
    np.testing.assert_allclose(cal.decision_function(X) * cal.temperature_[0, 0], raw.decision_function(X))
    np.testing.assert_array_equal(cal.predict(X), raw.predict(X))
    items = X[:50, :6]
    np.testing.assert_array_equal(np.argsort(cal.score_items(items)), np.argsort(raw.score_items(items)))


def test_multi_output_temperature_per_attribute(data):
    X, y, *_ = data
    Y = np.column_stack([y, np.where(np.arange(len(y)) % 3 == 0, np.nan, 1 - y)]).astype(np.float32)
    ranker = PairwiseRanker(**OVERFIT, max_epochs=5, patience=2, calibration="temperature", random_state=0)
    ranker.fit(X, Y)
    assert ranker.temperature_.shape == (1, 2)
    assert np.all(ranker.temperature_ > 0)


def test_no_temperature_without_held_out_rows(data):
    X, y, *_ = data
    ranker = PairwiseRanker(
        **OVERFIT, max_epochs=2, early_stopping=False, calibration="temperature", random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(ranker.temperature_, np.ones((1, 1)))


@pytest.mark.skipif(
    parse_version(sklearn.__version__) < parse_version("1.8"),
    reason="CalibratedClassifierCV(method='temperature') is new in scikit-learn 1.8",
)
def test_calibrated_classifier_cv_with_image_disjoint_folds(data):
    X, y, groups, X_test, y_test = data
    hard = y.astype(int)
    ranker = PairwiseRanker(**OVERFIT, max_epochs=15, patience=3, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        # groups go to the splitter (image-disjoint folds) and to the ranker's own item hold-out
        ranker.set_fit_request(groups=True)
        calibrated = CalibratedClassifierCV(
            ranker, method="temperature", cv=ImageDisjointSplit(n_splits=3, random_state=0)
        ).fit(X, hard, groups=groups)
        raw = ranker.fit(X, hard, groups=groups)
    assert len(calibrated.calibrated_classifiers_) == 3
    p = calibrated.predict_proba(X_test)[:, 1]
    swapped = np.hstack([X_test[:, 6:], X_test[:, :6]])
    # temperature scaling of an antisymmetric logit stays antisymmetric
    np.testing.assert_allclose(calibrated.predict_proba(swapped)[:, 1], 1 - p, atol=1e-12)
    assert log_loss(y_test, p) < log_loss(y_test, raw.predict_proba(X_test)[:, 1])


# -- the rating classifier's temperature ---------------------------------------------------------
def _ratings(rng, n, n_features=6, levels=4, noise=1.0):
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    latent = 1.5 * X[:, 0] + rng.logistic(scale=noise, size=n)
    return X, 1 + np.digitize(latent, [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("loss", ["ce", "corn"])
def test_fit_level_temperature_recovers_the_scale_and_skips_missing_ratings(loss):
    import torch

    from skpercept.heads.nets import corn_proba

    rng = np.random.RandomState(0)
    width = 4 if loss == "ce" else 3
    logits = rng.normal(scale=3.0, size=(6000, width))
    tempered = torch.from_numpy(logits / 2.0)
    p = (torch.softmax(tempered, dim=1) if loss == "ce" else corn_proba(tempered)).numpy()
    codes = np.array([rng.choice(4, p=row / row.sum()) for row in p], dtype=float)
    codes[::7] = np.nan
    assert fit_level_temperature(logits, codes, loss) == pytest.approx(2.0, rel=0.08)
    assert fit_level_temperature(logits, np.full(len(codes), np.nan), loss) == 1.0


def test_fit_level_temperature_is_not_made_certain_by_a_few_lucky_ratings():
    """Five held-out ratings that all agree with the argmax: without the prior on log T the
    log-loss falls all the way to the search's lower bound (T = e⁻⁴, near-certain probabilities)."""

    logits = np.array([[2.0, 0.5, 0.0, -1.0]] * 5)
    T = fit_level_temperature(logits, np.zeros(5), "ce")
    assert 0.3 < T < 1.0


def test_rating_temperature_divides_the_logits_and_keeps_the_decisions():
    rng = np.random.RandomState(0)
    X, y = _ratings(rng, 400, n_features=30)  # one feature that matters, 29 to overfit on
    X_test, y_test = _ratings(rng, 2000, n_features=30)
    # one trunk: choosing between trunks judges each at its own calibrated held-out loss
    params = dict(OVERFIT, max_epochs=40, patience=40, choose_trunk=False, random_state=0)
    raw = RatingClassifier(**params).fit(X, y)
    cal = RatingClassifier(**params, calibration="temperature").fit(X, y)
    np.testing.assert_array_equal(raw.temperature_, np.ones((1, 1)))
    assert (raw.calibration_, cal.calibration_) == (None, "temperature")  # 'auto': None without people
    T = cal.temperature_[0, 0]
    assert T > 1.1  # a wide net on 400 rows of 30 features: overconfident on new ones
    logits = raw._predict_with_net(raw.net_, X_test)
    expected = np.exp(logits / T) / np.exp(logits / T).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cal.predict_proba(X_test), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(cal.predict(X_test), raw.predict(X_test))
    assert log_loss(y_test, cal.predict_proba(X_test)) < log_loss(y_test, raw.predict_proba(X_test))


def test_rating_temperature_per_attribute_with_corn_and_for_people():
    rng = np.random.RandomState(1)
    X, y = _ratings(rng, 400)
    Y = np.column_stack([y, np.where(np.arange(len(y)) % 3 == 0, np.nan, 5 - y)])
    multi = RatingClassifier(**OVERFIT, loss="corn", max_epochs=5, patience=2, calibration="temperature")
    multi.set_params(random_state=0).fit(X, Y)
    assert multi.temperature_.shape == (1, 2) and np.all(multi.temperature_ > 0)
    # a model of people is calibrated by default
    users = np.eye(8, dtype=np.float32)[rng.randint(0, 8, size=len(X))]
    personal = RatingClassifier(
        hidden_layer_sizes=(), max_epochs=5, user_features=np.arange(6, 14), random_state=0
    )
    personal.fit(np.hstack([X, users]), y)
    assert personal.calibration_ == "temperature" and personal.temperature_.shape == (1, 1)


def test_a_rating_model_saved_before_calibration_predicts_as_it_did():
    rng = np.random.RandomState(2)
    X, y = _ratings(rng, 300)
    head = RatingClassifier(**OVERFIT, max_epochs=3, calibration="temperature", random_state=0).fit(X, y)
    raw = head._predict_with_net(head.net_, X)  # the untempered logits
    del head.temperature_, head.calibration_  # as a file written by an earlier version holds it
    np.testing.assert_allclose(
        head.predict_proba(X), np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True), rtol=1e-5
    )


# -- the joint head's two temperatures -----------------------------------------------------------
def _joint_rows(rng, items, n_rated, n_pairs):
    """Ratings (1–4) and comparisons of ``items`` whose worth is ``1.5 · items[:, 0]``."""
    worth = 1.5 * items[:, 0]
    rated = rng.randint(0, len(items), n_rated)
    levels = 1 + np.digitize(worth[rated] + rng.logistic(size=n_rated), [-1.0, 0.0, 1.0])
    a, b = rng.randint(0, len(items), size=(2, n_pairs))
    prefs = (rng.uniform(size=n_pairs) < 1 / (1 + np.exp(worth[b] - worth[a]))).astype(float)
    return items[rated], levels, np.hstack([items[a], items[b]]).astype(np.float32), prefs


def test_joint_temperatures_divide_pair_and_rating_logits_apart():
    from scipy.special import expit

    rng = np.random.RandomState(3)
    Xr, yr, Xp, yp = _joint_rows(rng, rng.normal(size=(120, 30)).astype(np.float32), 600, 600)
    Xr_test, _, Xp_test, yp_test = _joint_rows(rng, rng.normal(size=(200, 30)).astype(np.float32), 2000, 2000)
    params = dict(OVERFIT, max_epochs=40, patience=40, choose_trunk=False, random_state=0)
    raw = JointRatingRanker(**params).fit(*join_labels(Xr, yr, Xp, yp))
    cal = JointRatingRanker(**params, calibration="temperature").fit(*join_labels(Xr, yr, Xp, yp))
    assert (raw.calibration_, cal.calibration_) == (None, "temperature")  # 'auto': None without people
    np.testing.assert_array_equal(raw.temperature_, np.ones((1, 2, 1)))
    (T_pair,), (T_rating,) = cal.temperature_[0]
    # 30 features, one that matters: the pairs are overconfident on new items; the ratings have
    # a temperature of their own (read off the same score through thresholds, they differ)
    assert T_pair > 1.1 and abs(np.log(T_rating / T_pair)) > 0.1
    # pairs: σ(d / T_pair), the decisions kept, and score_items on the same scale
    d = cal._predict_with_net(cal.net_, Xp_test)[:, 0]
    p = cal.predict_pair_proba(Xp_test)[:, 1]
    np.testing.assert_allclose(p, expit(d / T_pair), rtol=1e-6)
    np.testing.assert_array_equal(cal.predict(Xp_test), raw.predict(Xp_test))
    s = cal.score_items(np.vstack([Xp_test[:, :30], Xp_test[:, 30:]]))
    np.testing.assert_allclose(expit(s[: len(d)] - s[len(d) :]), p, rtol=1e-5, atol=1e-6)
    # ratings: the cumulative logits divided by T_rating
    z = cal._predict_with_net(cal.net_, rating_rows(Xr_test))[:, 1:-1] / T_rating
    above = expit(z)
    expected = np.hstack([np.ones((len(z), 1)), above]) - np.hstack([above, np.zeros((len(z), 1))])
    np.testing.assert_allclose(cal.predict_rating_proba(Xr_test), expected, rtol=1e-5, atol=1e-7)
    # the pairs, overconfident, come closer to the truth on new items
    assert log_loss(yp_test, p) < log_loss(yp_test, raw.predict_pair_proba(Xp_test)[:, 1])


def test_joint_model_of_people_is_calibrated_by_default_and_per_attribute():
    rng = np.random.RandomState(4)
    items = rng.normal(size=(80, 4)).astype(np.float32)
    Xr, yr, Xp, yp = _joint_rows(rng, items, 400, 400)
    people = np.eye(5, dtype=np.float32)
    who_r, who_p = rng.randint(0, 5, len(Xr)), rng.randint(0, 5, len(Xp))
    Xr = np.hstack([Xr, people[who_r]])
    Xp = np.hstack([Xp[:, :4], people[who_p], Xp[:, 4:], people[who_p]])
    X, y = join_labels(Xr, yr, Xp, yp)
    Y = np.column_stack([y, np.where(np.arange(len(y)) % 4 == 0, np.nan, y)])
    model = JointRatingRanker(hidden_layer_sizes=(8,), max_epochs=8, user_features="auto", random_state=0)
    model.fit(X, Y)
    assert model.calibration_ == "temperature"
    assert model.temperature_.shape == (1, 2, 2) and np.all(model.temperature_ > 0)
    assert not np.allclose(model.temperature_, 1.0)
