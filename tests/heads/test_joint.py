"""JointRatingRanker: ratings and comparisons of one latent score, in one model."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skpercept._holdout import hold_out_items
from skpercept.heads._joint import JointRatingRanker, join_labels, rating_rows
from skpercept.heads._joint_net import JointLoss
from skpercept.personal import add_users
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing._pairs import PairFeatures, swap_halves

CUTS = [-0.8, 0.0, 0.8]
FAST = dict(hidden_layer_sizes=(16,), lr=0.01, device="cpu", random_state=0)


def planted(n_items=120, n_rated=100, n_pairs=800, n_features=6, seed=0):
    """Items whose ratings (1–4, logistic noise) and comparisons (Bradley–Terry) share one score t."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, n_features))
    t = items @ rng.normal(size=n_features)
    t /= t.std()
    rated = rng.randint(0, n_items, n_rated)
    levels = np.digitize(t[rated] + rng.logistic(scale=0.3, size=n_rated), CUTS) + 1
    a, b = rng.randint(0, n_items, size=(2, n_pairs))
    prefs = (rng.uniform(size=n_pairs) < 1 / (1 + np.exp(-3 * (t[a] - t[b])))).astype(float)
    return items, t, (items[rated], levels), (np.hstack([items[a], items[b]]), prefs), (rated, a, b)


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    _items, _, (Xr, yr), (Xp, yp), _ids = data
    return JointRatingRanker(**FAST).fit(*join_labels(Xr, yr, Xp, yp))


def test_one_score_learned_from_both_label_types(data, fitted):
    items, t, (Xr, yr), _, _ids = data
    assert spearmanr(fitted.score_items(items), t).statistic > 0.95
    truth = np.digitize(t, CUTS) + 1
    expected = fitted.predict_rating_proba(items) @ np.arange(1, 5)
    # The same model on the ratings alone: the comparisons are what sharpen the ratings.
    alone = JointRatingRanker(**FAST).fit(rating_rows(Xr), yr)
    alone_expected = alone.predict_rating_proba(items) @ np.arange(1, 5)
    assert spearmanr(expected, t).statistic > spearmanr(alone_expected, t).statistic + 0.02
    assert np.abs(expected - truth).mean() < np.abs(alone_expected - truth).mean()
    assert np.mean(fitted.predict(rating_rows(items)) == truth) > 0.6
    assert np.all(np.diff(fitted.thresholds_[0]) > 0) and fitted.pair_scale_[0] > 0


def test_shapes_and_layouts(data, fitted):
    items, _, _, (Xp, _), _ids = data
    assert fitted.classes_.tolist() == [1, 2, 3, 4] and fitted.classes_.dtype.kind == "i"
    proba = fitted.predict_rating_proba(rating_rows(items[:5]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # items given as one half, and a pair row (its left item) rate the same
    np.testing.assert_allclose(fitted.predict_rating_proba(items[:5]), proba)
    np.testing.assert_allclose(fitted.predict_rating_proba(np.hstack([items[:5], items[5:10]])), proba)
    p = fitted.predict_pair_proba(Xp[:20])
    assert p.shape == (20, 2)
    np.testing.assert_array_equal(fitted.predict_pair_proba(swap_halves(Xp[:20])), p[:, ::-1])
    s = fitted.score_items(Xp[:20, :6]) - fitted.score_items(Xp[:20, 6:])
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-s)), atol=1e-6)
    X, _ = join_labels(items[:3], [1, 2, 3], Xp[:2], [1, 0])
    pred = fitted.predict(X)
    assert pred.shape == (5,) and set(pred[3:]) <= {0, 1} and set(pred[:3]) <= {1, 2, 3, 4}


def test_several_attributes_with_missing_labels(data):
    items, _t, (Xr, yr), (Xp, yp), _ids = data
    y_rated = np.column_stack([yr, 5 - yr]).astype(float)
    y_pairs = np.column_stack([yp, 1 - yp])
    y_rated[::3, 1] = np.nan
    y_pairs[::4, 0] = np.nan
    model = JointRatingRanker(**FAST, max_epochs=30).fit(*join_labels(Xr, y_rated, Xp, y_pairs))
    assert [c.tolist() for c in model.classes_] == [[1, 2, 3, 4]] * 2
    proba = model.predict_rating_proba(items[:4])
    assert isinstance(proba, list) and [p.shape for p in proba] == [(4, 4)] * 2
    assert model.predict_pair_proba(Xp[:3])[1].shape == (3, 2)
    assert model.score_items(items).shape == (len(items), 2)
    scores = model.score_items(items)
    assert spearmanr(scores[:, 0], -scores[:, 1]).statistic > 0.9
    X, y = join_labels(Xr, y_rated, Xp, y_pairs)
    assert model.predict(X).shape == y.shape and 0.5 < model.score(X, y) <= 1


