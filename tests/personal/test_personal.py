"""One person's taste: ``user_features`` on the heads, ``fit_users`` and ``add_users``."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.metrics import pairwise_accuracy
from skpercept.personal import add_users
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing._pairs import PairFeatures

FULL_BATCH = dict(early_stopping=False, dropout=0.0, device="cpu", random_state=0)


def _bt_data(n_items=8, n_users=4, n=300, seed=0):
    """One-hot items and people; judgments from shared worths plus personal tastes."""
    rng = np.random.RandomState(seed)
    a = rng.randint(0, n_items, n)
    b = (a + 1 + rng.randint(0, n_items - 1, n)) % n_items
    u = rng.randint(0, n_users, n)
    worth, taste = rng.normal(size=n_items), rng.normal(size=(n_users, n_items))
    p = 1 / (1 + np.exp(-(worth[a] - worth[b] + taste[u, a] - taste[u, b])))
    y = (rng.uniform(size=n) < p).astype(float)
    items, people = np.eye(n_items), np.eye(n_users)
    return np.hstack([items[a], people[u], items[b], people[u]]), y, a, b, u


def _hierarchical_bt(a, b, u, y, n_items, n_users, alpha):
    """Direct L-BFGS on Σ log-loss + alpha·Σ||v_u||² (worths w unpenalized)."""

    def objective(theta):
        w, V = theta[:n_items], theta[n_items:].reshape(n_users, n_items)
        d = w[a] - w[b] + V[u, a] - V[u, b]
        g = 1 / (1 + np.exp(-d)) - y
        gw = np.bincount(a, g, n_items) - np.bincount(b, g, n_items)
        gV = np.zeros_like(V)
        np.add.at(gV, (u, a), g)
        np.add.at(gV, (u, b), -g)
        loss = (np.logaddexp(0, d) - y * d).sum() + alpha * (V**2).sum()
        return loss, np.concatenate([gw, (gV + 2 * alpha * V).ravel()])

    theta0 = np.zeros(n_items * (1 + n_users))
    opts = dict(maxiter=10000, gtol=1e-10, ftol=1e-15)
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options=opts)
    return res.x[:n_items], res.x[n_items:].reshape(n_users, n_items)


def test_ranker_is_a_hierarchical_bradley_terry_model():
    n_items, n_users, alpha = 8, 4, 2.0
    X, y, a, b, u = _bt_data(n_items, n_users)
    ranker = PairwiseRanker(
        hidden_layer_sizes=(),
        user_features=np.arange(n_items, n_items + n_users),
        user_alpha=alpha,
        optimizer="adam",
        weight_decay=0.0,
        lr=0.1,
        batch_size=len(X),
        max_epochs=250,
        **FULL_BATCH,
    ).fit(X, y)
    w_ref, V_ref = _hierarchical_bt(a, b, u, y, n_items, n_users, alpha)
    module = ranker.net_.module_
    w = module.head.weight.detach().numpy().ravel().astype(float)
    V = module.personal.V.detach().numpy()[:, :, 0].astype(float)
    np.testing.assert_allclose(w - w.mean(), w_ref - w_ref.mean(), atol=1e-4)
    np.testing.assert_allclose(V, V_ref, atol=1e-4)
    assert np.abs(V_ref).max() > 0.1  # the deviations are not trivially zero
    # fit_users solves the same posterior for the people alone, with the worths frozen
    module.personal.V.data.zero_()
    ranker.fit_users(X, y)
    np.testing.assert_allclose(module.personal.V.detach().numpy()[:, :, 0], V_ref, atol=1e-4)
    # weight decay is not applied to the personal parameters (user_alpha alone shrinks them)
    groups = ranker.net_.optimizer_.param_groups
    personal = [g for g in groups if any(p is module.personal.V for p in g["params"])]
    assert personal and personal[0]["weight_decay"] == 0.0


def _opposite_tastes(n=400, seed=0, n_people=6):
    """Two kinds of people: half prefer a high first feature, half a low one."""
    rng = np.random.RandomState(seed)
    items = np.random.RandomState(99).normal(size=(30, 4))
    a, b = rng.randint(0, 30, size=(2, n))
    u = rng.randint(0, n_people, n)
    sign = np.where(u % 2 == 0, 1.0, -1.0)
    y = (sign * (items[a, 0] - items[b, 0]) > 0).astype(float)
    people = np.eye(n_people)[u]
    return np.hstack([items[a], people, items[b], people]), y


def test_personal_deviations_learn_opposite_tastes():
    """A person's one-hot cancels in s(left) − s(right); a deviation on h(x) does not."""
    X, y = _opposite_tastes(n=300, n_people=20)  # 15 judgments per person
    X_test, y_test = _opposite_tastes(n=300, seed=1, n_people=20)
    params = dict(hidden_layer_sizes=(), lr=0.05, max_epochs=30, batch_size=64, **FULL_BATCH)
    shared = PairwiseRanker(**params).fit(X, y)
    personal = PairwiseRanker(**params, user_features="auto", user_alpha=0.3).fit(X, y)
    np.testing.assert_array_equal(personal.user_features_, np.arange(4, 24))
    acc_shared = pairwise_accuracy(y_test, shared.predict_proba(X_test)[:, 1])
    acc_personal = pairwise_accuracy(y_test, personal.predict_proba(X_test)[:, 1])
    assert acc_personal > 0.8 > 0.6 > acc_shared, (acc_personal, acc_shared)


