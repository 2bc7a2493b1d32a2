"""Deep ensembles of the heads (``n_ensemble``) and scikit-learn's ensembles around them."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import BaggingRegressor, VotingRegressor
from sklearn.utils._param_validation import InvalidParameterError

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.persistence import load_safe, save_safe

SMALL = dict(hidden_layer_sizes=(8,), max_epochs=8, patience=2, batch_size=64, lr=1e-2, device="cpu")


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.RandomState(0)
    items = rng.normal(size=(60, 4)).astype(np.float32)
    a, b = rng.randint(0, 60, size=(2, 600))
    X = np.hstack([items[a], items[b]])
    y = (items[a, 0] + 0.5 * rng.normal(size=600) > items[b, 0]).astype(np.float32)
    return X, y, items


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.RandomState(1)
    images = rng.normal(size=(50, 5)).astype(np.float32)
    rows = rng.randint(0, 50, size=300)  # several ratings per image: items repeat
    X = images[rows]
    y = 3.0 * X[:, 0] + rng.normal(size=300)
    return X, y


def _members(cls, X, y, seeds, **params):
    return [cls(**SMALL, **params, random_state=int(s)).fit(X, y) for s in seeds]


def test_ranker_ensemble_is_the_mean_of_its_members(pairs):
    X, y, items = pairs
    ens = PairwiseRanker(**SMALL, n_ensemble=3, calibration="temperature", random_state=5).fit(X, y)
    np.testing.assert_array_equal(ens.ensemble_seeds_, [5, 6, 7])
    assert len(ens.nets_) == 3 and ens.nets_[0] is ens.net_
    assert ens.temperature_.shape == (3, 1)
    singles = _members(PairwiseRanker, X, y, ens.ensemble_seeds_, calibration="temperature")
    np.testing.assert_allclose(
        ens.decision_function(X), np.mean([m.decision_function(X) for m in singles], axis=0), atol=1e-10
    )
    np.testing.assert_allclose(
        ens.score_items(items), np.mean([m.score_items(items) for m in singles], axis=0)
    )
    np.testing.assert_allclose(ens.temperature_[:, 0], [m.temperature_[0, 0] for m in singles])
    # members differ (their own seeds and hold-outs), so averaging does something
    assert not np.allclose(singles[0].decision_function(X), singles[1].decision_function(X))
    assert ens.n_straddling_ == singles[0].n_straddling_


def test_ranker_ensemble_is_exactly_antisymmetric(pairs):
    X, y, items = pairs
    ens = PairwiseRanker(**SMALL, n_ensemble=3, random_state=0).fit(X, y)
    swapped = np.hstack([X[:, 4:], X[:, :4]])
    np.testing.assert_array_equal(ens.decision_function(swapped), -ens.decision_function(X))
    np.testing.assert_array_equal(ens.predict_proba(swapped)[:, 1], ens.predict_proba(X)[:, 0])
    s = ens.score_items(items)
    a, b = X[:, :4], X[:, 4:]
    pa = 1 / (1 + np.exp(-(ens.score_items(a) - ens.score_items(b))))
    np.testing.assert_allclose(pa, ens.predict_proba(X)[:, 1], atol=1e-6)
    assert s.shape == (60,)


def test_regressor_ensemble_is_the_mean_of_its_members_and_of_voting(ratings):
    X, y = ratings
    ens = RatingRegressor(**SMALL, n_ensemble=2, random_state=0).fit(X, y)
    singles = _members(RatingRegressor, X, y, ens.ensemble_seeds_)
    mean = np.mean([m.predict(X) for m in singles], axis=0)
    np.testing.assert_allclose(ens.predict(X), mean, rtol=1e-6)
    voting = VotingRegressor(
        [(f"m{s}", RatingRegressor(**SMALL, random_state=int(s))) for s in ens.ensemble_seeds_]
    ).fit(X, y)
    np.testing.assert_allclose(voting.predict(X), mean, rtol=1e-6)


def test_classifier_ensemble_averages_probabilities(ratings):
    X, y = ratings
    levels = np.digitize(y, [-2.0, 0.0, 2.0])
    for loss in ("ce", "corn"):
        ens = RatingClassifier(**SMALL, loss=loss, n_ensemble=2, random_state=3).fit(X, levels)
        singles = _members(RatingClassifier, X, levels, ens.ensemble_seeds_, loss=loss)
        proba = np.mean([m.predict_proba(X) for m in singles], axis=0)
        np.testing.assert_allclose(ens.predict_proba(X), proba, atol=1e-6)
        np.testing.assert_array_equal(ens.predict(X), ens.classes_[proba.argmax(axis=1)])


def test_bagging_regressor_works_with_the_regressor(ratings):
    X, y = ratings
    # The regressor takes sample_weight, so Bagging passes its bootstrap draws as weights.
    member = RatingRegressor(**{**SMALL, "max_epochs": 30})
    bag = BaggingRegressor(member, n_estimators=3, random_state=0).fit(X, y)
    assert len(bag.estimators_) == 3
    assert len({e.random_state for e in bag.estimators_}) == 3  # Bagging seeds each member
    pred = bag.predict(X)
    np.testing.assert_allclose(pred, np.mean([e.predict(X) for e in bag.estimators_], axis=0), rtol=1e-6)
    assert bag.score(X, y) > 0.5


def test_ensemble_round_trips_through_joblib_safe_file_and_clone(pairs, ratings, tmp_path):
    X, y, items = pairs
    ens = PairwiseRanker(**SMALL, n_ensemble=2, calibration="temperature", random_state=0).fit(X, y)
    assert not np.array_equal(ens.temperature_, np.ones((2, 1)))
    joblib.dump(ens, tmp_path / "ranker.joblib")
    loaded = joblib.load(tmp_path / "ranker.joblib")
    np.testing.assert_array_equal(loaded.decision_function(X), ens.decision_function(X))
    assert loaded.nets_[0] is loaded.net_
    save_safe(ens, tmp_path / "ranker.safetensors")
    safe = load_safe(tmp_path / "ranker.safetensors")
    assert len(safe.nets_) == 2
    np.testing.assert_allclose(safe.decision_function(X), ens.decision_function(X), rtol=1e-6)
    np.testing.assert_allclose(safe.score_items(items), ens.score_items(items), rtol=1e-6)
    np.testing.assert_array_equal(safe.temperature_, ens.temperature_)
    Xr, yr = ratings
    reg = RatingRegressor(**SMALL, n_ensemble=3, random_state=0).fit(Xr, yr)
    save_safe(reg, tmp_path / "reg.safetensors")
    np.testing.assert_allclose(
        load_safe(tmp_path / "reg.safetensors").predict(Xr), reg.predict(Xr), rtol=1e-6
    )
    assert clone(reg).get_params()["n_ensemble"] == 3
    assert not hasattr(clone(reg), "nets_")


def test_callbacks_see_every_member_and_predict_mid_training(ratings):
    from skorch.callbacks import Callback

    X, y = ratings

    class Spy(Callback):
        def __init__(self, est):
            self.est = est
            self.seen = []

        def on_epoch_end(self, net, **kwargs):
            pred = self.est.predict(X[:5])
            assert pred.shape == (5,) and np.isfinite(pred).all()
            self.seen.append((len(self.est.nets_), len(net.history)))

    est = RatingRegressor(**{**SMALL, "early_stopping": False, "max_epochs": 2}, n_ensemble=2, random_state=0)
    spy = Spy(est)
    est.set_params(callbacks=[("spy", spy)]).fit(X, y)
    assert spy.seen == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_n_ensemble_is_validated(ratings):
    X, y = ratings
    with pytest.raises(InvalidParameterError, match="n_ensemble"):
        RatingRegressor(n_ensemble=0).fit(X, y)