def test_item_hold_out_spans_both_label_types(data):
    _items, _, (Xr, yr), (Xp, yp), ids = data
    X, y = join_labels(Xr, yr, Xp, yp)
    model = JointRatingRanker(**FAST, max_epochs=3).fit(X, y)
    codes, described = model._row_items(X.astype(np.float32))
    assert described and codes.shape == (len(X), 2)
    # a rated item and the same item in a comparison share one code
    first = np.flatnonzero((Xp[:, :6] == Xr[0]).all(axis=1))
    if len(first):
        assert codes[0, 0] == codes[len(Xr) + first[0], 0]
    split = hold_out_items(codes, 0.2, 0)
    held = set(codes[split.valid].ravel())
    assert not held & set(codes[split.train].ravel())
    rated = np.isnan(X[:, 6:]).all(axis=1)
    assert rated[split.valid].any() and (~rated[split.valid]).any()
    # groups: (left, right) ids; the right id of a rating row is ignored (here missing)
    rated_ids, a, b = ids
    groups = np.r_[np.column_stack([rated_ids, np.full(len(Xr), np.nan)]), np.column_stack([a, b])]
    fitted = JointRatingRanker(**FAST, max_epochs=3).fit(X, y, groups=groups)
    assert "valid_loss" in fitted.net_.history[-1] and fitted.n_straddling_ > 0


def test_reproducible_and_pickles(data, fitted, tmp_path):
    items, _, (Xr, yr), (Xp, yp), _ids = data
    again = JointRatingRanker(**FAST).fit(*join_labels(Xr, yr, Xp, yp))
    np.testing.assert_array_equal(again.score_items(items), fitted.score_items(items))
    joblib.dump(fitted, tmp_path / "joint.joblib")
    loaded = joblib.load(tmp_path / "joint.joblib")
    np.testing.assert_array_equal(loaded.predict_rating_proba(items), fitted.predict_rating_proba(items))
    assert clone(fitted).get_params() == fitted.get_params()


def test_pipeline_and_search(data):
    _, _, (Xr, yr), (Xp, yp), _ids = data
    X, y = join_labels(Xr, yr, Xp, yp)
    # StandardScaler ignores NaN when fitting and keeps it: the rating rows pass through intact
    pipe = make_pipeline(StandardScaler(), JointRatingRanker(**{**FAST, "max_epochs": 5}))
    folds = KFold(2, shuffle=True, random_state=0)  # join_labels puts all rating rows first
    search = GridSearchCV(pipe, {"jointratingranker__pair_weight": [0.5, 2.0]}, cv=folds).fit(X, y)
    assert 0 <= search.best_score_ <= 1
    assert search.predict(X).shape == (len(X),)


def test_bad_input(data):
    _, _, (Xr, yr), (Xp, yp), _ids = data
    X, y = join_labels(Xr, yr, Xp, yp)
    model = JointRatingRanker(**{**FAST, "max_epochs": 2})
    with pytest.raises(ValueError, match="even number of columns"):
        model.fit(X[:, :-1], y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="row 0 has NaN outside a whole right half"):
        model.fit(bad, y)
    bad = X.copy()
    bad[-1, -1] = np.nan
    with pytest.raises(ValueError, match="NaN outside a whole right half"):
        model.fit(bad, y)
    bad[-1, -1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match=r"pair rows need labels in \[0, 1\]"):
        model.fit(X, np.r_[yr, yp * 2])
    with pytest.raises(ValueError, match="outside classes"):
        JointRatingRanker(**FAST, classes=[1, 2, 3]).fit(X, y)
    with pytest.raises(ValueError, match="no rating"):
        model.fit(Xp, yp)
    with pytest.raises(ValueError, match="only 1 rating level"):
        model.fit(*join_labels(Xr, np.ones(len(Xr)), Xp, yp))
    fitted = model.fit(X, y)
    with pytest.raises(ValueError, match="needs pair rows"):
        fitted.predict_pair_proba(X[:3])
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :-2])
    with pytest.raises(ValueError, match="fitted with user_features"):
        fitted.fit_users(X, y)