def _ratings(n=300, seed=0, n_users=4):
    rng = np.random.RandomState(seed)
    images = rng.normal(size=(40, 5))
    rows, u = rng.randint(0, 40, n), rng.randint(0, n_users, n)
    leniency = np.linspace(-1, 1, n_users)
    score = images[rows, 0] + leniency[u] + 0.3 * rng.normal(size=n)
    frame = pd.DataFrame(images[rows], columns=[f"f{i}" for i in range(5)])
    frame["user_id"] = np.array([f"p{i}" for i in range(n_users)])[u]
    return frame, score


def _rating_pipeline(head):
    features = ColumnTransformer(
        [("image", "passthrough", [f"f{i}" for i in range(5)]), ("user", UserEncoder(), ["user_id"])]
    ).set_output(transform="pandas")
    return Pipeline([("features", features), ("head", head)])


@pytest.mark.parametrize("kind", ["regressor", "classifier", "ranker"])
def test_unknown_person_gets_exactly_the_shared_model(kind):
    frame, score = _ratings()
    params = dict(hidden_layer_sizes=(8,), max_epochs=15, batch_size=64, **FULL_BATCH)
    if kind == "ranker":
        X, y = _opposite_tastes()
        head = PairwiseRanker(**params, user_features="auto").fit(X, y)
        X_unknown = np.hstack([X[:5, :4], np.zeros((5, 6))])  # half rows of an unknown person
        module = head.net_.module_
        got = head.score_items(X_unknown)
        with torch.no_grad():
            items = torch.from_numpy(X_unknown[:, :4].astype(np.float32))
            shared = module.head(module.trunk(items)).numpy().ravel()
    else:
        y = score if kind == "regressor" else np.digitize(score, [-0.5, 0.5])
        cls = RatingRegressor if kind == "regressor" else RatingClassifier
        model = _rating_pipeline(cls(**params, user_features="auto")).fit(frame, y)
        head = model["head"]
        assert head.n_user_features_ == 4
        unknown = frame.head(5).assign(user_id="somebody new")
        Xt = model[:-1].transform(unknown)
        assert not Xt.filter(like="user_id").to_numpy().any()  # UserEncoder: all zeros
        module = head.net_.module_
        with torch.no_grad():
            items = torch.from_numpy(np.ascontiguousarray(Xt.iloc[:, :5].to_numpy(np.float32)))
            logits = module.head(module.trunk(items)).double().numpy()
        if kind == "regressor":
            got, shared = model.predict(unknown), logits.ravel() * head.y_scale_[0] + head.y_mean_[0]
        else:
            got, shared = model.predict_proba(unknown), head._member_proba(logits)[0]
    np.testing.assert_array_equal(got, shared)


