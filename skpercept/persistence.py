"""Saving fitted models: a checked pickle for everyday use, safe formats for files you did not make.

Which one to use
----------------
* :func:`save_model` / :func:`load_model` hold a whole fitted Pipeline (embedders, PairFeatures,
  UserEncoder, heads, LoRA estimators), in the format the file name asks for:

  - ``*.skops``: the safe format (`skops <https://skops.readthedocs.io>`_). Loading runs no code
    from the file: it rebuilds only scikit-learn's classes, skpercept's own estimators and
    paths (:func:`trusted_types`), and a file naming any other type is refused before anything is
    built. Every skpercept estimator keeps its fitted state as plain data (weights as NumPy
    arrays, histories as lists), so nothing else needs trusting. ``import skpercept`` adds those
    classes to the types skops trusts by default, as skops trusts scikit-learn's
    (``skpercept._skops``): ``mlflow.sklearn.log_model(model)`` works with MLflow's defaults,
    and ``skops.io.load`` or ``mlflow.pyfunc.load_model`` read the model back in any process
    that has imported skpercept. (MLflow's guess of the model's requirements runs in a process
    that has not, and leaves skpercept out: pass ``extra_pip_requirements=["skpercept"]``.)
  - anything else (``*.joblib``): joblib's pickle followed by a SHA-256 checksum of it, checked
    at load, so a changed byte is an error rather than changed predictions (``joblib.load``
    still reads the file and ignores the checksum). Unpickling runs code chosen by whoever
    wrote the file: **only load pickles you made or trust.**

  A model saved for a GPU loads on a machine without one and runs on the CPU, with one
  ``DeviceFallbackWarning``.
* :func:`save_safe` / :func:`load_safe` store one registered skpercept head as safetensors +
  JSON (its weights, parameters and fitted attributes), without the Pipeline around it.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pathlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import skops.io as skops_io
from safetensors import safe_open
from safetensors.torch import load_file, save
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

import skpercept
from skpercept._io import check_input_file, write_bytes_atomic
from skpercept._utils import SavedFormatError, loaded_device, resolve_device
from skpercept.embed import registered_backbones
from skpercept.embed.towers import TowerSpec
from skpercept.heads import registered_estimators

__all__ = ["ModelFileError", "load_model", "load_safe", "save_model", "save_safe", "trusted_types"]

_FORMAT = "skpercept-head"
# A file of another version is refused with both versions named (2: class_weight dicts keep
# their level types; class_weight_ and n_straddling_ are stored).
_VERSION = 2
_ARRAY_ATTRS = (
    "y_mean_",
    "y_scale_",
    "feature_names_in_",
    "temperature_",
    "ensemble_seeds_",
    "user_features_",
    "user_precision_",
    "pair_scale_",
)
# The first member's weights keep their plain names (files of single heads stay as they were);
# member i > 0 of an ensemble (``n_ensemble``) has its names prefixed with "member<i>.".
_MEMBER_PREFIX = "member{}."
_SCALAR_ATTRS = (
    "n_features_in_",
    "n_outputs_",
    "n_half_features_",
    "_single_output",
    "n_user_features_",
    "user_prior_",
    "user_prior_reason_",
    "n_straddling_",
    "calibration_",
)
# Fitted attributes that are lists of arrays (one per attribute); the joint head's initial
# thresholds size its module before the saved weights are loaded into it.
_ARRAY_LIST_ATTRS = ("class_weight_", "thresholds_", "_init_thresholds")


def _encode_array(a: np.ndarray) -> dict:
    a = np.asarray(a)
    if a.dtype.kind not in "biufUO":
        raise TypeError(f"cannot store an array of dtype {a.dtype} in the safe format.")
    values = a.tolist()
    json.dumps(values)  # object arrays must hold JSON scalars; fail here, not at load time
    return {"dtype": a.dtype.str if a.dtype.kind != "O" else "object", "values": values}


def _decode_array(d: dict) -> np.ndarray:
    dtype = np.dtype(object) if d["dtype"] == "object" else np.dtype(d["dtype"])
    if dtype.kind not in "biufUO":
        raise ValueError(f"unsupported dtype {d['dtype']!r} in file.")
    return np.asarray(d["values"], dtype=dtype)


def _encode_class_weight(spec: Any) -> Any:
    """``class_weight`` for JSON: a dict's levels keep their type (JSON keys would be strings)."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        return {"levels": _encode_array(np.asarray(list(spec))), "weights": [float(w) for w in spec.values()]}
    return [_encode_class_weight(s) for s in spec]


