"""skpercept.personal._active: which pairs / items one person should judge next."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.personal._active import suggest_items, suggest_pairs
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing._pairs import PairFeatures
from tests._images import photo

N_ITEMS, D, N_PEOPLE = 40, 4, 20
SHARED = np.array([1.0, 0.5, 0.0, 0.0])


def _taste(rng: np.random.RandomState) -> np.ndarray:
    return SHARED + 2.0 * rng.normal(size=D)


@pytest.fixture(scope="module")
def planted():
    """Items whose features are mostly small with a few far-out ones, people with strong
    personal tastes, and a linear ranker (hierarchical BT) fitted on 20 of them."""
    rng = np.random.RandomState(0)
    scale = np.where(rng.uniform(size=N_ITEMS) < 0.15, 3.0, 0.4)
    items = rng.normal(size=(N_ITEMS, D)) * scale[:, None]
    tastes = np.stack([_taste(rng) for _ in range(N_PEOPLE)])
    a, b = rng.randint(0, N_ITEMS, size=(2, 2000))
    u = rng.randint(0, N_PEOPLE, size=2000)
    keep = a != b
    a, b, u = a[keep], b[keep], u[keep]
    utility = tastes @ items.T
    y = (rng.uniform(size=len(a)) < expit(utility[u, a] - utility[u, b])).astype(float)
    eye = np.eye(N_PEOPLE)
    X = np.hstack([items[a], eye[u], items[b], eye[u]])
    ranker = PairwiseRanker(
        hidden_layer_sizes=(), user_features=list(range(D, D + N_PEOPLE)), max_epochs=60, random_state=0
    ).fit(X, y)
    return items, ranker


def _learn(ranker, items, strategy: str, seed: int, rounds: int = 3, batch: int = 4) -> float:
    """Ask a new planted person ``rounds × batch`` questions; accuracy of the learned order."""
    rng = np.random.RandomState(100 + seed)
    truth = items @ _taste(rng)
    user, model = np.zeros(N_PEOPLE), ranker
    asked, answers = np.empty((0, 2), int), np.empty(0)
    for _ in range(rounds):
        got = suggest_pairs(
            model,
            items,
            user,
            batch,
            strategy=strategy,
            history=asked if len(asked) else None,
            random_state=seed,
        )
        pairs = got[["item_a", "item_b"]].to_numpy(int)
        asked = np.vstack([asked, pairs])
        p = expit(truth[pairs[:, 0]] - truth[pairs[:, 1]])
        answers = np.concatenate([answers, (rng.uniform(size=len(p)) < p).astype(float)])
        block = np.zeros((len(asked), N_PEOPLE + 1))
        block[:, -1] = 1.0  # the new person: one more person column per half
        model = copy.deepcopy(ranker).fit_users(
            np.hstack([items[asked[:, 0]], block, items[asked[:, 1]], block]), answers
        )
        user = block[0]
    scores = model.score_items(np.hstack([items, np.tile(user, (N_ITEMS, 1))]))
    i, j = np.triu_indices(N_ITEMS, k=1)
    return float(np.mean(np.sign(scores[i] - scores[j]) == np.sign(truth[i] - truth[j])))


@pytest.fixture(scope="module")
def random_baseline(planted):
    items, ranker = planted
    return np.mean([_learn(ranker, items, "random", s) for s in range(12)])


@pytest.mark.parametrize("strategy", ["information", "variance"])
def test_active_strategies_learn_a_person_faster_than_random(planted, random_baseline, strategy):
    items, ranker = planted
    informed = np.mean([_learn(ranker, items, strategy, s) for s in range(12)])
    # measured: information ~0.93, variance ~0.92, random ~0.84; the paired difference has sd
    # ~0.07-0.09 over people, so a strategy no better than random would rarely (~3 %) exceed a
    # 0.05 margin over 12 people
    assert informed > random_baseline + 0.05, (informed, random_baseline)


@pytest.mark.parametrize("strategy", ["information", "variance", "uncertainty", "random"])
def test_pair_contract(planted, strategy):
    items, ranker = planted
    user = np.eye(N_PEOPLE)[3]
    history = np.array([[0, 1], [5, 2]])
    got = suggest_pairs(ranker, items, user, 15, strategy=strategy, history=history, random_state=0)
    assert got.columns.tolist() == ["item_a", "item_b", "p_left", "criterion"]
    assert len(got) == 15
    pairs = got[["item_a", "item_b"]].to_numpy(int)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    unordered = {tuple(sorted(p)) for p in pairs}
    assert len(unordered) == 15
    assert not unordered & {(0, 1), (2, 5)}
    assert got.p_left.between(0, 1).all()
    # p_left is the model's own prediction for this person
    half = np.hstack([items, np.tile(user, (N_ITEMS, 1))])
    expected = ranker.predict_proba(np.hstack([half[pairs[:, 0]], half[pairs[:, 1]]]))[:, 1]
    np.testing.assert_allclose(got.p_left, expected, atol=1e-5)
    again = suggest_pairs(ranker, items, user, 15, strategy=strategy, history=history, random_state=0)
    pd.testing.assert_frame_equal(got, again)
    if strategy == "uncertainty":
        assert np.all(np.diff(got.criterion) <= 1e-12)  # best first
        assert got.criterion.iloc[0] == pytest.approx(0.25, abs=0.05)


def test_information_batch_spreads_over_directions(planted):
    """The greedy batch's gains fall: each pick makes similar ones worth less."""
    items, ranker = planted
    got = suggest_pairs(ranker, items, np.zeros(N_PEOPLE), 8, random_state=0)
    assert np.all(np.diff(got.criterion) <= 1e-9)
    assert got.criterion.iloc[-1] < got.criterion.iloc[0]