def test_integer_sample_weights_act_as_repeated_rows(data):
    _, _, (Xr, yr), (Xp, yp), _ids = data
    X, y = join_labels(Xr[:30], yr[:30], Xp[:60], yp[:60])
    w = np.random.RandomState(0).randint(0, 3, len(X))
    # one full batch, no dropout: the weighted mean loss equals the loss of the repeated rows
    params = dict(FAST, batch_size=1000, max_epochs=10, dropout=0.0, early_stopping=False, pair_weight=0.5)
    weighted = JointRatingRanker(**params).fit(X, y, sample_weight=w)
    repeated = JointRatingRanker(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.score_items(Xr), repeated.score_items(Xr), atol=1e-4)
    assert weighted.score(X, y, sample_weight=w) == pytest.approx(
        repeated.score(np.repeat(X, w, 0), np.repeat(y, w))
    )


def test_comparisons_alone_need_the_levels(data):
    items, t, _, (Xp, yp), _ids = data
    model = JointRatingRanker(**FAST, classes=[1, 2, 3, 4]).fit(Xp, yp)
    assert spearmanr(model.score_items(items), t).statistic > 0.9
    assert model.predict_rating_proba(items).shape == (len(items), 4)


def test_person_offset_and_unknown_person_is_the_shared_model():
    rng = np.random.RandomState(1)
    items = rng.normal(size=(80, 4))
    t = items[:, 0]
    people = np.eye(3)  # lenient, harsh, neutral
    shift = np.array([1.0, -1.0, 0.0])
    who = rng.randint(0, 3, 600)
    item = rng.randint(0, 80, 600)
    levels = np.digitize(t[item] + shift[who] + rng.logistic(scale=0.3, size=600), CUTS) + 1
    Xr = np.hstack([items[item], people[who]])
    a, b = rng.randint(0, 80, size=(2, 400))
    pw = rng.randint(0, 3, 400)
    Xp = np.hstack([items[a], people[pw], items[b], people[pw]])
    yp = (t[a] > t[b]).astype(float)
    X, y = join_labels(Xr, levels, Xp, yp)
    model = JointRatingRanker(**FAST, user_features="auto", user_alpha=0.1).fit(X, y)
    assert model.user_features_.tolist() == [4, 5, 6]
    frame = pd.DataFrame(
        X, columns=[f"f{i}" for i in range(4)] + ["u_a", "u_b", "u_c"] + [f"r{i}" for i in range(7)]
    )
    named = JointRatingRanker(**{**FAST, "max_epochs": 2}, user_features=["u_a", "u_b", "u_c"]).fit(frame, y)
    assert named.user_features_.tolist() == [4, 5, 6]
    expected = lambda P: P @ np.arange(1, 5)  # noqa: E731
    lenient = expected(model.predict_rating_proba(np.hstack([items, np.tile(people[0], (80, 1))])))
    harsh = expected(model.predict_rating_proba(np.hstack([items, np.tile(people[1], (80, 1))])))
    assert np.mean(lenient - harsh) > 0.8
    # u = 0 is the shared model exactly: the same outputs with every personal parameter zeroed
    unknown = np.hstack([items, np.zeros((80, 3))])
    with_people = model.predict_rating_proba(unknown), model.score_items(unknown)
    shared = clone(model).set_params(user_features=None)
    module = model.net_.module_
    for name in ("taste", "offset", "log_scale"):
        getattr(module, name).data.zero_()
    zeroed = model.predict_rating_proba(unknown), model.score_items(unknown)
    np.testing.assert_array_equal(with_people[0], zeroed[0])
    np.testing.assert_array_equal(with_people[1], zeroed[1])
    assert shared.user_features is None
    d = 16 if model.hidden_layer_sizes_ else 4  # the trunk fit kept (choose_trunk)
    assert model.user_deviation(unknown).shape == (80, d, 1)
    np.testing.assert_allclose(model.user_deviation(unknown)[0, :, 0], module.head.weight[0].detach().numpy())
    assert model.item_representation(unknown).shape == (80, d)
    # user_alpha is the prior's precision: a strong prior keeps the personal parameters near 0
    tight = JointRatingRanker(**FAST, user_features="auto", user_alpha=1e4).fit(X, y)
    loose = JointRatingRanker(**FAST, user_features="auto", user_alpha=1e-3).fit(X, y)
    assert tight.net_.module_.personal_penalty() < 0.1 * loose.net_.module_.personal_penalty()


