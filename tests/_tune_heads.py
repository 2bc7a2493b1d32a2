"""Tiny pair data and a tiny PairwiseRanker for tests/test_tune.py (also used by its subprocess)."""

from __future__ import annotations

import numpy as np

from skpercept.ranking import PairwiseRanker


def make_head(**params) -> PairwiseRanker:
    """A small, fast, deterministic ranker: fixed epochs (no early stopping) on CPU."""
    defaults = dict(
        hidden_layer_sizes=(8,),
        lr=0.03,
        max_epochs=8,
        early_stopping=False,
        batch_size=32,
        device="cpu",
        random_state=0,
    )
    return PairwiseRanker(**{**defaults, **params})


def make_data(n: int = 60, seed: int = 0, n_items: int = 15):
    """Pairs of items whose first feature decides the preference: X = [left | right]."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, 3))
    a, b = rng.randint(0, n_items, size=(2, 4 * n))
    keep = np.flatnonzero(a != b)[:n]
    a, b = a[keep], b[keep]
    X = np.hstack([items[a], items[b]])
    y = (items[a, 0] > items[b, 0]).astype(int)
    return X, y