def test_random_depends_on_seed_and_candidates_are_respected(planted):
    items, ranker = planted
    user = np.zeros(N_PEOPLE)
    one = suggest_pairs(ranker, items, user, 5, strategy="random", random_state=0)
    two = suggest_pairs(ranker, items, user, 5, strategy="random", random_state=1)
    assert not one[["item_a", "item_b"]].equals(two[["item_a", "item_b"]])
    candidates = [(0, 1), (1, 0), (2, 3), (4, 9)]  # (0, 1) and (1, 0) are one pair
    got = suggest_pairs(ranker, items, user, 3, candidates=candidates, random_state=0)
    assert {tuple(sorted(p)) for p in got[["item_a", "item_b"]].to_numpy(int)} == {(0, 1), (2, 3), (4, 9)}
    with pytest.raises(ValueError, match="Only 3 candidate"):
        suggest_pairs(ranker, items, user, 4, candidates=candidates)


def test_pair_errors(planted):
    items, ranker = planted
    user = np.zeros(N_PEOPLE)
    with pytest.raises(ValueError, match="strategy must be one of"):
        suggest_pairs(ranker, items, user, 2, strategy="best")
    with pytest.raises(ValueError, match="n must be a positive int"):
        suggest_pairs(ranker, items, user, 0)
    with pytest.raises(ValueError, match=r"items must be item features of shape \(n_items, 4\)"):
        suggest_pairs(ranker, items[:, :3], user, 2)
    with pytest.raises(ValueError, match="feature row of length 20"):
        suggest_pairs(ranker, items, np.zeros(3), 2)
    with pytest.raises(ValueError, match="with itself"):
        suggest_pairs(ranker, items, user, 1, candidates=[(2, 2)])
    with pytest.raises(ValueError, match="not in items: 99"):
        suggest_pairs(ranker, items, user, 1, history=[(0, 99)])
    plain = PairwiseRanker(hidden_layer_sizes=(), max_epochs=2, random_state=0)
    plain.fit(np.hstack([items[:10], items[10:20]]), np.arange(10) % 2)
    with pytest.raises(ValueError, match="fitted without user_features"):
        suggest_pairs(plain, items, None, 2)


