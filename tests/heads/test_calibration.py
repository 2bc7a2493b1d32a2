"""Calibrated pair probabilities: the ranker's temperature on held-out items, and scikit-learn's
``CalibratedClassifierCV`` around the ranker with image-disjoint folds."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss
from sklearn.utils.fixes import parse_version

from skpercept._holdout import hold_out_items, pair_item_codes
from skpercept.heads._ranking import PairwiseRanker, fit_temperature
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
    assert fit_temperature(d, soft) == pytest.approx(2.5, rel=1e-3)
    assert fit_temperature(d, np.full_like(d, np.nan)) == 1.0


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
