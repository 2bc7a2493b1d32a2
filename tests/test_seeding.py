"""``fit`` seeds generators of its own: the caller's global random state is never touched.

Every skorch-trained estimator (heads, LoRA estimators, and a search over them) seeds weight
initialization, dropout, batch order, augmentation and validation splits from
``random_state`` through local generators or a forked torch generator. These tests record
Python's, NumPy's and torch's global states before ``fit`` and compare them after.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept._utils import resolve_seed
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.model_selection._search import PerceptSearchCV

FAST = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, dropout=0.2, device="cpu")


def _global_state() -> tuple:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _assert_unchanged(before: tuple) -> None:
    after = _global_state()
    assert after[0] == before[0], "fit changed Python's global random state"
    np.testing.assert_array_equal(after[1][1], before[1][1], "fit changed NumPy's global state")
    assert after[1][2:] == before[1][2:]
    assert torch.equal(after[2], before[2]), "fit changed torch's global generator"


def _data(kind: str):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(80, 6))
    if kind == "classifier":
        return X, (X[:, 0] > 0).astype(int) + 1
    if kind == "regressor":
        return X, X[:, 0] * 3 + 1
    items = rng.normal(size=(20, 3))  # pairs of 20 items, so that items can be held out
    a, b = rng.randint(0, 20, size=(2, 80))
    return np.hstack([items[a], items[b]]), (items[a, 0] > items[b, 0]).astype(float)


HEADS = {"classifier": RatingClassifier, "regressor": RatingRegressor, "ranker": PairwiseRanker}


@pytest.mark.parametrize("kind", sorted(HEADS))
@pytest.mark.parametrize("random_state", [0, None, "instance"])
def test_head_fit_leaves_global_state_unchanged(kind, random_state):
    X, y = _data(kind)
    if random_state == "instance":
        random_state = np.random.RandomState(3)
    before = _global_state()
    HEADS[kind](random_state=random_state, early_stopping=True, **FAST).fit(X, y)
    _assert_unchanged(before)


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_head_fit_ignores_global_state(kind):
    # Same random_state, different global states in between: identical models.
    X, y = _data(kind)
    outputs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        model = HEADS[kind](random_state=0, early_stopping=True, **FAST).fit(X, y)
        outputs.append(model._forward(X))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    # random_state=None draws a fresh seed: two fits differ.
    a, b = (HEADS[kind](random_state=None, **FAST).fit(X, y)._forward(X) for _ in range(2))
    assert not np.array_equal(a, b)


def test_search_fit_leaves_global_state_unchanged():
    X, y = _data("ranker")
    pipe = make_pipeline(StandardScaler(), PairwiseRanker(random_state=0, **FAST))
    search = PerceptSearchCV(pipe, {"pairwiseranker__lr": [1e-3, 1e-2]}, cv=2, n_trials=2, random_state=0)
    before = _global_state()
    search.fit(X, y)
    _assert_unchanged(before)


def test_lora_fit_leaves_global_state_unchanged(tmp_path):
    pytest.importorskip("peft")
    from skpercept.finetune import LoRAPairwiseRanker

    rng = np.random.default_rng(0)
    images = []
    for k in range(8):
        images.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(images[-1])
    i, j = np.triu_indices(len(images), 1)
    X = pd.DataFrame({"image_a": [images[k] for k in i], "image_b": [images[k] for k in j]})
    y = (i % 2).astype(float)
    params = dict(
        model_name="timm:test_efficientnet",
        pretrained=None,
        image_size=32,
        max_epochs=2,
        batch_size=8,
        hidden_layer_sizes=(8,),
        validation_fraction=0.25,
        device="cpu",
        random_state=0,
    )
    outputs = []
    for batching in ("rows", "images"):
        torch.manual_seed(len(outputs))  # a different global state for each fit
        before = _global_state()
        model = LoRAPairwiseRanker(batching=batching, **params).fit(X, y)
        _assert_unchanged(before)
        outputs.append(model.decision_function(X))
    torch.manual_seed(5)
    again = LoRAPairwiseRanker(batching="images", **params).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(again, outputs[1])


def test_resolve_seed():
    assert resolve_seed(7) == 7 and resolve_seed(np.int64(7)) == 7
    state = np.random.RandomState(0)
    assert resolve_seed(state) != resolve_seed(state)  # the caller's instance advances
    before = _global_state()
    seeds = {resolve_seed(None) for _ in range(5)}
    assert len(seeds) == 5 and all(0 <= s < 2**63 for s in seeds)
    _assert_unchanged(before)