def test_user_features_specs_and_errors():
    X, y = _opposite_tastes(n=120)
    params = dict(hidden_layer_sizes=(4,), max_epochs=2, **FULL_BATCH)
    mask = np.zeros(10, dtype=bool)
    mask[4:] = True
    for spec in (list(range(4, 10)), mask, "auto"):
        assert PairwiseRanker(**params, user_features=spec).fit(X, y).user_features_.tolist() == list(
            range(4, 10)
        )
    names = [f"{side}__{c}" for side in ("left", "right") for c in ["a", "b", "c", "d", *"uvwxyz"]]
    frame = pd.DataFrame(X, columns=names)
    fitted = PairwiseRanker(**params, user_features=["left__u", "left__v"]).fit(frame, y)
    assert fitted.user_features_.tolist() == [4, 5] and fitted.n_user_features_ == 2
    errors = {
        "out of range": [3, 10],
        "boolean mask must have 10": np.ones(3, dtype=bool),
        "not among X's columns": ["nope"],
        "twice": [4, 4],
        "all 10 columns": list(range(10)),
    }
    for message, spec in errors.items():
        with pytest.raises(ValueError, match=message):
            PairwiseRanker(**params, user_features=spec).fit(frame, y)
    with pytest.raises(ValueError, match="found no context columns"):
        PairwiseRanker(**params, user_features="auto").fit(X[:, [0, 1, 10, 11]], y)
    frame_r, score = _ratings(n=60)
    Xr = np.hstack([frame_r.iloc[:, :5].to_numpy(), UserEncoder().fit_transform(frame_r[["user_id"]])])
    with pytest.raises(ValueError, match="no feature names"):
        RatingRegressor(**params, user_features="auto").fit(Xr, score)
    with pytest.raises(ValueError, match="found no column named like UserEncoder"):
        RatingRegressor(**params, user_features="auto").fit(frame_r.iloc[:, :5], score)


def test_item_hold_out_ignores_person_columns():
    """Early stopping holds out items: one image rated by several people stays one item."""
    frame, score = _ratings(n=300)
    enc = UserEncoder().fit(frame[["user_id"]])
    # person columns FIRST and not equal in any recognizable way: only user_features names them
    X = np.hstack([enc.transform(frame[["user_id"]]), frame.iloc[:, :5].to_numpy()])
    reg = RatingRegressor(
        hidden_layer_sizes=(4,), max_epochs=3, device="cpu", random_state=0, user_features=[0, 1, 2, 3]
    ).fit(X, score)
    items, described = reg._row_items(X.astype(np.float32))
    assert described and len(np.unique(items)) == len(np.unique(frame.iloc[:, 0]))
    assert reg.net_.history[-1, "valid_loss"] > 0


class _Probe(Callback):
    """Scores the estimator it belongs to at each epoch's end (mid-training predictions)."""

    def __init__(self, X, y):
        self.X, self.y, self.estimator, self.scores = X, y, None, []

    def on_epoch_end(self, net, **kwargs):
        self.scores.append(self.estimator.score(self.X, self.y))


def test_ensemble_calibration_callbacks_and_pickle():
    X, y = _opposite_tastes(n=300)
    probe = _Probe(X[:50], y[:50])
    ranker = PairwiseRanker(
        hidden_layer_sizes=(8,),
        max_epochs=5,
        n_ensemble=2,
        calibration="temperature",
        user_features="auto",
        callbacks=[("probe", probe)],
        device="cpu",
        random_state=0,
    )
    probe.estimator = ranker
    ranker.fit(X, y)
    assert len(probe.scores) == 20  # 5 epochs × 2 members × 2 trunks (choose_trunk='auto')
    assert set(ranker.trunk_losses_) == {"linear", "hidden"}
    restored = pickle.loads(pickle.dumps(ranker))
    np.testing.assert_array_equal(restored.predict_proba(X), ranker.predict_proba(X))
    assert clone(PairwiseRanker(user_features="auto", user_alpha=3.0)).get_params()["user_alpha"] == 3.0
    # score_items with the person's columns: σ(s(a) − s(b)) is the pair probability
    half = X.shape[1] // 2
    s_left, s_right = ranker.score_items(X[:20, :half]), ranker.score_items(X[:20, half:])
    np.testing.assert_allclose(
        1 / (1 + np.exp(-(s_left - s_right))), ranker.predict_proba(X[:20])[:, 1], rtol=1e-5, atol=1e-9
    )


def test_item_representation_and_user_deviation_give_the_scores():
    X, y = _opposite_tastes(n=200)
    ranker = PairwiseRanker(hidden_layer_sizes=(8,), max_epochs=10, user_features="auto", **FULL_BATCH).fit(
        X, y
    )
    half = X[:30, :10]
    h = ranker.item_representation(half)
    W = ranker.user_deviation(half)
    assert h.shape == (30, 8) and W.shape == (30, 8, 1)
    b = ranker.net_.module_.head.bias.detach().numpy()
    np.testing.assert_allclose(
        np.einsum("nd,ndo->no", h, W)[:, 0] + b[0], ranker.score_items(half), atol=1e-5
    )
    with pytest.raises(ValueError, match="one pair half"):
        ranker.item_representation(X[:3])