def _mean_colour(paths: pd.Series) -> np.ndarray:
    """A cheap embedder of image files: the mean RGB of each."""
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB"), dtype=float).mean(axis=(0, 1)) / 255 for p in paths]
    )


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    paths = []
    for k in range(12):
        path = folder / f"{k}.png"
        Image.fromarray(photo(k)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("strategy", ["information", "variance"])
def test_pipeline_with_image_paths(image_paths, strategy):
    rng = np.random.RandomState(0)
    a, b = rng.randint(0, 12, size=(2, 300))
    keep = a != b
    users = rng.choice(["ann", "bob", "cy"], size=keep.sum())
    table = pd.DataFrame({"image_a": np.take(image_paths, a[keep]), "image_b": np.take(image_paths, b[keep])})
    table["user_id"] = users
    colour = _mean_colour(pd.Series(image_paths))
    y = (colour[a[keep], 0] > colour[b[keep], 0]).astype(int)
    pipe = make_pipeline(
        PairFeatures(item_transformer=FunctionTransformer(_mean_colour), context_transformer=UserEncoder()),
        PairwiseRanker(hidden_layer_sizes=(), user_features="auto", max_epochs=20, random_state=0),
    ).fit(table, y)
    history = pd.DataFrame({"item_a": [image_paths[0]], "item_b": [image_paths[1]]})
    got = suggest_pairs(pipe, image_paths, "ann", 6, strategy=strategy, history=history, random_state=0)
    assert set(got.item_a) | set(got.item_b) <= set(image_paths)
    assert len({frozenset(p) for p in zip(got.item_a, got.item_b)}) == 6
    assert (image_paths[0], image_paths[1]) not in set(zip(got.item_a, got.item_b))
    # p_left agrees with the pipeline's own prediction for that person and pair
    asked = got[["item_a", "item_b"]].rename(columns={"item_a": "image_a", "item_b": "image_b"})
    expected = pipe.predict_proba(asked.assign(user_id="ann"))[:, 1]
    np.testing.assert_allclose(got.p_left, expected, atol=1e-5)
    with pytest.raises(ValueError, match="user is required"):
        suggest_pairs(pipe, image_paths, None, 3)


def test_new_person_loop_through_a_pipeline(image_paths):
    """Ask a person the encoder has never seen, add their answers, ask again."""
    from skpercept.personal import add_users

    rng = np.random.RandomState(1)
    a, b = rng.randint(0, 12, size=(2, 300))
    keep = a != b
    table = pd.DataFrame({"image_a": np.take(image_paths, a[keep]), "image_b": np.take(image_paths, b[keep])})
    table["user_id"] = rng.choice(["ann", "bob"], size=keep.sum())
    colour = _mean_colour(pd.Series(image_paths))
    y = (colour[a[keep], 0] > colour[b[keep], 0]).astype(int)
    pipe = make_pipeline(
        PairFeatures(item_transformer=FunctionTransformer(_mean_colour), context_transformer=UserEncoder()),
        PairwiseRanker(hidden_layer_sizes=(), user_features="auto", max_epochs=20, random_state=0),
    ).fit(table, y)
    first = suggest_pairs(pipe, image_paths, "zoe", 5, random_state=0)  # unknown: the shared model
    shared = suggest_pairs(pipe, image_paths, "nobody", 5, random_state=0)
    pd.testing.assert_frame_equal(first, shared)
    judged = first[["item_a", "item_b"]].rename(columns={"item_a": "image_a", "item_b": "image_b"})
    blue_wins = (
        colour[[image_paths.index(p) for p in judged.image_a], 2]
        > colour[[image_paths.index(p) for p in judged.image_b], 2]
    )
    pipe = add_users(pipe, judged.assign(user_id="zoe"), blue_wins.astype(int))
    second = suggest_pairs(pipe, image_paths, "zoe", 5, history=first, random_state=0)
    asked = {tuple(sorted(p)) for p in first[["item_a", "item_b"]].to_numpy()}
    assert not asked & {tuple(sorted(p)) for p in second[["item_a", "item_b"]].to_numpy()}
    # zoe now has a deviation of her own: her predictions are no longer the shared model's
    again = suggest_pairs(pipe, image_paths, "nobody", 5, strategy="random", random_state=0)
    mine = suggest_pairs(pipe, image_paths, "zoe", 5, strategy="random", random_state=0)
    assert not np.allclose(again.p_left, mine.p_left)


@pytest.fixture(scope="module")
def rated():
    rng = np.random.RandomState(0)
    items, people = rng.normal(size=(30, 3)), np.eye(4)
    i, u = rng.randint(0, 30, size=400), rng.randint(0, 4, size=400)
    X = np.hstack([items[i], people[u]])
    score = items[i, 0] + (u - 1.5) * items[i, 1]
    return items, people, X, score


@pytest.mark.parametrize("strategy", ["information", "variance", "uncertainty", "random"])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_items_contract(rated, kind, strategy):
    items, people, X, score = rated
    if kind == "regressor":
        head = RatingRegressor(
            hidden_layer_sizes=(), user_features=[3, 4, 5, 6], max_epochs=20, random_state=0
        )
        head.fit(X, score)
    else:
        head = RatingClassifier(
            hidden_layer_sizes=(), user_features=[3, 4, 5, 6], max_epochs=20, random_state=0
        )
        head.fit(X, np.digitize(score, [-1, 0, 1]))
    got = suggest_items(head, items, people[1], 6, strategy=strategy, history=[0, 4], random_state=0)
    assert got.columns.tolist() == ["item", "prediction", "criterion"]
    assert len(got) == 6 and got.item.is_unique and not got.item.isin([0, 4]).any()
    rows = np.hstack([items[got.item.to_numpy(int)], np.tile(people[1], (6, 1))])
    np.testing.assert_allclose(got.prediction, np.ravel(head.predict(rows)), atol=1e-5)
    again = suggest_items(head, items, people[1], 6, strategy=strategy, history=[0, 4], random_state=0)
    pd.testing.assert_frame_equal(got, again)
    if strategy in ("information", "uncertainty"):
        assert np.all(np.diff(got.criterion) <= 1e-9)
    with pytest.raises(ValueError, match="Only 28 unrated"):
        suggest_items(head, items, people[1], 29, history=[0, 4])


def test_items_pipeline_with_image_paths(image_paths):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {"image": rng.choice(image_paths, size=120), "user_id": rng.choice(["ann", "bob"], size=120)}
    )
    colour = _mean_colour(frame.image)
    pipe = make_pipeline(
        ColumnTransformer(
            [("image", FunctionTransformer(_mean_colour), "image"), ("user", UserEncoder(), ["user_id"])]
        ),
        RatingRegressor(hidden_layer_sizes=(), user_features=[3, 4], max_epochs=20, random_state=0),
    ).fit(frame, colour[:, 0])
    got = suggest_items(pipe, image_paths, "bob", 4, history=image_paths[:2], random_state=0)
    assert set(got.item) <= set(image_paths[2:]) and got.item.is_unique
    np.testing.assert_allclose(
        got.prediction, pipe.predict(pd.DataFrame({"image": got.item, "user_id": "bob"})), atol=1e-5
    )
    with pytest.raises(ValueError, match="suggest_pairs for a PairwiseRanker"):
        suggest_items(_plain_ranker(), np.zeros((3, 2)), None, 1)


