"""How sure a personal model is: the prior strength and temperature chosen inside ``fit``."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from skpercept.heads import PairwiseRanker, RatingClassifier, RatingRegressor
from skpercept.metrics import expected_calibration_error, pairwise_accuracy
from skpercept.personal import USER_ALPHA_GRID
from skpercept.personal._mixin import _half_the_say

FAST = dict(hidden_layer_sizes=(16,), max_epochs=60, patience=8, device="cpu", random_state=0)


def _people_pairs(taste: float, n_people=30, per_person=60, n_items=120, seed=0):
    """Items described by 6 features; each person's utility is a shared direction plus
    ``taste`` times a personal one. Pairs are split item-disjointly into train and test."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, 6)).astype(np.float32)
    shared = rng.normal(size=6)
    tastes = shared + taste * rng.normal(size=(n_people, 6))
    test_items = rng.rand(n_items) < 0.3

    def draw(pool, per):
        u = np.repeat(np.arange(n_people), per)
        a, b = (rng.choice(pool, len(u)) for _ in range(2))
        keep = a != b
        u, a, b = u[keep], a[keep], b[keep]
        d = np.einsum("nd,nd->n", tastes[u], items[a] - items[b])
        y = (rng.uniform(size=len(u)) < 1 / (1 + np.exp(-d))).astype(float)
        people = np.eye(n_people, dtype=np.float32)[u]
        return np.hstack([items[a], people, items[b], people]), y

    train = draw(np.flatnonzero(~test_items), per_person)
    test = draw(np.flatnonzero(test_items), 40)
    return train, test, list(range(6, 6 + n_people))


@pytest.fixture(scope="module")
def differing():
    return _people_pairs(taste=1.0)


def test_prior_strength_follows_how_much_people_differ(differing):
    (X, y), _, users = differing
    apart = PairwiseRanker(**FAST, user_features=users).fit(X, y)
    (X_same, y_same), _, _ = _people_pairs(taste=0.0)
    alike = PairwiseRanker(**FAST, user_features=users).fit(X_same, y_same)
    for head in (apart, alike):
        assert head.user_alpha_.shape == (1,) and head.user_alpha_[0] in USER_ALPHA_GRID
        assert "cross-validation" in head.user_alpha_reason_ and "held-out labels" in head.user_alpha_reason_
    assert "item-disjoint" in apart.user_alpha_reason_  # items described by features: held out whole
    # people who share one taste keep deviations a fraction of those of people who differ
    size = {
        name: np.linalg.norm(h.nets_[0].module_.personal.V.detach().numpy())
        for name, h in [("apart", apart), ("alike", alike)]
    }
    assert size["apart"] > 3 * size["alike"]


def test_personal_probabilities_are_as_honest_as_the_shared_models(differing):
    (X, y), (X_test, y_test), users = differing
    shared = PairwiseRanker(**FAST).fit(X, y)
    personal = PairwiseRanker(**FAST, user_features=users).fit(X, y)
    # a weak prior, no temperature, no choice of trunk: how a personal model used to be fitted
    loose = PairwiseRanker(
        **FAST, user_features=users, user_alpha=0.01, calibration=None, choose_trunk=False
    ).fit(X, y)
    assert personal.calibration_ == "temperature" and shared.calibration_ is None
    p = {
        name: m.predict_proba(X_test)[:, 1]
        for name, m in [("shared", shared), ("personal", personal), ("loose", loose)]
    }
    ece = {name: expected_calibration_error(y_test, q) for name, q in p.items()}
    acc = {name: pairwise_accuracy(y_test, q) for name, q in p.items()}
    assert acc["personal"] > acc["shared"] + 0.03  # the people's deviations pay on new items
    assert ece["personal"] <= ece["shared"] + 0.02  # ... and say how sure they are as honestly
    assert ece["loose"] > ece["personal"] + 0.03  # unlike a weak prior without a temperature