def test_auto_strength_trains_the_shared_part_as_the_shared_model():
    """user_alpha='auto': taste, offsets and log-scales stay at zero while the shared part trains,
    so an unknown person gets the shared model's ratings and scores."""
    (X, y), items = _people_data(
        [0, 1, 2], [0, 1, 2], seed=3, taste=[[1.0, 0, 0, 0], [0.5, 1, 0, 0], [1, 0, 0, 0]]
    )
    params = dict(FAST, choose_trunk=False, calibration=None, max_epochs=30)
    shared = JointRatingRanker(**params).fit(np.delete(X, [4, 5, 6, 11, 12, 13], axis=1), y)
    auto = JointRatingRanker(**params, user_features="auto", user_alpha="auto").fit(X, y)
    unknown = np.hstack([items, np.zeros((80, 3))])
    np.testing.assert_allclose(
        auto.predict_rating_proba(unknown), shared.predict_rating_proba(items), atol=1e-6
    )
    np.testing.assert_allclose(auto.score_items(unknown), shared.score_items(items), rtol=1e-5, atol=1e-6)
    assert auto.net_.module_.personal_penalty() > 0  # the people fitted afterwards


def _people_data(who_rates, who_compares, seed, taste=None, shift=None, n_rated=600, n_pairs=400):
    """Rating and pair rows of 80 items (score ``taste[u]·items``, rating offset ``shift[u]``),
    with the person one-hot (``len(taste)`` columns) in each half."""
    rng = np.random.RandomState(seed)
    items = np.random.RandomState(1).normal(size=(80, 4))
    taste = np.array([[1.0, 0, 0, 0]] * 3) if taste is None else np.asarray(taste)
    shift = np.r_[1.0, -1.0, np.zeros(len(taste) - 2)] if shift is None else np.asarray(shift)
    people = np.eye(len(taste))
    who, item = rng.choice(who_rates, n_rated), rng.randint(0, 80, n_rated)
    t = items @ taste.T  # (80, n_people)
    levels = np.digitize(t[item, who] + shift[who] + rng.logistic(scale=0.3, size=n_rated), CUTS) + 1
    a, b = rng.randint(0, 80, size=(2, n_pairs))
    pw = rng.choice(who_compares, n_pairs)
    prefs = (t[a, pw] > t[b, pw]).astype(float)
    Xr = np.hstack([items[item], people[who]])
    Xp = np.hstack([items[a], people[pw], items[b], people[pw]])
    return join_labels(Xr, levels, Xp, prefs), items


def _with_person_columns(X, k):
    """Rows of the joint layout with ``k`` zero person columns appended to each half."""
    half = X.shape[1] // 2
    right = np.where(np.isnan(X[:, half:]).all(axis=1)[:, None], np.nan, 0.0)
    return np.hstack([X[:, :half], np.zeros((len(X), k)), X[:, half:], right[:, :k]])


