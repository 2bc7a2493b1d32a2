"""PairwiseRanker: antisymmetry, Bradley–Terry equivalence, soft/multi-output labels, item scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_val_score

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads.nets import PairScorer
from skpercept.preprocessing._pairs import swap_halves

FAST = dict(
    hidden_layer_sizes=(16,),
    lr=0.03,
    max_epochs=15,
    batch_size=64,
    dropout=0.0,
    early_stopping=False,
    device="cpu",
    random_state=0,
)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.RandomState(0)
    items = rng.normal(size=(30, 5))
    a, b = rng.randint(0, 30, size=(2, 400))
    utility = items[:, 0] - 0.5 * items[:, 1]
    y = (utility[a] - utility[b] + 0.3 * rng.normal(size=400) > 0).astype(int)
    return items, np.hstack([items[a], items[b]]), y, utility


def test_learns_and_scores_items(pairs):
    items, X, y, utility = pairs
    ranker = PairwiseRanker(**FAST).fit(X, y)
    assert ranker.classes_.tolist() == [0, 1]
    assert ranker.score(X, y) > 0.85
    proba = ranker.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(ranker.predict(X), (ranker.decision_function(X) > 0).astype(int))
    scores = ranker.score_items(items)
    assert scores.shape == (30,)
    assert np.corrcoef(scores, utility)[0, 1] > 0.9
    # the decision function is exactly the score difference
    np.testing.assert_allclose(
        ranker.decision_function(X[:5]),
        ranker.score_items(X[:5, :5]) - ranker.score_items(X[:5, 5:]),
        atol=1e-5,
    )


def test_swapping_halves_gives_exactly_one_minus_p(pairs):
    _, X, y, _ = pairs
    ranker = PairwiseRanker(**{**FAST, "batch_norm": True, "dropout": 0.2}).fit(X, y)
    p = ranker.predict_proba(X)[:, 1]
    q = ranker.predict_proba(swap_halves(X))[:, 1]
    assert np.all(p + q == 1.0)
    np.testing.assert_array_equal(ranker.decision_function(swap_halves(X)), -ranker.decision_function(X))


def test_module_is_antisymmetric_in_training_mode_too():
    torch.manual_seed(0)
    net = PairScorer(4, n_outputs=2, hidden_layer_sizes=(8,), dropout=0.0)
    X = torch.randn(10, 8)
    torch.testing.assert_close(net(torch.cat([X[:, 4:], X[:, :4]], 1)), -net(X))


def test_bradley_terry_matches_choix():
    choix = pytest.importorskip("choix")
    rng = np.random.RandomState(1)
    n_items, n_pairs, wd = 12, 300, 0.02
    theta = rng.normal(size=n_items)
    a, b = rng.randint(0, n_items, size=(2, n_pairs))
    keep = a != b
    a, b = a[keep], b[keep]
    left_wins = rng.rand(len(a)) < 1 / (1 + np.exp(-(theta[a] - theta[b])))
    onehot = np.eye(n_items)
    X = np.hstack([onehot[a], onehot[b]])
    # optimizer='adam' applies weight_decay as an L2 penalty wd/2·||s||² on the mean log-loss,
    # which is choix's penalty alpha·||s||² on the summed log-loss with alpha = n·wd/2.
    ranker = PairwiseRanker(
        hidden_layer_sizes=(),
        dropout=0.0,
        optimizer="adam",
        weight_decay=wd,
        lr=0.1,
        batch_size=len(a),
        max_epochs=200,
        early_stopping=False,
        device="cpu",
        random_state=0,
    ).fit(X, left_wins.astype(float))
    ours = ranker.score_items(onehot)
    data = [(i, j) if w else (j, i) for i, j, w in zip(a, b, left_wins)]
    ref = choix.opt_pairwise(n_items, data, alpha=len(a) * wd / 2)
    ours, ref = ours - ours.mean(), ref - ref.mean()
    assert np.corrcoef(ours, ref)[0, 1] > 0.9999
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_soft_labels_and_multi_output_with_nan(pairs):
    items, X, y, utility = pairs
    Y = np.column_stack([y, 1 - y]).astype(float)
    Y[::5, 0] = 0.5  # ties
    Y[::7, 1] = np.nan
    ranker = PairwiseRanker(**FAST).fit(X, Y)
    assert ranker.n_outputs_ == 2 and len(ranker.classes_) == 2
    probas = ranker.predict_proba(X)
    assert isinstance(probas, list) and [p.shape for p in probas] == [(len(X), 2)] * 2
    assert ranker.decision_function(X).shape == (len(X), 2)
    assert ranker.predict(X).shape == (len(X), 2)
    scores = ranker.score_items(items)
    assert scores.shape == (30, 2)
    assert np.corrcoef(scores[:, 0], utility)[0, 1] > 0.8
    assert np.corrcoef(scores[:, 1], utility)[0, 1] < -0.8


def test_swap_augmentation_flips_labels():
    from skpercept.heads.base import random_swap

    X = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    y = torch.tensor([[1.0], [0.0], [float("nan")], [0.25], [1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    Xs, ys = random_swap(X, y, torch.Generator().manual_seed(0))
    flipped = Xs[:, 0] != X[:, 0]
    assert 0 < flipped.sum() < 10
    torch.testing.assert_close(Xs[flipped], torch.cat([X[flipped, 2:], X[flipped, :2]], 1))
    torch.testing.assert_close(ys[flipped], 1 - y[flipped], equal_nan=True)
    torch.testing.assert_close(ys[~flipped], y[~flipped], equal_nan=True)


def test_bad_input(pairs):
    _items, X, y, _ = pairs
    with pytest.raises(ValueError, match="even number of columns"):
        PairwiseRanker(**FAST).fit(X[:, :-1], y)
    with pytest.raises(ValueError, match=r"y must be in \[0, 1\]"):
        PairwiseRanker(**FAST).fit(X, y + 1)
    with pytest.raises(ValueError, match="NaN"):
        bad = X.copy()
        bad[0, 0] = np.nan
        PairwiseRanker(**FAST).fit(bad, y)
    ranker = PairwiseRanker(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(n_items, 5\)"):
        ranker.score_items(X)


def test_reproducible_and_sklearn_tools(pairs):
    _, X, y, _ = pairs
    a = PairwiseRanker(**{**FAST, "early_stopping": True, "dropout": 0.1}).fit(X, y).predict_proba(X)
    b = PairwiseRanker(**{**FAST, "early_stopping": True, "dropout": 0.1}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    search = GridSearchCV(PairwiseRanker(**FAST), {"weight_decay": [0.0, 0.1]}, cv=2).fit(X, y)
    assert 0.5 < search.best_score_ <= 1
    from skpercept.metrics import pairwise_accuracy_scorer

    scores = cross_val_score(PairwiseRanker(**FAST), X, y, cv=2, scoring=pairwise_accuracy_scorer)
    assert (scores > 0.7).all()