def test_strength_is_chosen_by_cross_validation_without_a_hold_out(differing):
    (X, y), _, users = differing
    head = PairwiseRanker(**{**FAST, "max_epochs": 20}, user_features=users, early_stopping=False).fit(X, y)
    assert "3-fold cross-validation" in head.user_alpha_reason_ and "held-out" not in head.user_alpha_reason_
    assert head.calibration_ == "temperature"
    np.testing.assert_array_equal(head.temperature_, 1.0)  # no held-out rows: nothing to fit T on


def test_the_hold_out_has_half_the_say_however_few_its_labels():
    # seed 0 of benchmarks/personal_ratings.py at 5 ratings per person, strengths 1000 and 1:
    # the folds' 150 labels favour the weak prior a little, 16 labels of new faces the strong
    # one by far (new faces' log-loss: 1.21 at 1000 against 3.40 at 1)
    losses = np.array([[85.75, 52.03], [18.28, 41.49]])
    labels = np.array([150.0, 16.0])
    assert losses.sum(axis=0).argmin() == 1  # summed, the folds outvote the new faces
    np.testing.assert_allclose(
        _half_the_say(losses, labels), [(85.75 / 150 + 18.28 / 16) / 2, (52.03 / 150 + 41.49 / 16) / 2]
    )
    assert _half_the_say(losses, labels).argmin() == 0
    # no hold-out: the folds decide alone; a fit that diverged never wins
    np.testing.assert_allclose(_half_the_say(losses, np.array([150.0, 0.0])), losses[0] / 150)
    assert _half_the_say(np.array([[np.nan, 9.0]]), np.array([3.0])).tolist() == [np.inf, 3.0]


def test_a_strength_whose_fit_diverges_is_never_chosen(differing, monkeypatch):
    (X, y), _, users = differing
    fit_people = PairwiseRanker._map_people

    def diverging(self, output, blocks, y, weights, people, precision, alpha, *args, **kwargs):
        present, theta, H = fit_people(
            self, output, blocks, y, weights, people, precision, alpha, *args, **kwargs
        )
        return present, np.full_like(theta, np.nan) if alpha == min(USER_ALPHA_GRID) else theta, H

    monkeypatch.setattr(PairwiseRanker, "_map_people", diverging)
    head = PairwiseRanker(**FAST, user_features=users, user_prior="isotropic").fit(X, y)
    assert head.user_alpha_[0] != min(USER_ALPHA_GRID)
    assert np.isfinite(head.predict_proba(X[:20])).all()