def _decode_class_weight(spec: Any) -> Any:
    if isinstance(spec, dict) and set(spec) == {"levels", "weights"}:
        return dict(zip(_decode_array(spec["levels"]).tolist(), spec["weights"]))
    if isinstance(spec, list):
        return [_decode_class_weight(s) for s in spec]
    return spec


def save_safe(estimator: Any, path: str | os.PathLike) -> None:
    """Save a fitted skpercept head as one safetensors file (weights + JSON metadata).

    Parameters
    ----------
    estimator : RatingClassifier, RatingRegressor or PairwiseRanker
        Fitted. The ``callbacks`` parameter is not saved (callbacks are arbitrary objects).
    path : str or path-like
        Destination file, conventionally ``*.safetensors``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.persistence import save_safe, load_safe
    >>> X, y = np.random.RandomState(0).normal(size=(50, 4)), np.arange(50.0)
    >>> reg = RatingRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "head.safetensors")
    >>> save_safe(reg, path)
    >>> np.allclose(load_safe(path).predict(X), reg.predict(X))
    True
    """
    name = type(estimator).__name__
    known = registered_estimators()
    if known.get(name) is not type(estimator):
        raise TypeError(
            f"save_safe stores registered skpercept heads {sorted(known)}; got {name}. Use joblib."
        )
    check_is_fitted(estimator, "net_")
    params = estimator.get_params(deep=False)
    params["callbacks"] = None
    if isinstance(params.get("user_features"), np.ndarray):
        params["user_features"] = params["user_features"].tolist()
    if "class_weight" in params:
        params["class_weight"] = _encode_class_weight(params["class_weight"])
    if params.get("classes") is not None:
        c = params["classes"]
        per_output = isinstance(c, (list, tuple)) and len(c) > 0 and all(np.ndim(ci) == 1 for ci in c)
        params["classes"] = {
            "per_output": per_output,
            "values": [_encode_array(ci) for ci in c] if per_output else _encode_array(c),
        }
    fitted: dict[str, Any] = {}
    for attr in _SCALAR_ATTRS:
        if hasattr(estimator, attr):
            value = getattr(estimator, attr)
            fitted[attr] = value.item() if isinstance(value, np.generic) else value
    for attr in _ARRAY_ATTRS:
        if hasattr(estimator, attr):
            fitted[attr] = _encode_array(getattr(estimator, attr))
    for attr in _ARRAY_LIST_ATTRS:
        if hasattr(estimator, attr):
            fitted[attr] = [_encode_array(a) for a in getattr(estimator, attr)]
    if hasattr(estimator, "classes_"):
        c = estimator.classes_
        fitted["classes_"] = (
            [_encode_array(ci) for ci in c] if isinstance(c, list) else {"single": _encode_array(c)}
        )
    config = {"format": _FORMAT, "version": _VERSION, "estimator": name, "params": params, "fitted": fitted}
    state = {}
    for i, net in enumerate(estimator.nets_):
        prefix = _MEMBER_PREFIX.format(i) if i else ""
        state.update({prefix + k: v.detach().cpu().contiguous() for k, v in net.module_.state_dict().items()})
    # serialised in memory first, so a failed write never leaves half a file at `path`
    write_bytes_atomic(path, save(state, metadata={"skpercept": json.dumps(config)}))