def _pairs_table(n, people, seed):
    """A pairs table of 20 numeric items; people 'a*' like high items, 'b*' low ones."""
    rng = np.random.RandomState(seed)
    i, j = rng.randint(0, 20, size=(2, n))
    who = rng.choice(people, n)
    sign = np.where(pd.Series(who).str.startswith("a"), 1.0, -1.0)
    y = (sign * (i - j) > 0).astype(float)
    return pd.DataFrame({"image_a": i, "image_b": j, "user_id": who}), y


def _item_features(s):
    s = np.asarray(s, dtype=float)
    return np.column_stack([s / 10, np.cos(s)])


def _pair_pipeline():
    items = FunctionTransformer(_item_features)
    pairs = PairFeatures(item_transformer=items, context_transformer=UserEncoder())
    head = PairwiseRanker(
        hidden_layer_sizes=(8,), lr=0.02, max_epochs=40, batch_size=64, user_features="auto", **FULL_BATCH
    )
    return Pipeline([("pairs", pairs), ("head", head)])


def test_add_users_to_a_pair_pipeline(tmp_path):
    table, y = _pairs_table(400, ["a1", "a2", "b1", "b2"], seed=0)
    model = _pair_pipeline().fit(table, y)
    old, _ = _pairs_table(200, ["a1", "a2", "b1", "b2"], seed=1)
    before_old = model.predict_proba(old)
    probe, _ = _pairs_table(100, ["b3"], seed=2)
    cold = model.predict_proba(probe)
    new, y_new = _pairs_table(12, ["b3"], seed=3)  # a new person with a dozen judgments
    start = time.perf_counter()
    add_users(model, new, y_new)
    print(f"add_users: one person, 12 judgments: {time.perf_counter() - start:.3f} s")
    # nobody else's predictions change, to the bit
    np.testing.assert_array_equal(model.predict_proba(old), before_old)
    # the new person's predictions move toward their judgments (b-people prefer low items)
    truth = (probe["image_a"] < probe["image_b"]).astype(float).to_numpy()
    learned = pairwise_accuracy(truth, model.predict_proba(probe)[:, 1])
    assert learned > 0.85 and learned > pairwise_accuracy(truth, cold[:, 1]) + 0.1
    pf, head = model["pairs"], model["head"]
    assert pf.n_half_features_ == head.n_half_features_ == 2 + 5 and head.n_user_features_ == 5
    assert model[:-1].get_feature_names_out()[6] == "left__user_id_b3"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.testing.assert_array_equal(
        pickle.loads(path.read_bytes()).predict_proba(probe), model.predict_proba(probe)
    )


@pytest.mark.parametrize("cls", [RatingRegressor, RatingClassifier])
def test_add_users_to_a_rating_pipeline(cls):
    frame, score = _ratings(n=300, n_users=4)
    y = score if cls is RatingRegressor else np.digitize(score, [-0.5, 0.5])
    model = _rating_pipeline(cls(hidden_layer_sizes=(8,), max_epochs=30, user_features="auto", **FULL_BATCH))
    model.fit(frame, y)
    predict = model.predict if cls is RatingRegressor else model.predict_proba
    before = predict(frame)
    rng = np.random.RandomState(5)
    new = frame.sample(10, random_state=0).assign(user_id="harsh")
    y_new = new["f0"].to_numpy() - 2.0 if cls is RatingRegressor else np.zeros(10, dtype=int)
    cold = predict(new)
    start = time.perf_counter()
    add_users(model, new, y_new, sample_weight=rng.uniform(0.5, 1.5, 10))
    print(f"add_users ({cls.__name__}): {time.perf_counter() - start:.3f} s")
    np.testing.assert_array_equal(predict(frame), before)
    head = model["head"]
    assert head.n_features_in_ == 10 and head.feature_names_in_[-1] == "user__user_id_harsh"
    if cls is RatingRegressor:
        assert np.mean(predict(new)) < np.mean(cold) - 0.5  # a harsh rater's offset
    else:
        assert predict(new)[:, 0].mean() > cold[:, 0].mean() + 0.2


