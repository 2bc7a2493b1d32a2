"""Early stopping holds out items, not rows: the shared split and the heads that use it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept._holdout import hold_out_items, item_codes, pair_item_codes, rating_item_codes
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingRegressor
from skpercept.model_selection import ImageDisjointSplit
from skpercept.model_selection._search import PerceptSearchCV

FAST = dict(hidden_layer_sizes=(8,), max_epochs=4, batch_size=64, device="cpu", random_state=0)


def _pairs(n_items=30, n_pairs=400, noise=0.0, seed=0):
    """Pairs of items; with ``noise`` every half-row differs, so only groups name the items."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, 4))
    ab = rng.randint(0, n_items, size=(n_pairs, 2))
    ab = ab[ab[:, 0] != ab[:, 1]]
    X = np.hstack([items[ab[:, 0]], items[ab[:, 1]]]) + noise * rng.normal(size=(len(ab), 8))
    y = (items[ab[:, 0], 0] > items[ab[:, 1], 0]).astype(float)
    return X, y, ab


def _sides(items: np.ndarray, split) -> tuple[set, set]:
    return set(items[split.train].ravel()), set(items[split.valid].ravel())


def test_no_item_on_both_sides_and_straddlers_counted():
    _, _, ab = _pairs()
    split = hold_out_items(ab, 0.2, seed=0)
    train_items, valid_items = _sides(ab, split)
    assert train_items.isdisjoint(valid_items)
    held = np.isin(ab, list(valid_items))
    assert split.n_straddling == int((held.any(1) & ~held.all(1)).sum()) > 0
    assert len(split.train) + len(split.valid) + split.n_straddling == len(ab)
    assert len(valid_items) == round(0.2 * 30)
    again = hold_out_items(ab, 0.2, seed=0)
    np.testing.assert_array_equal(again.valid, split.valid)
    assert not np.array_equal(hold_out_items(ab, 0.2, seed=1).valid, split.valid)


def test_items_seen_once_and_ratings():
    # Pairs whose items occur once still give validation rows (no straddlers possible).
    once = np.arange(40).reshape(20, 2)
    split = hold_out_items(once, 0.2, seed=0)
    assert len(split.valid) == 4 and split.n_straddling == 0  # 8 of 40 items: 4 pairs
    ratings = np.repeat(np.arange(10), 3)[:, None]  # 3 ratings per image
    split = hold_out_items(ratings, 0.3, seed=0)
    assert set(ratings[split.valid, 0]).isdisjoint(ratings[split.train, 0])
    assert len(split.valid) == 9 and split.n_straddling == 0


def test_too_few_items_is_a_clear_error():
    with pytest.raises(ValueError, match="1 distinct item"):
        hold_out_items(np.zeros((5, 1)), 0.2, seed=0)
    with pytest.raises(ValueError, match="too few items to hold out"):
        hold_out_items(np.array([[0, 1], [1, 2], [0, 2]]), 0.5, seed=0)
    X, y, _ = _pairs(n_items=3, n_pairs=20)
    with pytest.raises(ValueError, match="early_stopping=False, or validation_split='rows'"):
        PairwiseRanker(**FAST).fit(X, y)
    assert PairwiseRanker(validation_split="rows", **FAST).fit(X, y).n_straddling_ == 0


def test_pair_items_ignore_context_shared_by_both_halves():
    X, _, ab = _pairs(n_items=6, n_pairs=40)
    users = np.eye(3)[np.arange(len(X)) % 3]  # one image judged by several users is one item
    X_ctx = np.hstack([X[:, :4], users, X[:, 4:], users])
    codes, described = pair_item_codes(X_ctx)
    assert described
    assert len(np.unique(codes)) == len(np.unique(ab))
    for item in np.unique(ab):
        assert len(np.unique(codes[ab == item])) == 1
    np.testing.assert_array_equal(item_codes(ab, len(ab)) == item_codes(ab, len(ab))[0, 0], ab == ab[0, 0])


def _n_trained(ranker) -> int:
    """Rows the ranker trained on in its first epoch, read from its history."""
    return sum(b.get("train_batch_size", 0) for b in ranker.net_.history[0, "batches"])


@pytest.mark.parametrize("use_groups", [False, True])
def test_ranker_holds_out_items(use_groups):
    noise = 0.01 if use_groups else 0.0  # with noise, only groups identify the items
    X, y, ab = _pairs(noise=noise)
    ranker = PairwiseRanker(validation_fraction=0.2, **FAST)
    ranker.fit(X, y, groups=ab if use_groups else None)
    # The split fit made (random_state=0), from the features or from the groups:
    items = item_codes(ab, len(ab)) if use_groups else pair_item_codes(X.astype(np.float32))[0]
    split = hold_out_items(items, 0.2, seed=0)
    train_items, valid_items = _sides(ab, split)
    assert train_items.isdisjoint(valid_items)
    held = np.isin(ab, list(valid_items))
    assert _n_trained(ranker) == len(split.train) == int((~held.any(1)).sum())
    n_validated = sum(b.get("valid_batch_size", 0) for b in ranker.net_.history[0, "batches"])
    assert n_validated == len(split.valid) > 0
    assert ranker.n_straddling_ == int((held.any(1) & ~held.all(1)).sum()) > 0
    if use_groups:
        # Without groups the noisy half-rows are all distinct items: nothing straddles.
        assert PairwiseRanker(validation_fraction=0.2, **FAST).fit(X, y).n_straddling_ == 0