def load_safe(path: str | os.PathLike, *, device: str = "cpu") -> Any:
    """Load a head saved by :func:`save_safe`; no code from the file is executed.

    Parameters
    ----------
    path : str or path-like
    device : str, default='cpu'
        Where to put the weights (``'cpu'``, ``'cuda'``, ``'auto'``). The estimator's
        ``device`` parameter keeps its saved value for later refits.

    Returns
    -------
    estimator : fitted RatingClassifier, RatingRegressor or PairwiseRanker

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skpercept.heads import PairwiseRanker
    >>> from skpercept.persistence import load_safe, save_safe
    >>> rng = np.random.default_rng(0)
    >>> items = rng.normal(size=(20, 3)).astype(np.float32)
    >>> a, b = rng.integers(0, 20, size=(2, 60))
    >>> X, y = np.hstack([items[a], items[b]]), (items[a, 0] > items[b, 0]).astype(np.float32)
    >>> ranker = PairwiseRanker(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "ranker.safetensors")
    ...     save_safe(ranker, path)
    ...     loaded = load_safe(path, device="cpu")
    >>> type(loaded).__name__, np.allclose(loaded.score_items(items), ranker.score_items(items))
    ('PairwiseRanker', True)
    """
    with safe_open(os.fspath(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "skpercept" not in metadata:
        raise ValueError(f"{os.fspath(path)!r} is not a skpercept safe file (no 'skpercept' metadata).")
    config = json.loads(metadata["skpercept"])
    if config.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r}: not a skpercept head file (format {config.get('format')!r}).")
    if config.get("version") != _VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} is in skpercept's safe format version {config.get('version')!r}; this "
            f"skpercept reads version {_VERSION}. Save the head again with this version."
        )
    # Only registered heads can be rebuilt: the name in the file selects one, never imports.
    name = config["estimator"]
    known = registered_estimators()
    if name not in known:
        raise ValueError(f"{os.fspath(path)!r} names an unknown estimator {name!r} (known: {sorted(known)}).")
    cls = known[name]

    params = dict(config["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    if isinstance(params.get("classes"), dict):
        c = params["classes"]
        params["classes"] = (
            [_decode_array(ci) for ci in c["values"]] if c["per_output"] else _decode_array(c["values"])
        )
    if "class_weight" in params:
        params["class_weight"] = _decode_class_weight(params["class_weight"])
    estimator = cls(**params)
    fitted = config["fitted"]
    for attr in _SCALAR_ATTRS:
        if attr in fitted:
            setattr(estimator, attr, fitted[attr])
    for attr in _ARRAY_ATTRS:
        if attr in fitted:
            setattr(estimator, attr, _decode_array(fitted[attr]))
    for attr in _ARRAY_LIST_ATTRS:
        if attr in fitted:
            setattr(estimator, attr, [_decode_array(a) for a in fitted[attr]])
    if "classes_" in fitted:
        c = fitted["classes_"]
        estimator.classes_ = (
            _decode_array(c["single"]) if isinstance(c, dict) else [_decode_array(ci) for ci in c]
        )

    # the weights stay on `target` until `device` is set again (set_params(device=...))
    target = loaded_device(estimator, resolve_device(device))
    state = load_file(os.fspath(path), device="cpu")
    estimator.nets_ = []
    for i in range(int(estimator.n_ensemble)):
        prefix = _MEMBER_PREFIX.format(i) if i else ""
        net = estimator._build_net(int(estimator.n_features_in_), None, [], device=target)
        net.initialize()
        members = tuple(_MEMBER_PREFIX.format(m) for m in range(1, int(estimator.n_ensemble)))
        own = {
            k[len(prefix) :]: v
            for k, v in state.items()
            if (k.startswith(prefix) if prefix else not k.startswith(members))
        }
        net.module_.load_state_dict(own)
        net.module_.to(target)
        net.module_.eval()
        estimator.nets_.append(net)
    estimator.net_ = estimator.nets_[0]
    return estimator


# -- whole models ---------------------------------------------------------------------------------
#: The safe format's file suffix.
SAFE_SUFFIX = ".skops"
_CHECKSUM_TAG = b"\nskpercept-sha256:"


class ModelFileError(ValueError):
    """A model file that cannot be loaded: damaged, changed since it was saved, or unsafe.

    Examples
    --------
    One changed byte in a saved pickle:

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.persistence import ModelFileError, load_model, save_model
    >>> X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40.0)
    >>> model = RatingRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "model.joblib"
    ...     save_model(model, path)
    ...     data = bytearray(path.read_bytes())
    ...     data[100] ^= 1
    ...     _ = path.write_bytes(bytes(data))
    ...     try:
    ...         load_model(path)
    ...     except ModelFileError as error:
    ...         message = str(error).removeprefix(f"{path}: ")
    >>> message
    'the content does not match its checksum; the file changed after it was saved (a damaged copy or an edit). Fit or copy it again.'
    >>> issubclass(ModelFileError, ValueError)
    True
    """


#: Other types a safe model file may name: paths (parameters such as ``cache_dir``), which are
#: rebuilt from their text and run nothing.
_PATH_TYPES = (pathlib.PosixPath, pathlib.PurePosixPath, pathlib.WindowsPath, pathlib.PureWindowsPath)


def trusted_types() -> list[str]:
    """The types beyond scikit-learn's that a safe model file may name: every estimator a
    skpercept subpackage exports, every registered head and backbone class, the tower
    description of the LoRA estimators, and pathlib's paths.

    Returns
    -------
    names : list of str
        Their dotted names (``module.QualifiedName``), sorted.

    Examples
    --------
    >>> from skpercept.persistence import trusted_types
    >>> names = trusted_types()
    >>> "skpercept.heads._ranking.PairwiseRanker" in names, "pathlib.PosixPath" in names
    (True, True)
    >>> "builtins.eval" in names
    False
    """
    classes: set[type] = {TowerSpec, *registered_estimators().values(), *_PATH_TYPES}
    classes |= {spec.estimator for spec in registered_backbones() if spec.estimator is not None}
    for name in skpercept.SUBPACKAGES:
        module = importlib.import_module(f"skpercept.{name}")
        for public in getattr(module, "__all__", []):
            obj = getattr(module, public)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                classes.add(obj)
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Save a fitted model (any estimator or Pipeline) atomically, in the format of the file name.

    ``*.skops`` gives the safe format; any other name a joblib pickle with a checksum (see the
    module docstring).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.persistence import load_model, save_model
    >>> X, y = np.random.RandomState(0).normal(size=(40, 3)), np.arange(40.0)
    >>> model = RatingRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> save_model(model, path)
    >>> np.allclose(load_model(path).predict(X), model.predict(X))
    True
    """
    if Path(path).suffix == SAFE_SUFFIX:
        write_bytes_atomic(path, skops_io.dumps(model))
        return
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    write_bytes_atomic(path, payload + _CHECKSUM_TAG + hashlib.sha256(payload).hexdigest().encode() + b"\n")


def load_model(path: str | os.PathLike) -> Any:
    """Load a model saved by :func:`save_model` (a safe file, or a checked joblib pickle).

    Parameters
    ----------
    path : str or path-like
        A ``*.skops`` file is read in the safe format (recognised by its content, whatever its
        name); any other file as a checked pickle: only load pickles you made or trust.

    Returns
    -------
    model : estimator or Pipeline
        The fitted model, as it was saved.

    Raises
    ------
    ModelFileError
        The file is damaged or truncated, changed since it was saved (the checksum does not
        match), has no checksum, or (a safe file) names a type skpercept does not load.
    SavedFormatError
        An estimator in the file was saved in another format version.

    Examples
    --------
    A whole Pipeline, in the safe format and as a checked pickle:

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.persistence import load_model, save_model
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 3)), rng.uniform(1, 4, 60)
    >>> head = RatingRegressor(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    >>> model = make_pipeline(StandardScaler(), head).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ("model.skops", "model.joblib"):
    ...         save_model(model, pathlib.Path(folder) / name)
    ...         loaded = load_model(pathlib.Path(folder) / name)
    ...         print(name, [step for step, _ in loaded.steps], np.allclose(loaded.predict(X), model.predict(X)))
    model.skops ['standardscaler', 'ratingregressor'] True
    model.joblib ['standardscaler', 'ratingregressor'] True
    """
    path = Path(path)
    data = check_input_file(path).read_bytes()
    if data[:4] == b"PK\x03\x04":  # a zip: the safe format
        return _load_safe_file(path, data)
    cut = data.rfind(_CHECKSUM_TAG)
    if cut < 0:
        raise ModelFileError(
            f"{path} has no skpercept checksum: it was not saved by save_model (or `skpercept fit`) of "
            "this version, or it was cut short. Save it again."
        )
    payload, digest = data[:cut], data[cut + len(_CHECKSUM_TAG) :].strip()
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ModelFileError(
            f"{path}: the content does not match its checksum; the file changed after it was saved "
            "(a damaged copy or an edit). Fit or copy it again."
        )
    try:
        return joblib.load(io.BytesIO(payload))
    except (SavedFormatError, ModuleNotFoundError):
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: the model file is damaged ({type(exc).__name__}: {exc}).") from exc


def _load_safe_file(path: Path, data: bytes) -> Any:
    try:
        named = skops_io.get_untrusted_types(data=data)
    except Exception as exc:  # zipfile / JSON errors: the file, not the program, is broken
        raise ModelFileError(
            f"{path}: the safe model file is damaged ({type(exc).__name__}: {exc})."
        ) from exc
    allowed = set(trusted_types())
    foreign = sorted(set(named) - allowed)
    if foreign:
        raise ModelFileError(
            f"{path} names types that skpercept does not load from a safe file: {foreign}. It was "
            "not written by skpercept, or it was altered; nothing in it was run."
        )
    try:
        return skops_io.loads(data, trusted=named)
    except SavedFormatError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{path}: the safe model file is damaged ({type(exc).__name__}: {exc})."
        ) from exc