def _plain_ranker():
    ranker = PairwiseRanker(hidden_layer_sizes=(), user_features=[2], max_epochs=2, random_state=0)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 3))
    user = np.eye(2)[rng.randint(0, 2, 20)][:, :1]
    return ranker.fit(np.hstack([X[:, :2], user, X[:, 1:], user]), np.arange(20) % 2)


def test_information_uses_the_heads_prior_precision(planted):
    """With a learned prior the posterior is ``A = P + Σ λ z zᵀ``, ``P`` the head's matrix."""
    from skpercept.personal._active import _posterior_gram

    items, ranker = planted
    learned = copy.deepcopy(ranker)
    # people differ mostly along feature 2: questions should separate items along it
    P = np.diag([4.0, 4.0, 0.05, 4.0])
    learned.user_prior_, learned.user_precision_ = "learned", P[None]
    np.testing.assert_allclose(learned.user_prior_precision(), P)
    user = np.zeros(N_PEOPLE)
    got = suggest_pairs(learned, items, user, 1, random_state=0)
    a, b = items[got.item_a.iloc[0]], items[got.item_b.iloc[0]]
    lam = got.p_left.iloc[0] * (1 - got.p_left.iloc[0])
    z = a - b
    assert got.criterion.iloc[0] == pytest.approx(np.log1p(lam * z @ np.linalg.solve(P, z)))
    iso = suggest_pairs(ranker, items, user, 1, random_state=0)
    assert abs(z[2]) > abs(items[iso.item_a.iloc[0], 2] - items[iso.item_b.iloc[0], 2])
    # Woodbury with a matrix prior equals the direct inverse, with few and with many past rows
    rng = np.random.RandomState(0)
    for n_past in (2, 9):
        Z, w = rng.normal(size=(n_past, D)), rng.uniform(0.1, 0.25, n_past)
        direct = items @ np.linalg.solve(P + (Z * w[:, None]).T @ Z, items.T)
        np.testing.assert_allclose(_posterior_gram(items, Z, w, P), direct, atol=1e-8)