def test_regressor_groups_keep_an_images_ratings_together():
    rng = np.random.RandomState(0)
    image = np.repeat(np.arange(30), 4)
    X = rng.normal(size=(30, 5))[image] + 0.01 * rng.normal(size=(120, 5))  # rater noise
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    reg = RatingRegressor(validation_fraction=0.2, **FAST).fit(X, y, groups=image)
    split = hold_out_items(item_codes(image, len(image)), 0.2, seed=0)
    assert set(image[split.valid]).isdisjoint(image[split.train]) and len(split.valid) == 4 * 6
    assert sum(b.get("train_batch_size", 0) for b in reg.net_.history[0, "batches"]) == 120 - 24
    assert reg.net_.train_split is None  # no training rows kept in the fitted model


def test_groups_routed_through_pipeline():
    X, y, ab = _pairs(noise=0.01)
    with sklearn.config_context(enable_metadata_routing=True):
        head = PairwiseRanker(validation_fraction=0.2, **FAST).set_fit_request(groups=True)
        pipe = make_pipeline(StandardScaler(), head).fit(X, y, groups=ab)
        assert pipe[-1].n_straddling_ > 0
    # Without routing, scikit-learn's step__param names reach the head too.
    pipe = make_pipeline(StandardScaler(), PairwiseRanker(validation_fraction=0.2, **FAST))
    assert pipe.fit(X, y, pairwiseranker__groups=ab)[-1].n_straddling_ > 0


def test_groups_routed_through_search_to_splitter_and_head():
    X, y, ab = _pairs(noise=0.01)
    space = {"pairwiseranker__lr": [1e-2]}
    with sklearn.config_context(enable_metadata_routing=True):
        head = PairwiseRanker(validation_fraction=0.2, **FAST).set_fit_request(groups=True)
        cv = ImageDisjointSplit(n_splits=2, random_state=0).set_split_request(groups=True)
        search = PerceptSearchCV(make_pipeline(StandardScaler(), head), space, cv=cv, n_trials=1)
        search.fit(X, y, groups=ab)
    assert search.best_estimator_[-1].n_straddling_ > 0
    assert np.isfinite(search.best_score_)
    # Without routing: groups go to the splitter; step__param fit parameters to the head.
    pipe = make_pipeline(StandardScaler(), PairwiseRanker(validation_fraction=0.2, **FAST))
    search = PerceptSearchCV(pipe, space, cv=ImageDisjointSplit(n_splits=2, random_state=0), n_trials=1)
    search.fit(X, y, groups=ab, pairwiseranker__groups=ab)
    assert search.best_estimator_[-1].n_straddling_ > 0


def test_auto_holds_out_rows_when_items_are_identity_codes():
    """One-hot item ids cannot describe an unseen item: 'auto' validates on new judgments."""
    rng = np.random.RandomState(0)
    n_items, n_users, n_pairs = 6, 20, 300
    a = rng.randint(0, n_items, n_pairs)
    b = (a + rng.randint(1, n_items, n_pairs)) % n_items
    users = np.eye(n_users)[rng.randint(0, n_users, n_pairs)]
    items = np.eye(n_items)
    X = np.hstack([items[a], users, items[b], users])
    y = (a < b).astype(float)
    codes, described = pair_item_codes(X)
    assert not described
    assert len(np.unique(codes)) == n_items
    auto = PairwiseRanker(**{**FAST, "validation_fraction": 0.2}).fit(X, y)
    assert auto.n_straddling_ == 0
    assert _n_trained(auto) == n_pairs - int(np.ceil(0.2 * n_pairs))
    # asked for explicitly, items are held out even so (and most pairs straddle)
    forced = PairwiseRanker(**{**FAST, "validation_fraction": 0.2, "validation_split": "items"}).fit(X, y)
    assert forced.n_straddling_ > 0


def test_rating_items_ignore_indicator_context():
    """An image rated by several users is one item: user one-hot columns do not split it."""
    rng = np.random.RandomState(0)
    image = np.repeat(np.arange(25), 4)
    embedding = rng.normal(size=(25, 5))[image]
    users = np.eye(4)[np.tile(np.arange(4), 25)]
    codes, described = rating_item_codes(np.hstack([embedding, users]))
    assert described
    np.testing.assert_array_equal(pd.factorize(codes[:, 0])[0], image)
    _, identity = rating_item_codes(np.hstack([np.eye(25)[image], users]))
    assert not identity