def test_fit_users_input_errors():
    X, y = _opposite_tastes(n=200)
    ranker = PairwiseRanker(hidden_layer_sizes=(4,), max_epochs=2, user_features="auto", **FULL_BATCH).fit(
        X, y
    )
    with pytest.raises(ValueError, match="one known person per row"):
        ranker.fit_users(np.hstack([X[:4, :4], np.zeros((4, 6)), X[:4, 10:14], np.zeros((4, 6))]), y[:4])
    with pytest.raises(ValueError, match="plus k new person columns"):
        ranker.fit_users(X[:, :-1], y)
    with pytest.raises(ValueError, match="differ between the two halves"):
        ranker.fit_users(np.hstack([X[:4, :10], X[:4, 10:14], X[4:8, 4:10]]), y[:4])
    plain = PairwiseRanker(hidden_layer_sizes=(4,), max_epochs=2, **FULL_BATCH).fit(X, y)
    with pytest.raises(ValueError, match="fitted with user_features"):
        plain.fit_users(X, y)


def test_fit_users_is_fast_per_person():
    """Timing is printed, not asserted (see benchmarks/ for measured figures)."""
    X, y = _opposite_tastes(n=400)
    ranker = PairwiseRanker(hidden_layer_sizes=(64,), max_epochs=5, user_features="auto", **FULL_BATCH).fit(
        X, y
    )
    one = X[X[:, 4] == 1][:10]
    start = time.perf_counter()
    ranker.fit_users(one, y[X[:, 4] == 1][:10])
    print(f"fit_users: one person, 10 judgments, 64-d trunk: {time.perf_counter() - start:.4f} s")


def test_user_encoder_add_users():
    users = pd.Series(["ann", "bob", "ann", "cy"], name="user_id")
    enc = UserEncoder(min_count=2).fit(users)
    before = enc.transform(users)
    enc.add_users(pd.Series(["zoe", "bob", "ann", "zoe"], name="user_id"))
    assert enc.get_feature_names_out().tolist() == ["user_id_ann", "user_id_other", "user_id_zoe"]
    out = enc.transform(pd.Series(["ann", "bob", "zoe", "nobody"], name="user_id"))
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(enc.transform(users)[:, :2], before)  # existing columns untouched
    strict = UserEncoder(handle_unknown="error", sparse_output=True).fit(users.to_list())
    strict.add_users(["dee"])
    assert strict.transform(["dee"]).toarray().tolist() == [[0, 0, 0, 1]]
    with pytest.raises(ValueError, match="Unknown user id"):
        strict.transform(["eve"])


def test_safe_format_keeps_the_people(tmp_path):
    from skpercept.persistence import load_safe, save_safe

    X, y = _opposite_tastes(n=200)
    ranker = PairwiseRanker(
        hidden_layer_sizes=(4,), max_epochs=3, user_features=np.arange(4, 10), **FULL_BATCH
    ).fit(X, y)
    one = np.zeros((6, 1))
    one[:] = 1.0
    wide = np.hstack([X[:6, :4], np.zeros((6, 6)), one, X[:6, 10:14], np.zeros((6, 6)), one])
    ranker.fit_users(wide, y[:6])  # a seventh person
    save_safe(ranker, tmp_path / "ranker.safetensors")
    loaded = load_safe(tmp_path / "ranker.safetensors")
    assert loaded.user_features_.tolist() == list(range(4, 11))
    np.testing.assert_array_equal(loaded.predict_proba(wide), ranker.predict_proba(wide))


# -- the learned (empirical-Bayes) prior ----------------------------------------------------------
LINEAR_BT = dict(
    hidden_layer_sizes=(), lr=0.1, batch_size=4096, max_epochs=150, weight_decay=0.0, **FULL_BATCH
)