def _with_prior(ranker, prior: str):
    """The ranker, or a copy whose prior precision is a learned-looking matrix."""
    if prior == "isotropic":
        return ranker, 2.0 * float(ranker.user_alpha_[0]) * np.eye(D)
    learned = copy.deepcopy(ranker)
    P = np.diag([4.0, 1.0, 0.05, 2.0]) + 0.1
    learned.user_prior_, learned.user_precision_ = "learned", P[None]
    return learned, P


@pytest.mark.parametrize("prior", ["isotropic", "matrix"])
def test_variance_gain_is_the_drop_in_prediction_variance(planted, prior):
    """Each pick of 'variance' is the candidate that most reduces ``trace(A⁻¹ M)``, recomputed by
    brute force, and its criterion is that reduction per unit of the pairs' weight."""
    items, ranker = planted
    model, P = _with_prior(ranker, prior)
    user, history = np.eye(N_PEOPLE)[2], np.array([[0, 1], [3, 7], [5, 9]])
    pool = items[:14]
    got = suggest_pairs(model, pool, user, 4, strategy="variance", history=history, random_state=0)
    half = np.hstack([pool, np.tile(user, (len(pool), 1))])
    H, s = model.item_representation(half), model.score_items(half)
    i, j = np.triu_indices(len(pool), k=1)
    Z, lam = H[i] - H[j], expit(s[i] - s[j]) * (1 - expit(s[i] - s[j]))
    M = (Z * lam[:, None]).T @ Z  # every pair of the pool, weighted by its p (1 − p)
    A = P + sum(lam[k] * np.outer(Z[k], Z[k]) for k in range(len(i)) if (i[k], j[k]) in map(tuple, history))
    asked = {tuple(p) for p in history}
    for a, b, criterion in got[["item_a", "item_b", "criterion"]].itertuples(index=False):
        before = np.trace(np.linalg.solve(A, M))
        drops = {
            (i[k], j[k]): before - np.trace(np.linalg.solve(A + lam[k] * np.outer(Z[k], Z[k]), M))
            for k in range(len(i))
            if (i[k], j[k]) not in asked
        }
        pick = (min(a, b), max(a, b))
        assert criterion == pytest.approx(drops[pick] / lam.sum(), rel=1e-6)
        assert drops[pick] >= max(drops.values()) * (1 - 1e-9)
        asked.add(pick)
        k = int(np.flatnonzero((i == pick[0]) & (j == pick[1]))[0])
        A = A + lam[k] * np.outer(Z[k], Z[k])


def test_variance_items_gain_is_the_drop_in_prediction_variance(rated):
    """The rating counterpart: ``M = Σ_x λ_x h(x) h(x)ᵀ`` over the pool, ``λ`` a classifier's weight."""
    items, people, X, score = rated
    head = RatingClassifier(hidden_layer_sizes=(), user_features=[3, 4, 5, 6], max_epochs=20, random_state=0)
    head.fit(X, np.digitize(score, [-1, 0, 1]))
    got = suggest_items(head, items, people[1], 3, strategy="variance", history=[0, 4], random_state=0)
    rows = np.hstack([items, np.tile(people[1], (len(items), 1))])
    H, proba = head.item_representation(rows), head.predict_proba(rows)
    levels = np.arange(proba.shape[1])
    lam = proba @ levels**2 - (proba @ levels) ** 2
    M = (H * lam[:, None]).T @ H
    A = head.user_prior_precision() + sum(lam[k] * np.outer(H[k], H[k]) for k in (0, 4))
    rated_so_far = {0, 4}
    for item, criterion in got[["item", "criterion"]].itertuples(index=False):
        before = np.trace(np.linalg.solve(A, M))
        drops = {
            x: before - np.trace(np.linalg.solve(A + lam[x] * np.outer(H[x], H[x]), M))
            for x in range(len(items))
            if x not in rated_so_far
        }
        assert criterion == pytest.approx(drops[item] / lam.sum(), rel=1e-6)
        assert drops[item] >= max(drops.values()) * (1 - 1e-9)
        rated_so_far.add(item)
        A = A + lam[item] * np.outer(H[item], H[item])