def test_fit_users_adds_a_person_and_touches_no_one_else(tmp_path):
    (X, y), items = _people_data([0, 1, 2], [0, 1, 2], seed=0)
    model = JointRatingRanker(**FAST, user_features=[4, 5, 6], user_alpha=0.1).fit(X, y)
    known = np.hstack([items, np.tile(np.eye(3)[1], (80, 1))])
    before = model.predict_rating_proba(X), model.predict_pair_proba(X[-400:]), model.score_items(known)
    # a new person (column 7): a harsh rater who prefers the opposite in comparisons
    taste = [[1.0, 0, 0, 0]] * 3 + [[-1.0, 0, 0, 0]]
    (X_new, y_new), _ = _people_data([3], [3], 1, taste, [1.0, -1.0, 0.0, -1.5], n_rated=30, n_pairs=30)
    (probe, _), _ = _people_data([3], [3], 2, taste, n_rated=1, n_pairs=200)
    cold = np.delete(probe, [7, 15], axis=1)  # unknown to the model: the shared model
    cold_pairs = model.predict_pair_proba(cold[1:])[:, 1]
    cold_levels = model.predict_rating_proba(rating_rows(np.hstack([items, np.zeros((80, 3))]))) @ np.arange(
        1, 5
    )
    start = time.perf_counter()
    assert model.fit_users(X_new, y_new) is model
    print(f"JointRatingRanker.fit_users: one person, 60 labels: {time.perf_counter() - start:.3f} s")
    assert model.n_user_features_ == 4 and model.user_features_.tolist() == [4, 5, 6, 7]
    assert model.n_half_features_ == 8 and model.n_features_in_ == 16
    # nobody else's predictions change, to the bit (their rows get a zero new column)
    wide = _with_person_columns(X, 1)
    np.testing.assert_array_equal(model.predict_rating_proba(wide), before[0])
    np.testing.assert_array_equal(model.predict_pair_proba(wide[-400:]), before[1])
    np.testing.assert_array_equal(model.score_items(np.hstack([known, np.zeros((80, 1))])), before[2])
    # the new person's predictions move toward their judgments: harsher, the opposite taste
    truth = (probe[1:, 0] < probe[1:, 8]).astype(float)
    pairs = model.predict_pair_proba(probe[1:])[:, 1]
    assert np.mean((pairs > 0.5) == truth) > np.mean((cold_pairs > 0.5) == truth) + 0.5
    own = rating_rows(np.hstack([items, np.zeros((80, 3)), np.ones((80, 1))]))
    assert (model.predict_rating_proba(own) @ np.arange(1, 5)).mean() < cold_levels.mean() - 0.3
    joblib.dump(model, tmp_path / "joint.joblib")
    loaded = joblib.load(tmp_path / "joint.joblib")
    np.testing.assert_array_equal(loaded.predict_pair_proba(probe[1:]), model.predict_pair_proba(probe[1:]))
    # a strong prior (user_alpha) keeps a person at the shared model
    tight = clone(model).set_params(user_alpha=1e6).fit(X, y).fit_users(X_new, y_new)
    assert tight.n_user_features_ == 4 and tight.net_.module_.personal_penalty() < 1e-4


def test_fit_users_refits_known_people_from_ratings_or_comparisons_alone():
    (X, y), items = _people_data([0, 1, 2], [0, 1, 2], seed=0)
    model = JointRatingRanker(**FAST, user_features="auto", user_alpha=0.1).fit(X, y)
    module = model.net_.module_
    taste = module.taste.detach().clone()
    offset = module.offset.detach().clone()
    # person 0 becomes harsh (ratings only); person 2's comparisons flip (pairs only)
    (X0, y0), _ = _people_data([0], [0], 3, shift=[-1.5, 0, 0], n_pairs=0, n_rated=40)
    model.fit_users(X0, y0)
    assert model.n_features_in_ == 14  # no new person
    assert module.offset[0, 0] < offset[0, 0] - 0.5
    np.testing.assert_array_equal(module.taste.detach()[:, :, 1:], taste[:, :, 1:])
    np.testing.assert_array_equal(module.offset.detach()[1:], offset[1:])
    # the fit is the MAP of the module's own loss: Σ loss + user_alpha·||θ_0||² is stationary
    module.eval()
    params = [module.taste, module.offset, module.log_scale]

    def person_0(tensors):
        return [tensors[0][..., 0], tensors[1][0], tensors[2][0]]

    losses, _ = JointLoss(n_classes=[4]).entry_losses(
        module(torch.from_numpy(X0.astype(np.float32))), torch.from_numpy(y0[:, None] - 1.0).float()
    )
    prior = 0.1 * sum(p.square().sum() for p in person_0(params))
    grads = person_0(torch.autograd.grad(losses.sum() + prior, params))
    assert max(g.abs().max().item() for g in grads) < 1e-3
    flipped = [[1.0, 0, 0, 0]] * 2 + [[-1.0, 0, 0, 0]]
    (X2, y2), _ = _people_data([2], [2], 4, taste=flipped, n_rated=0, n_pairs=40)
    model.fit_users(X2, y2)
    assert module.offset[2, 0] == 0  # no rating: the offset is its prior mean
    person = np.hstack([items, np.tile(np.eye(3)[2], (80, 1))])
    assert spearmanr(model.score_items(person), items[:, 0]).statistic < -0.5


