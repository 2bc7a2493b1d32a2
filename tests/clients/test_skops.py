"""skops: every estimator's file names only skpercept's own classes, loads with skops's
defaults once skpercept is imported, and a crafted file runs nothing."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skops.io as sio
from skops.io import _trusted_types
from skops.io.exceptions import UntrustedTypesFoundException

import skpercept
from skpercept._skops import TRUSTED_TYPES
from skpercept.embed import CLIPEmbedder
from skpercept.persistence import ModelFileError, load_model, save_model, trusted_types
from tests._images import register_tiny_clip
from tests.clients._models import fitted_models, images, lora_model, outputs


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return fitted_models(tmp_path_factory.mktemp("images"))


def _untrusted_by_skops_alone(data: bytes) -> list[str]:
    """What skops's own defaults (without skpercept's names) refuse in ``data``."""
    names = _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES
    saved = list(names)
    names[:] = [n for n in names if n not in TRUSTED_TYPES]
    try:
        return sio.get_untrusted_types(data=data)
    finally:
        names[:] = saved


def test_the_trusted_list_is_every_class_skpercept_saves():
    assert sorted(TRUSTED_TYPES) == trusted_types()


@pytest.mark.parametrize(
    "name",
    [
        "RatingClassifier",
        "RatingRegressor",
        "PairwiseRanker",
        "JointRatingRanker",
        "pair Pipeline",
        "personal Pipeline",
        "TimmEmbedder(bundle_weights=True)",
    ],
)
def test_files_name_only_skpercepts_classes_and_load_with_skops_defaults(models, name):
    model, X = models[name]
    data = sio.dumps(model)
    named = _untrusted_by_skops_alone(data)
    assert named and set(named) <= set(TRUSTED_TYPES), named
    loaded = sio.loads(data)  # skops's defaults: skpercept is imported
    for a, b in zip(outputs(loaded, X), outputs(model, X)):
        np.testing.assert_array_equal(a, b)


def test_lora_and_random_clip_save_and_load(tmp_path):
    pytest.importorskip("peft")
    model, X = lora_model(tmp_path / "lora")
    data = sio.dumps(model)
    assert set(_untrusted_by_skops_alone(data)) <= set(TRUSTED_TYPES)
    np.testing.assert_array_equal(sio.loads(data).predict_proba(X), model.predict_proba(X))

    paths = images(tmp_path / "clip")
    clip = CLIPEmbedder(model_name=register_tiny_clip(tmp_path / "config"), pretrained=None, device="cpu")
    clip.fit(paths)
    data = sio.dumps(clip)
    assert set(_untrusted_by_skops_alone(data)) <= set(TRUSTED_TYPES)
    np.testing.assert_array_equal(sio.loads(data).transform(paths), clip.transform(paths))


def test_contrastive_embedder_search_and_small_transformers(tmp_path):
    pytest.importorskip("peft")
    import optuna
    import pandas as pd

    from skpercept.model_selection import PerceptSearchCV
    from skpercept.personal import UserEncoder
    from skpercept.preprocessing import BlockScaler
    from tests.finetune.test_contrastive import _embedder as contrastive_embedder
    from tests.model_selection._tune_heads import make_data, make_head

    paths = images(tmp_path)
    contrastive = contrastive_embedder(max_epochs=1, train_batch_size=4, random_state=0).fit(paths)
    X, y = make_data(n=40)
    space = {"lr": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True), "dropout": [0.0, 0.2]}
    search = PerceptSearchCV(make_head(max_epochs=2), space, cv=2, n_trials=3, random_state=0).fit(X, y)
    people = pd.DataFrame({"user_id": ["ann", "bob", "ann"]})
    cases = [
        (contrastive, paths, "transform"),
        (search, X, "predict_proba"),
        (BlockScaler().fit(X), X, "transform"),
        (UserEncoder().fit(people), people, "transform"),
    ]
    for model, data, method in cases:
        saved = sio.dumps(model)
        assert set(_untrusted_by_skops_alone(saved)) <= set(TRUSTED_TYPES), type(model).__name__
        loaded = sio.loads(saved)
        np.testing.assert_array_equal(getattr(loaded, method)(data), getattr(model, method)(data))
    loaded = sio.loads(sio.dumps(search))
    assert loaded.best_params_ == search.best_params_ and loaded.get_params()["param_distributions"] == space
    assert [t.params for t in loaded.study_.trials] == [t.params for t in search.study_.trials]
    assert [t.intermediate_values for t in loaded.study_.trials] == [
        t.intermediate_values for t in search.study_.trials
    ]
    assert repr(loaded.study_.pruner).startswith("FoldLocalPruner(") and loaded.catch == (Exception,)


def _with_extra_attribute(data: bytes, name: str, node: dict) -> bytes:
    """``data`` (a skops file of an estimator) with one more attribute, written as ``node``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    schema["content"]["content"][name] = node
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, content in files.items():
            zf.writestr(n, content)
    return out.getvalue()


def test_a_crafted_file_runs_nothing(models, tmp_path):
    model, _ = models["PairwiseRanker"]
    marker = tmp_path / "ran"
    # what skops writes for functools.partial(os.system, "touch <marker>"): a call at load time
    call = sio.dumps(functools.partial(os.system, f"touch {marker}"))
    with zipfile.ZipFile(io.BytesIO(call)) as zf:
        node = json.loads(zf.read("schema.json"))
    data = _with_extra_attribute(sio.dumps(model), "evil_", node)
    named = sio.get_untrusted_types(data=data)
    assert "functools.partial" in named and "skpercept.heads._ranking.PairwiseRanker" not in named
    with pytest.raises(UntrustedTypesFoundException, match="functools.partial"):
        sio.loads(data)
    path = tmp_path / "crafted.skops"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match="functools.partial"):
        load_model(path)
    assert not marker.exists()


def test_skpercept_files_in_a_process_without_skpercept_name_only_its_classes(models, tmp_path):
    model, _ = models["personal Pipeline"]
    save_model(model, tmp_path / "m.skops")
    code = (
        "import skops.io, json, sys; "
        "print(json.dumps(skops.io.get_untrusted_types(file=sys.argv[1]))); "
        "print('skpercept' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.skops")], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert set(json.loads(out[0])) <= set(TRUSTED_TYPES) and json.loads(out[0])
    assert out[1] == "False"


def test_importing_skpercept_does_not_import_skops():
    code = "import skpercept, sys; print('skops' in sys.modules, skpercept.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False")
    assert skpercept.__version__ in out