def test_a_given_strength_is_kept_and_adding_a_person_uses_the_chosen_one(differing):
    (X, y), _, users = differing
    fixed = PairwiseRanker(**FAST, user_features=users, user_alpha=3.0).fit(X, y)
    np.testing.assert_array_equal(fixed.user_alpha_, [3.0])
    assert not hasattr(fixed, "user_alpha_reason_")
    auto = PairwiseRanker(**FAST, user_features=users, user_prior="isotropic").fit(X, y)
    chosen = auto.user_alpha_[0]
    d = auto.item_representation(X[:1, : X.shape[1] // 2]).shape[1]
    np.testing.assert_allclose(auto.user_prior_precision(), 2 * chosen * np.eye(d))
    # fit_users refits a person under the chosen strength (not the starting one)
    rows = X[:, 6] == 1  # person 0
    half = X[rows][:1, : X.shape[1] // 2]
    shared_w = auto.user_deviation(np.zeros_like(half))
    weak = copy.deepcopy(auto)
    weak.user_alpha_ = np.array([chosen / 100])
    spread = {}
    for name, head in (("chosen", auto), ("weak", weak)):
        head.fit_users(X[rows], y[rows])
        spread[name] = np.linalg.norm(head.user_deviation(half) - shared_w)
    assert spread["weak"] > 1.5 * spread["chosen"] > 0


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_rating_heads_choose_the_strength_too(kind):
    rng = np.random.RandomState(1)
    n_people, n = 25, 1500
    items = rng.normal(size=(n, 4)).astype(np.float32)
    u = rng.randint(0, n_people, n)
    lenient = rng.normal(scale=0.8, size=n_people)
    value = items[:, 0] + lenient[u] + 0.5 * rng.normal(size=n)
    X = np.hstack([items, np.eye(n_people, dtype=np.float32)[u]])
    users = list(range(4, 4 + n_people))
    if kind == "classifier":
        head = RatingClassifier(**FAST, user_features=users).fit(X, np.digitize(value, [-1, 0, 1]) + 1)
    else:
        head = RatingRegressor(**FAST, user_features=users).fit(X, value)
    assert head.user_alpha_[0] in USER_ALPHA_GRID
    assert head.user_alpha_reason_
    # leniency is what people differ in here: the chosen prior lets it through
    offsets = head.nets_[0].module_.personal.offset.detach().numpy()[:, 0]
    assert abs(np.corrcoef(offsets, lenient)[0, 1]) > 0.8  # (a classifier's offset moves its cut points)


def _items_pairs(utility, n_items, n_people, per_person, n_features, seed=0, linear_tastes=False):
    """Pairs of items with features, each person's judgments from ``utility(items) + taste``
    (a taste per item, or with ``linear_tastes`` a linear function of the features)."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, n_features)).astype(np.float32)
    worth = utility(items)
    if linear_tastes:
        tastes = 0.5 * rng.normal(size=(n_people, n_features)) @ items.T
    else:
        tastes = 0.5 * rng.normal(size=(n_people, n_items))
    u = np.repeat(np.arange(n_people), per_person)
    a, b = rng.randint(0, n_items, len(u)), rng.randint(0, n_items, len(u))
    keep = a != b
    u, a, b = u[keep], a[keep], b[keep]
    d = worth[a] - worth[b] + tastes[u, a] - tastes[u, b]
    y = (rng.uniform(size=len(u)) < 1 / (1 + np.exp(-d))).astype(float)
    people = np.eye(n_people, dtype=np.float32)[u]
    return np.hstack([items[a], people, items[b], people]), y, list(range(n_features, n_features + n_people))


def test_the_trunk_is_chosen_on_held_out_judgments_and_kept_when_saved():
    # everyone's taste linear in the items' features (and few items for them): the linear trunk
    X, y, users = _items_pairs(lambda z: z[:, :4].sum(1), 60, 40, 30, 16, linear_tastes=True)
    head = PairwiseRanker(**FAST, user_features=users).fit(X, y)
    assert head.hidden_layer_sizes_ == () and set(head.trunk_losses_) == {"linear", "hidden"}
    assert head.trunk_losses_["linear"] < head.trunk_losses_["hidden"]
    assert head.item_representation(X[:3, :56]).shape == (3, 16)  # the linear trunk: h(x) = x
    # a utility no linear function of the features gives: the hidden layer
    X, y, users = _items_pairs(lambda z: 3 * np.abs(z[:, 0]) - 1.5 * z[:, 1] ** 2, 300, 40, 120, 4)
    head = PairwiseRanker(**FAST, user_features=users).fit(X, y)
    assert head.hidden_layer_sizes_ == (16,)
    assert head.trunk_losses_["hidden"] < head.trunk_losses_["linear"]
    # the kept trunk is rebuilt when the model is loaded; a shared model trains one trunk
    again = pickle.loads(pickle.dumps(head))
    np.testing.assert_allclose(again.predict_proba(X[:50]), head.predict_proba(X[:50]), rtol=1e-6)
    assert again.hidden_layer_sizes_ == (16,) and again.hidden_layer_sizes == (16,)
    shared = PairwiseRanker(**{**FAST, "max_epochs": 5}).fit(X, y)
    assert shared.hidden_layer_sizes_ == (16,) and not hasattr(shared, "trunk_losses_")
    # more item columns than hidden units: the linear trunk would give people more parameters
    wide = PairwiseRanker(**{**FAST, "max_epochs": 5, "hidden_layer_sizes": (2,)}, user_features=users).fit(
        X, y
    )
    assert wide.hidden_layer_sizes_ == (2,) and not hasattr(wide, "trunk_losses_")
    off = PairwiseRanker(**{**FAST, "max_epochs": 5}, user_features=users, choose_trunk=False).fit(X, y)
    assert not hasattr(off, "trunk_losses_")
