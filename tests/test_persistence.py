"""Saving: joblib round trips and their format version, CUDA-trained nets loading on CPU, the safe format."""

from __future__ import annotations

import io
import json
import pickle
from unittest import mock

import joblib
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept._utils import PICKLE_FORMAT, DeviceFallbackWarning, SavedFormatError
from skpercept.embed import TimmEmbedder
from skpercept.heads import PairwiseRanker, RatingClassifier, RatingRegressor
from skpercept.persistence import load_safe, save_safe

FAST = dict(
    hidden_layer_sizes=(8,),
    lr=0.03,
    max_epochs=3,
    batch_size=32,
    early_stopping=False,
    device="cpu",
    random_state=0,
)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 6))
    y = np.digitize(X[:, 0], [-0.5, 0.5]) + 1
    Y = np.column_stack([X[:, 0] * 10, X[:, 1]])
    Y[::3, 1] = np.nan
    return X, {
        "clf": RatingClassifier(classes=[[1, 2, 3], [1, 2, 3, 4]], loss="corn", **FAST).fit(
            X, np.column_stack([y, np.where(X[:, 2] > 1, 4, y)])
        ),
        "reg": RatingRegressor(batch_norm=True, **FAST).fit(X, Y),
        "rank": PairwiseRanker(**FAST).fit(X, (X[:, 0] > X[:, 3]).astype(float)),
    }


def _outputs(est, X):
    if isinstance(est, RatingRegressor):
        return [est.predict(X)]
    proba = est.predict_proba(X)
    return [est.predict(X), *(proba if isinstance(proba, list) else [proba])]


def test_joblib_pipeline_round_trip(fitted, tmp_path):
    X, _ = fitted
    pipe = make_pipeline(StandardScaler(), RatingClassifier(**FAST)).fit(X, (X[:, 0] > 0).astype(int))
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "pipe.joblib").predict_proba(X), pipe.predict_proba(X)
    )


@pytest.mark.parametrize("name", ["clf", "reg", "rank"])
def test_safe_format_round_trip(fitted, tmp_path, name):
    X, estimators = fitted
    est = estimators[name]
    save_safe(est, tmp_path / "head.safetensors")
    loaded = load_safe(tmp_path / "head.safetensors")
    assert type(loaded) is type(est)
    assert loaded.get_params()["hidden_layer_sizes"] == est.hidden_layer_sizes
    for a, b in zip(_outputs(loaded, X), _outputs(est, X)):
        np.testing.assert_array_equal(a, b)
    if name == "rank":
        np.testing.assert_array_equal(loaded.score_items(X[:, :3]), est.score_items(X[:, :3]))