def test_fit_users_input_errors():
    (X, y), _ = _people_data([0, 1, 2], [0, 1, 2], seed=0, n_rated=100, n_pairs=100)
    model = JointRatingRanker(**{**FAST, "max_epochs": 2}, user_features=[4, 5, 6]).fit(X, y)
    bad = X[-2:].copy()
    bad[:, 9] = np.nan  # a pair row with one missing feature
    with pytest.raises(ValueError, match="NaN outside a whole right half"):
        model.fit_users(bad, y[-2:])
    bad = X[-3:].copy()
    bad[:, 11:14] = np.eye(3)[[1, 2, 0]]
    with pytest.raises(ValueError, match="differ between the two halves"):
        model.fit_users(bad, y[-3:])
    with pytest.raises(ValueError, match="outside classes"):
        model.fit_users(X[:3], [1, 2, 7])
    with pytest.raises(ValueError, match="attribute column"):
        model.fit_users(X[:3], np.ones((3, 2)))
    with pytest.raises(ValueError, match="plus k new person columns"):
        model.fit_users(X[:, :-1], y)
    before = model.predict_rating_proba(X)
    rated_unknown = X[:2].copy()
    rated_unknown[:, 4:7] = 0
    with pytest.raises(ValueError, match="one known person per row"):
        model.fit_users(rated_unknown, y[:2])
    np.testing.assert_array_equal(model.predict_rating_proba(X), before)


def test_add_users_to_a_pair_pipeline():
    """PairFeatures (with a UserEncoder context) makes pair rows only: the joint model trained
    on comparisons alone (``classes`` given) takes new people like the ranker."""
    rng = np.random.RandomState(0)
    i, j = rng.randint(0, 20, size=(2, 400))
    who = rng.choice(["a1", "a2", "b1"], 400)
    sign = np.where(pd.Series(who).str.startswith("a"), 1.0, -1.0)
    table = pd.DataFrame({"image_a": i, "image_b": j, "user_id": who})
    items = FunctionTransformer(lambda s: np.column_stack([np.asarray(s, float) / 10, np.cos(s)]))
    pairs = PairFeatures(item_transformer=items, context_transformer=UserEncoder())
    head = JointRatingRanker(**FAST, classes=[1, 2, 3], user_features="auto", max_epochs=40)
    model = Pipeline([("pairs", pairs), ("head", head)]).fit(table, (sign * (i - j) > 0).astype(float))
    before = model.predict(table)
    new = pd.DataFrame({"image_a": i[:12], "image_b": j[:12], "user_id": "b2"})
    add_users(model, new, (i[:12] < j[:12]).astype(float))
    np.testing.assert_array_equal(model.predict(table), before)
    probe = pd.DataFrame({"image_a": i[100:300], "image_b": j[100:300], "user_id": "b2"})
    keep = i[100:300] != j[100:300]
    assert np.mean(model.predict(probe)[keep] == (i[100:300] < j[100:300])[keep]) > 0.8
    assert model["head"].n_user_features_ == 4 and model["pairs"].n_half_features_ == 6


def _expected_failed_checks(estimator):
    odd = (
        "the check uses an odd number of features; the joint layout needs [left | right] halves "
        "of equal width and raises a ValueError saying so"
    )
    labels = (
        "the check's rows are all pair rows (no NaN right half), whose labels must lie in [0, 1]; "
        "its class labels 2, 3, ... are rejected with a ValueError"
    )
    return {
        **dict.fromkeys(
            (
                "check_fit_score_takes_y",
                "check_dont_overwrite_parameters",
                "check_estimators_dtypes",
                "check_pipeline_consistency",
                "check_estimators_pickle",
                "check_f_contiguous_array_estimator",
                "check_methods_sample_order_invariance",
                "check_methods_subset_invariance",
                "check_fit2d_1feature",
                "check_dict_unchanged",
                "check_fit2d_predict1d",
                "check_sample_weights_list",
            ),
            odd,
        ),
        **dict.fromkeys(
            (
                "check_estimators_overwrite_params",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit",
                "check_dtype_object",
                "check_sample_weights_pandas_series",
                "check_sample_weights_not_an_array",
                "check_sample_weights_shape",
                "check_sample_weights_not_overwritten",
                "check_sample_weight_equivalence_on_dense_data",
            ),
            labels,
        ),
    }


_CHECKED = JointRatingRanker(
    hidden_layer_sizes=(16,),
    lr=0.1,
    max_epochs=20,
    batch_size=64,
    early_stopping=False,
    dropout=0.0,
    device="cpu",
    random_state=0,
    classes=[0, 1],
)


@parametrize_with_checks([_CHECKED], expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