@pytest.mark.parametrize("cls", [RatingClassifier, RatingRegressor, PairwiseRanker])
def test_auto_strength_trains_the_shared_part_as_the_shared_model(cls):
    """user_alpha='auto': the people's deviations stay at zero while the shared part trains
    (early stopping on), so an unknown person gets what the shared model says; a fixed
    strength trains both together, and the shared part comes out otherwise."""
    params = dict(hidden_layer_sizes=(8,), max_epochs=30, choose_trunk=False, random_state=0)
    if cls is PairwiseRanker:
        X, y = _opposite_tastes(n=600, n_people=6)
        y = np.where(np.arange(len(y)) % 3 == 0, X[:, 1] > X[:, 11], y)  # some taste shared
        people = np.r_[4:10, 14:20]
        items, unknown = np.delete(X, people, axis=1), X[:20].copy()
        unknown[:, people] = 0.0
    else:
        frame, score = _ratings(n=400, n_users=6)
        y = score if cls is RatingRegressor else np.digitize(score, [-0.5, 0.5])
        X = _rating_pipeline(None)[:-1].fit_transform(frame)
        items, unknown = X.iloc[:, :5], X.head(20).copy()
        unknown.iloc[:, 5:] = 0.0
    if cls is not RatingRegressor:
        params["calibration"] = None  # a temperature would divide the unknown person's logits too
    predict = "predict" if cls is RatingRegressor else "predict_proba"
    shared = cls(**params).fit(items, y)
    expected = getattr(shared, predict)(unknown.iloc[:, :5] if cls is not PairwiseRanker else items[:20])
    auto = cls(**params, user_features="auto").fit(X, y)
    np.testing.assert_allclose(getattr(auto, predict)(unknown), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(auto.net_.module_.personal.V.detach().numpy()).max() > 0  # people fitted after
    fixed = cls(**params, user_features="auto", user_alpha=1.0).fit(X, y)
    assert not np.allclose(getattr(fixed, predict)(unknown), expected, rtol=1e-5, atol=1e-6)


def _one_axis_people(n_people=30, per_person=25, n_items=6, seed=0):
    """People differ along one shared axis of item worths: ``taste_u = z_u · axis``."""
    rng = np.random.RandomState(seed)
    axis = rng.normal(size=n_items)
    axis -= axis.mean()  # one-hot items: a constant shift of a taste changes nothing
    worth, z = rng.normal(size=n_items), 1.5 * rng.normal(size=n_people)
    u = np.repeat(np.arange(n_people), per_person)
    a = rng.randint(0, n_items, len(u))
    b = (a + 1 + rng.randint(0, n_items - 1, len(u))) % n_items
    d = worth[a] - worth[b] + z[u] * (axis[a] - axis[b])
    y = (rng.uniform(size=len(u)) < 1 / (1 + np.exp(-d))).astype(float)
    items, people = np.eye(n_items), np.eye(n_people)
    X = np.hstack([items[a], people[u], items[b], people[u]])
    return X, y, axis / np.linalg.norm(axis), list(range(n_items, n_items + n_people))


def test_learned_prior_finds_the_axis_people_differ_along_and_keeps_cold_start():
    X, y, axis, users = _one_axis_people()
    iso = PairwiseRanker(user_features=users, user_alpha=0.5, user_prior="isotropic", **LINEAR_BT).fit(X, y)
    learned = PairwiseRanker(user_features=users, user_alpha=0.5, user_prior="learned", **LINEAR_BT).fit(X, y)
    assert iso.user_prior_ == "isotropic" and not hasattr(iso, "user_precision_")
    assert learned.user_prior_ == "learned" and learned.user_precision_.shape == (1, 6, 6)
    P = learned.user_prior_precision()
    np.testing.assert_allclose(P, learned.user_precision_[0])  # one output: the whole prior
    np.testing.assert_allclose(iso.user_prior_precision(), 1.0 * np.eye(6))
    eigval, eigvec = np.linalg.eigh(np.linalg.inv(P))
    assert abs(eigvec[:, -1] @ axis) > 0.9  # the largest prior variance is along the axis
    assert eigval[-1] > 5 * eigval[-2]
    # the prior is learned after training: the shared model (an unknown person) is untouched
    cold = X.copy()
    cold[:, users] = 0
    cold[:, [u + 36 for u in users]] = 0
    np.testing.assert_array_equal(learned.predict_proba(cold), iso.predict_proba(cold))
    assert not np.allclose(learned.predict_proba(X), iso.predict_proba(X))


def test_fit_users_under_the_learned_prior_is_the_map_and_touches_no_one_else():
    X, y, _, users = _one_axis_people()
    ranker = PairwiseRanker(user_features=users, user_prior="learned", **LINEAR_BT).fit(X, y)
    before = ranker.predict_proba(X)
    X_new, y_new, _, _ = _one_axis_people(n_people=1, per_person=4, seed=1)
    block = np.zeros((len(X_new), 30))
    wide = np.hstack([X_new[:, :6], block, X_new[:, 6:7], X_new[:, 7:13], block, X_new[:, 13:]])
    ranker.fit_users(wide, y_new)
    old = np.hstack([X[:, :36], np.zeros((len(X), 1)), X[:, 36:], np.zeros((len(X), 1))])
    np.testing.assert_array_equal(ranker.predict_proba(old), before)
    # the same MAP directly: Σ log-loss(w + v) + ½ vᵀ P v with the shared w frozen
    w = ranker.net_.module_.linear.weight.detach().double().numpy()[0]
    P = ranker.user_precision_[0]
    a, b = X_new[:, :6].argmax(1), X_new[:, 7:13].argmax(1)

    def objective(v):
        d = (w + v)[a] - (w + v)[b]
        g = 1 / (1 + np.exp(-d)) - y_new
        grad = np.bincount(a, g, 6) - np.bincount(b, g, 6) + P @ v
        return (np.logaddexp(0, d) - y_new * d).sum() + 0.5 * v @ P @ v, grad

    v_ref = minimize(objective, np.zeros(6), jac=True, method="L-BFGS-B", options=dict(gtol=1e-10)).x
    v = ranker.net_.module_.personal.V.detach().double().numpy()[30, :, 0]
    np.testing.assert_allclose(v, v_ref, atol=1e-4)


def test_learned_prior_falls_back_to_isotropic():
    X, y, _, users = _one_axis_people(n_people=8)
    few = PairwiseRanker(user_features=users, user_prior="learned", **LINEAR_BT).fit(X, y)
    assert few.user_prior_ == "isotropic" and "8 people" in few.user_prior_reason_
    assert not hasattr(few, "user_precision_")
    X, y, _, users = _one_axis_people()
    covariate = np.ones((len(X), 1)) * 0.5  # not one-hot: a covariate among the person columns
    Xc = np.hstack([X[:, :36], covariate, X[:, 36:], covariate])
    cov = PairwiseRanker(user_features=users + [36], user_prior="learned", **LINEAR_BT).fit(Xc, y)
    assert cov.user_prior_ == "isotropic" and "one-hot" in cov.user_prior_reason_


def test_learned_prior_on_a_rating_head_and_in_the_safe_format(tmp_path):
    from skpercept.persistence import load_safe, save_safe

    rng = np.random.RandomState(0)
    n_people, per = 25, 12
    u = np.repeat(np.arange(n_people), per)
    items = rng.normal(size=(len(u), 3))
    y = items @ [1.0, 0.5, 0.0] + rng.normal(size=n_people)[u] * items[:, 1] + 0.3 * rng.normal(size=len(u))
    X = np.hstack([items, np.eye(n_people)[u]])
    users = list(range(3, 3 + n_people))
    reg = RatingRegressor(
        hidden_layer_sizes=(), user_features=users, user_prior="learned", max_epochs=30, **FULL_BATCH
    ).fit(X, y)
    # p = 3 head weights + an offset + a log-scale per person
    assert reg.user_prior_ == "learned" and reg.user_precision_.shape == (1, 5, 5)
    assert reg.user_prior_precision().shape == (3, 3)
    save_safe(reg, tmp_path / "reg.safetensors")
    loaded = load_safe(tmp_path / "reg.safetensors")
    assert loaded.user_prior_ == "learned"
    np.testing.assert_array_equal(loaded.user_precision_, reg.user_precision_)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_identity_activation_makes_a_linear_low_rank_trunk():
    X, y, _, users = _one_axis_people(n_people=4, per_person=20)
    ranker = PairwiseRanker(
        hidden_layer_sizes=(2,),
        activation="identity",
        user_features=users,
        max_epochs=5,
        **FULL_BATCH,
    ).fit(X, y)
    half = np.hstack([X[:5, :6], np.zeros((5, 4))])  # the shared model: with a person h·(w + V u) is bilinear
    s = ranker.score_items(np.vstack([half, 2 * half, 0 * half]))
    np.testing.assert_allclose(s[5:10] - s[:5], s[:5] - s[10:], atol=1e-5)  # affine in x
    assert ranker.item_representation(half).shape == (5, 2)  # people differ in 2 dimensions
