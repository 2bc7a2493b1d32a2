"""Devices: a model saved for a GPU loads and predicts on a machine without one (on the CPU, with
one :class:`DeviceFallbackWarning`), and a fitted model moves between devices with
``set_params(device=...)`` at its next call, with no refit, for every estimator with a ``device``.

There is no GPU here: :func:`cpu_only` hides torch's CUDA device, and :func:`fake_cuda` shows one
whose transfers record the device asked for and stay on the CPU, so the estimators' own code runs
as on a GPU. ``test_set_params_moves_to_a_real_gpu_and_back`` does the same on a real device
(``-m gpu``).
"""

from __future__ import annotations

import contextlib
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.pipeline import make_pipeline

from skpercept._compat import InvalidParameterError
from skpercept._utils import DeviceFallbackWarning
from skpercept.embed import CLIPEmbedder, DlibFaceEmbedder, LayoutEmbedder, TimmEmbedder, dlib_available
from skpercept.heads import JointRatingRanker, PairwiseRanker, RatingClassifier, RatingRegressor, join_labels
from skpercept.persistence import load_model, load_safe, save_model, save_safe
from tests._images import TINY_TIMM, photo, register_tiny_clip

try:
    import peft  # noqa: F401
except ImportError:  # pragma: no cover - the finetune extra is missing
    PEFT = False
else:
    PEFT = True

IMAGES = [photo(i, size=(40, 36)) for i in range(8)]
HEAD = dict(hidden_layer_sizes=(8,), max_epochs=3, early_stopping=False, device="cpu", random_state=0)
EMBED = dict(pretrained=None, device="cpu", num_workers=0)
LORA = dict(
    model_name=f"timm:{TINY_TIMM}",
    pretrained=None,
    image_size=32,
    max_epochs=1,
    batch_size=16,
    early_stopping=False,
    hidden_layer_sizes=(8,),
    device="cpu",
    random_state=0,
)


# -- the devices ---------------------------------------------------------------------------------
@contextlib.contextmanager
def cpu_only() -> Iterator[None]:
    """A machine without a CUDA device."""
    with mock.patch("torch.cuda.is_available", return_value=False):
        yield


def _is_cuda(value) -> bool:
    if isinstance(value, torch.device):
        return value.type == "cuda"
    return isinstance(value, str) and value.startswith("cuda")


@contextlib.contextmanager
def fake_cuda() -> Iterator[dict[str, list[str]]]:
    """A machine whose torch sees a CUDA device: ``.to(...)`` of modules and tensors records the
    device asked for (in ``moves['modules']`` / ``moves['tensors']``) and keeps the data on the
    CPU, so the estimators' code runs its CUDA path and computes what the CPU computes."""
    moves: dict[str, list[str]] = {"modules": [], "tensors": []}
    tensor_to, module_to = torch.Tensor.to, torch.nn.Module.to

    def redirected(kind: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        moves[kind] += [str(v) for v in (*args, kwargs.get("device")) if isinstance(v, (str, torch.device))]
        args = tuple("cpu" if _is_cuda(v) else v for v in args)
        if _is_cuda(kwargs.get("device")):
            kwargs = {**kwargs, "device": "cpu"}
        return args, kwargs

    def to_tensor(self, *args, **kwargs):
        args, kwargs = redirected("tensors", args, kwargs)
        return tensor_to(self, *args, **kwargs)

    def to_module(self, *args, **kwargs):
        args, kwargs = redirected("modules", args, kwargs)
        return module_to(self, *args, **kwargs)

    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch.object(torch.Tensor, "to", to_tensor),
        mock.patch.object(torch.nn.Module, "to", to_module),
        mock.patch.object(torch.Tensor, "pin_memory", lambda self, *args, **kwargs: self),
    ):
        yield moves


# -- one case per estimator kind ------------------------------------------------------------------
@dataclass
class Case:
    """How to fit an estimator kind, run it, and find its network(s)."""

    fit: Callable[[dict], Any]
    run: Callable[[Any, dict], Any]  # an array, or a list of arrays
    networks: Callable[[Any], list[torch.nn.Module]]
    #: Where the estimator says its network runs (None: it rests on the CPU between calls).
    where: Callable[[Any], list[str]] | None


