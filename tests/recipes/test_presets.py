"""Presets shared by the command line and the benchmarks: heads, backbones, threads, cache dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_info

from skpercept._utils import torch_threads
from skpercept.embed import TimmEmbedder, default_cache_dir, make_backbones
from skpercept.heads import RATING_LEVELS, HeadSettings, get_head, head_names, make_head
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("ridge", RidgeCV),
        ("ranker", PairwiseRanker),
        ("classifier", RatingClassifier),
        ("regressor", RatingRegressor),
    ],
)
def test_make_head_kinds(kind, cls):
    settings = HeadSettings(hidden=(32, 8), max_epochs=7, n_ensemble=3, seed=11, device="cpu")
    head = make_head(kind, settings)
    assert type(head) is cls
    clone(head)  # an ordinary unfitted estimator
    if kind == "ridge":
        assert head.alpha_per_target
        return
    params = head.get_params()
    assert params["hidden_layer_sizes"] == (32, 8)
    assert params["max_epochs"] == 7 and params["random_state"] == 11 and params["device"] == "cpu"
    assert params["n_ensemble"] == 3
    if kind == "classifier":
        np.testing.assert_array_equal(params["classes"], RATING_LEVELS)


@pytest.mark.parametrize("kind", ["ranker-default", "regressor-default"])
def test_default_kinds_are_the_constructor_defaults(kind):
    """The '-default' rows measure what a new user gets: only device and seed are set."""
    head = make_head(kind, HeadSettings(hidden=(32, 8), max_epochs=7, seed=11, device="cpu"))
    bare = type(head)().get_params()
    params = head.get_params()
    assert {k for k in params if params[k] != bare[k]} == {"device", "random_state"}
    # trained and read as the head it is a variant of; not offered by the command
    assert get_head(kind).output == get_head(kind.split("-")[0]).output
    assert kind not in head_names(command=True)


def test_make_head_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown head 'svm'") as info:
        make_head("svm", HeadSettings())
    for kind in head_names():
        assert kind in str(info.value)


def test_head_settings_quick_is_small_and_overridable():
    quick = HeadSettings.quick(seed=5, max_epochs=9)
    assert quick.seed == 5 and quick.max_epochs == 9
    assert quick.n_pairs < HeadSettings().n_pairs and quick.hidden == (16,)
    assert quick.n_ensemble == HeadSettings().n_ensemble == 1  # one net unless asked


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_torch_threads_sets_and_restores_thread_counts():
    torch.set_num_threads(2)
    blas = _blas_threads()
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            assert all(n == 1 for n in _blas_threads())
        assert torch.get_num_threads() == 2
        assert _blas_threads() == blas
        with pytest.raises(RuntimeError, match="boom"), torch_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2  # restored when the block raises too
        with torch_threads(None):
            assert torch.get_num_threads() == 2  # None leaves them alone
    finally:
        torch.set_num_threads(1)


def test_make_backbones_builds_unfitted_embedders_and_rejects_unknown_names():
    backbones = make_backbones(["lite0"], flip=False, cache_dir="/tmp/x", device="cpu")
    assert list(backbones) == ["lite0"]
    lite0 = backbones["lite0"]
    assert isinstance(lite0, TimmEmbedder)
    assert lite0.tta is False and lite0.crop_pct == 1.0 and lite0.normalize is False
    assert not hasattr(lite0, "embedding_dim_")
    lite2 = make_backbones(["lite2"], cache_dir=None, device="cpu")["lite2"]
    assert lite2.model_name == "efficientnet_lite2" and lite2.pretrained == "auto"
    assert lite2.tta is True and lite2.crop_pct == 1.0
    with pytest.raises(ValueError, match="Unknown backbone 'vgg'.*'lite2'"):
        make_backbones(["vgg"])


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKPERCEPT_CACHE_DIR", str(tmp_path / "emb"))
    assert default_cache_dir() == tmp_path / "emb"
    monkeypatch.delenv("SKPERCEPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "skpercept"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "skpercept"