@pytest.mark.parametrize(
    "class_weight",
    [{1: 3.0, 2: 1.0, 3: 0.5}, [{1: 2.0, 3: 1.0}, "balanced"], {"low": 2.0, "high": 1.0}],
)
def test_safe_format_keeps_class_weights_and_fit_state(tmp_path, class_weight):
    """Level keys keep their type (JSON would turn 1 into "1"), and the fitted level weights
    and hold-out count come back: a reloaded head refits and adds people as the original."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 4))
    levels = np.digitize(X[:, 0], [-0.4, 0.4]) + 1
    if isinstance(class_weight, list):
        y = np.column_stack([levels, levels])
    elif "low" in class_weight:
        y = np.where(levels > 1, "high", "low")
    else:
        y = levels
    params = {**FAST, "early_stopping": True, "validation_fraction": 0.2}
    est = RatingClassifier(class_weight=class_weight, **params).fit(X, y)
    save_safe(est, tmp_path / "head.safetensors")
    loaded = load_safe(tmp_path / "head.safetensors")
    assert loaded.get_params()["class_weight"] == class_weight
    assert loaded.n_straddling_ == est.n_straddling_
    assert len(loaded.class_weight_) == len(est.class_weight_)
    for a, b in zip(loaded.class_weight_, est.class_weight_):
        np.testing.assert_array_equal(a, b)
    refitted = loaded.fit(X, y)  # the same parameters and seed: the same model as the original
    np.testing.assert_array_equal(refitted.predict(X), est.predict(X))
    for a, b in zip(_outputs(refitted, X)[1:], _outputs(est, X)[1:]):
        np.testing.assert_array_equal(a, b)


def test_safe_format_rejects_foreign_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a skpercept safe file"):
        load_safe(tmp_path / "plain.safetensors")
    config = {"format": "skpercept-head", "version": 2, "estimator": "os.system", "params": {}, "fitted": {}}
    save_file(
        {"w": torch.zeros(2)}, tmp_path / "evil.safetensors", metadata={"skpercept": json.dumps(config)}
    )
    with pytest.raises(ValueError, match="unknown estimator 'os.system'"):
        load_safe(tmp_path / "evil.safetensors")
    config["version"] = 1
    save_file({"w": torch.zeros(2)}, tmp_path / "v1.safetensors", metadata={"skpercept": json.dumps(config)})
    with pytest.raises(ValueError, match="safe format version 1; this skpercept reads version 2"):
        load_safe(tmp_path / "v1.safetensors")
    with pytest.raises(TypeError, match="Use joblib"):
        save_safe(StandardScaler().fit(np.zeros((2, 2))), tmp_path / "x.safetensors")


def test_cuda_trained_head_unpickles_on_cpu_only_machine(fitted):
    """The mechanism without a GPU: a head whose device says 'cuda' loads onto the CPU, saying so."""
    X, estimators = fitted
    est = estimators["rank"]
    expected = est.predict_proba(X)
    est.device = "cuda"  # as if trained with device='cuda'
    try:
        payload = pickle.dumps(est)
    finally:
        est.device = "cpu"
    with (
        mock.patch("torch.cuda.is_available", return_value=False),
        pytest.warns(DeviceFallbackWarning, match="runs on the CPU"),
    ):
        loaded = pickle.load(io.BytesIO(payload))
    assert str(loaded.net_.device) == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


@pytest.mark.gpu
def test_cuda_fit_then_cpu_process_predicts_identically(tmp_path):
    import subprocess
    import sys

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 6))
    est = PairwiseRanker(**{**FAST, "device": "cuda"}).fit(X, (X[:, 0] > X[:, 3]).astype(float))
    joblib.dump(est, tmp_path / "m.joblib")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "p.npy", est.predict_proba(X))
    code = (
        "import joblib, numpy as np, torch; assert not torch.cuda.is_available(); "
        f"m = joblib.load(r'{tmp_path / 'm.joblib'}'); X = np.load(r'{tmp_path / 'X.npy'}'); "
        f"np.testing.assert_allclose(m.predict_proba(X), np.load(r'{tmp_path / 'p.npy'}'), atol=1e-6)"
    )
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_pickles_carry_their_format_and_another_format_is_refused(fitted):
    X, estimators = fitted
    est = estimators["rank"]
    state = est.__getstate__()
    assert state["_skpercept_format"] == PICKLE_FORMAT
    assert "_skpercept_format" not in est.__dict__  # pickling leaves the estimator as it was
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(X), est.predict_proba(X))
    for found, said in ((None, "a format from before versioned formats"), (PICKLE_FORMAT + 1, "format 2")):
        old = {k: v for k, v in state.items() if k != "_skpercept_format"}
        if found is not None:
            old["_skpercept_format"] = found
        with pytest.raises(SavedFormatError, match=f"PairwiseRanker was saved by skpercept in {said}; this"):
            PairwiseRanker.__new__(PairwiseRanker).__setstate__(old)


def test_pickling_a_fitted_embedder_keeps_its_network():
    from tests._images import TINY_TIMM, photo

    embedder = TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", num_workers=0)
    Z = embedder.fit_transform([photo(0), photo(1)])
    network = embedder.__dict__["_model"]
    loaded = pickle.loads(pickle.dumps(embedder))
    assert embedder.__dict__["_model"] is network  # still built: the next transform does not rebuild
    np.testing.assert_allclose(loaded.transform([photo(0), photo(1)]), Z, atol=1e-6)