def _pairs(data: dict) -> tuple[np.ndarray, np.ndarray]:
    X = data["X"]
    return np.hstack([X[:40], X[40:]]), (X[:40, 0] > X[40:, 0]).astype(float)


def _joint(data: dict) -> tuple[np.ndarray, np.ndarray]:
    X = data["X"]
    return join_labels(X[:40], np.digitize(X[:40, 0], [-0.5, 0.5]) + 1, *_pairs(data))


def _joint_outputs(est: JointRatingRanker, X: np.ndarray) -> list[np.ndarray]:
    """The rated items' rating probabilities and scores, and the pairs' preferences."""
    half = X.shape[1] // 2
    rated = X[np.isnan(X[:, half]), :half]
    return [
        est.predict_rating_proba(rated),
        est.score_items(rated),
        est.predict_pair_proba(X[~np.isnan(X[:, half])]),
    ]


def _head(make: Callable, xy: Callable, outputs: Callable = lambda est, X: est.predict_proba(X)) -> Case:
    return Case(
        fit=lambda data: make().fit(*xy(data)),
        run=lambda est, data: outputs(est, xy(data)[0]),
        networks=lambda est: [net.module_ for net in est.nets_],
        where=lambda est: [str(net.device) for net in est.nets_],
    )


def _embedder(make: Callable) -> Case:
    return Case(
        fit=lambda data: make().fit(IMAGES),
        run=lambda est, data: est.transform(IMAGES),
        networks=lambda est: [est._model],
        where=lambda est: [est._device],
    )


def _lora(name: str) -> Case:
    from skpercept import finetune

    def xy(data: dict) -> tuple[pd.DataFrame, np.ndarray]:
        paths = data["paths"]
        if name == "LoRARatingClassifier":
            return pd.DataFrame({"image": paths}), np.arange(len(paths)) % 3 + 1
        X = pd.DataFrame({"image_a": paths[:-1], "image_b": paths[1:]})
        return X, (np.arange(len(X)) % 2).astype(float)

    return Case(
        fit=lambda data: getattr(finetune, name)(**LORA).fit(*xy(data)),
        run=lambda est, data: est.predict_proba(xy(data)[0]),
        networks=lambda est: [est.module_],
        where=None,
    )


def _contrastive() -> Case:
    from skpercept.finetune import ContrastiveEmbedder

    params = {k: v for k, v in LORA.items() if k not in ("batch_size", "hidden_layer_sizes")}
    return _embedder(lambda: ContrastiveEmbedder(**params, train_batch_size=8, num_workers=0))


def _tiny_clip() -> str:
    return register_tiny_clip(Path(tempfile.mkdtemp(prefix="skpercept-clip-")))


CASES: dict[str, Callable[[], Case]] = {
    "RatingClassifier": lambda: _head(
        lambda: RatingClassifier(**HEAD), lambda d: (d["X"], (d["X"][:, 0] > 0).astype(int))
    ),
    "RatingRegressor": lambda: _head(
        lambda: RatingRegressor(**HEAD), lambda d: (d["X"], d["X"][:, 0]), lambda est, X: est.predict(X)
    ),
    "PairwiseRanker": lambda: _head(lambda: PairwiseRanker(**HEAD, n_ensemble=2), _pairs),
    "JointRatingRanker": lambda: _head(lambda: JointRatingRanker(**HEAD), _joint, _joint_outputs),
    "TimmEmbedder": lambda: _embedder(lambda: TimmEmbedder(model_name=TINY_TIMM, **EMBED)),
    "CLIPEmbedder": lambda: _embedder(lambda: CLIPEmbedder(model_name=_tiny_clip(), **EMBED)),
    "LayoutEmbedder": lambda: _embedder(lambda: LayoutEmbedder(model_name=TINY_TIMM, side=32, **EMBED)),
    "ContrastiveEmbedder": _contrastive,
    "LoRARatingClassifier": lambda: _lora("LoRARatingClassifier"),
    "LoRAPairwiseRanker": lambda: _lora("LoRAPairwiseRanker"),
}


def _kind(name: str):
    if name in ("ContrastiveEmbedder", "LoRARatingClassifier", "LoRAPairwiseRanker"):
        return pytest.param(name, marks=pytest.mark.skipif(not PEFT, reason="needs skpercept[lora]"))
    return name


KINDS = [_kind(name) for name in CASES]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, image in enumerate(IMAGES):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return {"X": np.random.RandomState(0).normal(size=(80, 6)), "paths": paths}


@pytest.fixture(scope="module")
def fitted(data) -> Callable[[str], tuple[Case, Any, Any]]:
    """``(case, a copy of its fitted CPU model, the model's output)`` of a kind (fitted once)."""
    cache: dict[str, tuple[Case, bytes, Any]] = {}

    def get(name: str):
        if name not in cache:
            case = CASES[name]()
            est = case.fit(data)
            cache[name] = (case, pickle.dumps(est), case.run(est, data))
        case, payload, expected = cache[name]
        return case, pickle.loads(payload), expected

    return get


def _assert_outputs(got, expected, atol: float = 1e-6) -> None:
    got, expected = (v if isinstance(v, list) else [v] for v in (got, expected))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol)


def _on_cpu(case: Case, est) -> bool:
    return all(p.device.type == "cpu" for module in case.networks(est) for p in module.parameters())


# -- (1) a model saved for CUDA, loaded where there is none ---------------------------------------
@pytest.mark.parametrize("suffix", [".joblib", ".skops"])
@pytest.mark.parametrize("name", KINDS)
def test_saved_for_cuda_predicts_on_a_cpu_only_machine(fitted, data, tmp_path, name, suffix):
    case, est, expected = fitted(name)
    est.set_params(device="cuda")  # as trained on a GPU: the files hold no device-bound tensors
    save_model(est, tmp_path / f"model{suffix}")
    with cpu_only(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_model(tmp_path / f"model{suffix}")
        got = case.run(loaded, data)
        again = case.run(loaded, data)
    fallbacks = [w for w in caught if issubclass(w.category, DeviceFallbackWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert f"{name} was saved with device='cuda'" in str(fallbacks[0].message)
    assert loaded.device == "cuda"  # the parameter keeps its saved value: a GPU machine uses it
    _assert_outputs(got, expected)
    _assert_outputs(again, expected)
    assert _on_cpu(case, loaded)
    if case.where is not None:
        assert set(case.where(loaded)) == {"cpu"}
    with fake_cuda() as moves:  # set_params(device=...) chooses again: where there is a GPU, the GPU
        _assert_outputs(case.run(loaded.set_params(device="cuda"), data), expected)
    assert "cuda" in moves["modules"] and "cuda" in moves["tensors"]


@pytest.mark.parametrize("name", ["PairwiseRanker", "TimmEmbedder"])
def test_saved_for_cuda_loads_on_its_gpu_where_there_is_one(fitted, data, tmp_path, name):
    case, est, expected = fitted(name)
    est.set_params(device="cuda")
    save_model(est, tmp_path / "model.joblib")
    with fake_cuda() as moves, warnings.catch_warnings():
        warnings.simplefilter("error", DeviceFallbackWarning)
        loaded = load_model(tmp_path / "model.joblib")
        got = case.run(loaded, data)
    assert "cuda" in moves["modules"] and "cuda" in moves["tensors"]
    assert set(case.where(loaded)) == {"cuda"}
    _assert_outputs(got, expected)


def test_pipeline_warns_once_per_estimator_saved_for_cuda(tmp_path):
    pairs = pd.DataFrame({"a": IMAGES[:4], "b": IMAGES[4:]})
    pipe = make_pipeline(TimmEmbedder(model_name=TINY_TIMM, **EMBED), PairwiseRanker(**HEAD))
    pipe.fit(pairs, np.array([1.0, 0.0, 1.0, 0.0]))
    expected = pipe.predict_proba(pairs)
    pipe.set_params(timmembedder__device="cuda", pairwiseranker__device="cuda")
    save_model(pipe, tmp_path / "pipe.skops")
    with cpu_only(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_model(tmp_path / "pipe.skops").predict_proba(pairs)
    said = sorted(
        str(w.message).split(" was saved")[0] for w in caught if w.category is DeviceFallbackWarning
    )
    assert said == ["PairwiseRanker", "TimmEmbedder"]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_safe_head_file_loads_on_the_cpu_whatever_its_device(fitted, data, tmp_path):
    case, est, expected = fitted("PairwiseRanker")
    est.set_params(device="cuda")
    save_safe(est, tmp_path / "head.safetensors")
    with cpu_only(), warnings.catch_warnings():
        warnings.simplefilter("error", DeviceFallbackWarning)  # the CPU was asked for: no fallback
        loaded = load_safe(tmp_path / "head.safetensors", device="cpu")
        _assert_outputs(case.run(loaded, data), expected)
    assert loaded.device == "cuda" and set(case.where(loaded)) == {"cpu"}
    with fake_cuda() as moves:
        _assert_outputs(case.run(loaded, data), expected)
        assert "cuda" not in moves["modules"]  # load_safe's device holds until set_params
        _assert_outputs(case.run(loaded.set_params(device="cpu"), data), expected)
        _assert_outputs(case.run(loaded.set_params(device="cuda"), data), expected)
        assert "cuda" in moves["modules"] and set(case.where(loaded)) == {"cuda"}


# -- (2) set_params(device=...) on a fitted model -------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_set_params_moves_a_fitted_model_to_cuda_and_back(fitted, data, name):
    case, _, expected = fitted(name)
    est = case.fit(data)
    _assert_outputs(case.run(est, data), expected)  # in use on the CPU: its network is built
    networks = case.networks(est)
    fitted_state = {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}
    with fake_cuda() as moves:
        est.set_params(device="cuda")
        assert "cuda" not in moves["modules"]  # set_params only stores the value
        _assert_outputs(case.run(est, data), expected)
        assert "cuda" in moves["modules"], "the network was not moved"
        assert "cuda" in moves["tensors"], "the inputs were not sent to the device"
        if case.where is not None:
            assert set(case.where(est)) == {"cuda"}
        moves["modules"].clear()
        est.set_params(device="cpu")
        _assert_outputs(case.run(est, data), expected)
        assert "cpu" in moves["modules"] and "cuda" not in moves["modules"]
    # moved, not refitted: the same networks and fitted attributes
    assert all(a is b for a, b in zip(case.networks(est), networks))
    assert {k for k in vars(est) if k.endswith("_") and not k.startswith("_")} == fitted_state
    assert _on_cpu(case, est)
    if case.where is not None:
        assert set(case.where(est)) == {"cpu"}


@pytest.mark.parametrize("name", ["PairwiseRanker", "TimmEmbedder"])
def test_set_params_to_a_device_this_machine_lacks_fails_at_the_next_call(fitted, data, name):
    case, est, expected = fitted(name)
    est.set_params(device="cuda")
    with cpu_only(), pytest.raises(RuntimeError, match="torch sees no CUDA device"):
        case.run(est, data)
    _assert_outputs(case.run(est.set_params(device="cpu"), data), expected)


@pytest.mark.skipif(not dlib_available(), reason="needs skpercept[face]")
@pytest.mark.filterwarnings("ignore::skpercept.embed.NoFaceWarning")
def test_dlib_runs_on_the_cpu_wherever_it_is_loaded(tmp_path):
    est = DlibFaceEmbedder(num_workers=0).fit(IMAGES[:2])  # device='auto'
    expected = est.transform(IMAGES[:2])
    save_model(est, tmp_path / "dlib.joblib")
    with cpu_only(), warnings.catch_warnings():
        warnings.simplefilter("error", DeviceFallbackWarning)
        loaded = load_model(tmp_path / "dlib.joblib")
        np.testing.assert_allclose(loaded.transform(IMAGES[:2]), expected, atol=1e-6)
    # dlib has no CUDA path: asking for one is refused by name
    with pytest.raises(InvalidParameterError, match="'device' parameter"):
        loaded.set_params(device="cuda").transform(IMAGES[:2])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", [_kind(n) for n in ("PairwiseRanker", "TimmEmbedder", "LoRAPairwiseRanker")])
def test_set_params_moves_to_a_real_gpu_and_back(fitted, data, name):
    case, _, expected = fitted(name)
    est = case.fit(data)
    _assert_outputs(case.run(est.set_params(device="cuda"), data), expected, atol=1e-4)
    if case.where is not None:
        assert all(d.startswith("cuda") for d in case.where(est))
        assert all(p.is_cuda for module in case.networks(est) for p in module.parameters())
    _assert_outputs(case.run(est.set_params(device="cpu"), data), expected)
    assert _on_cpu(case, est)
