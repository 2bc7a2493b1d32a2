"""Embedders: inputs, bad images, persistence, sklearn composition, CLIP text, real weights."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skpercept.embed import BadImageWarning, CLIPEmbedder, ImageLoadError, TimmEmbedder
from skpercept.embed.towers import SHIPPED_LITE0, shipped_weights_path
from tests._images import BAD_KINDS, GOOD_KINDS, TINY_TIMM, make_zoo, photo, register_tiny_clip


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return make_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return register_tiny_clip(tmp_path_factory.mktemp("clip_cfg"))


def timm_embedder(**params):
    defaults = dict(model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=4, num_workers=2)
    return TimmEmbedder(**{**defaults, **params})


def clip_embedder(name, **params):
    defaults = dict(model_name=name, pretrained=None, device="cpu", batch_size=4, num_workers=2)
    return CLIPEmbedder(**{**defaults, **params})


@pytest.fixture(scope="module")
def fitted_timm(zoo):
    return timm_embedder().fit([str(zoo["good"])])


# -- inputs ---------------------------------------------------------------------------------
def test_init_only_stores_and_fit_builds():
    emb = timm_embedder(model_name="no-such-model")
    assert "_model" not in vars(emb)
    with pytest.raises(ValueError, match="no-such-model"):
        emb.fit([photo(0)])


def test_paths_pil_arrays_agree(fitted_timm, zoo):
    rgb = np.asarray(Image.open(zoo["good2"]))
    out = fitted_timm.transform([str(zoo["good2"]), Image.fromarray(rgb), rgb])
    assert out.shape == (3, 256) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    stack = np.stack([rgb, rgb])
    np.testing.assert_allclose(fitted_timm.transform(stack), out[:2], atol=1e-6)


def test_image_root_series_and_batching_are_consistent(zoo):
    names = [zoo[k].name for k in GOOD_KINDS]
    emb = timm_embedder(image_root=zoo["good"].parent, batch_size=3, num_workers=0).fit(names)
    out = emb.transform(pd.Series(names))
    assert out.shape == (len(names), 256) and np.isfinite(out).all()
    threaded = timm_embedder(image_root=zoo["good"].parent, batch_size=8).fit(names)
    np.testing.assert_allclose(threaded.transform(names), out, atol=1e-5)
    np.testing.assert_allclose(emb.transform(names[::-1]), out[::-1], atol=1e-6)


def test_numeric_and_single_inputs_are_refused(fitted_timm, zoo):
    with pytest.raises(ValueError, match="numeric array"):
        timm_embedder().fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="wrap it in a list"):
        fitted_timm.transform(str(zoo["good"]))
    with pytest.raises(ValueError, match="0 sample"):
        fitted_timm.transform([])
    with pytest.raises(ValueError, match="features"):
        fitted_timm.transform([[str(zoo["good"]), str(zoo["good"])]])
    with pytest.raises(TypeError, match="sparse input is not supported"):
        timm_embedder().fit(scipy.sparse.csr_array(np.eye(3)))


def test_invalid_parameters(fitted_timm):
    for name, bad in (
        ("batch_size", 0),
        ("batch_size", "big"),
        ("num_workers", -1),
        ("precision", "fp8"),
        ("on_error", "skip"),
        ("bundle_weights", "yes"),
        ("crop_pct", 0.0),
        ("random_state", -1),
    ):
        message = f"The '{name}' parameter of TimmEmbedder must be"
        with pytest.raises(ValueError, match=message):
            timm_embedder(**{name: bad}).fit([photo(0)])
        # Settings that need no refit (batch size, on_error, ...) are checked again at transform.
        with pytest.raises(ValueError, match=message):
            clone(fitted_timm).fit([photo(0)]).set_params(**{name: bad}).transform([photo(0)])
    # A cross-parameter check the declarative constraints cannot express.
    with pytest.raises(ValueError, match="fp16"):
        timm_embedder(precision="fp16").fit_transform([photo(0)])


def test_auto_batch_size_follows_the_device():
    images = [photo(seed) for seed in range(10)]
    auto = timm_embedder(batch_size="auto").fit(images)
    fixed = timm_embedder(batch_size=3).fit(images)
    np.testing.assert_allclose(auto.transform(images), fixed.transform(images), atol=1e-5)
    assert auto._batch_size() == 4  # timm on the CPU, once the model is there
    assert fixed._batch_size() == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        timm_embedder(device="cuda").fit([photo(0)])


# -- bad images -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_image_raises_with_file_row_and_column(fitted_timm, zoo, kind):
    frame = pd.DataFrame({"image_a": [str(zoo["good"])] * 2, "image_b": [str(zoo["good2"]), str(zoo[kind])]})
    emb = timm_embedder().fit(frame)
    with pytest.raises(ImageLoadError, match=r"row 1, column 'image_b'") as info:
        emb.transform(frame)
    assert zoo[kind].name in str(info.value)


def test_bad_images_become_nan_rows_in_place(zoo):
    kinds = ["good", *BAD_KINDS, *GOOD_KINDS[1:], None]
    sources = [str(zoo[k]) if k else None for k in kinds]
    emb = timm_embedder(on_error="nan").fit(sources)
    with pytest.warns(BadImageWarning) as record:
        out = emb.transform(sources)
    message = str(record[0].message)
    assert all(zoo[k].name in message for k in BAD_KINDS) and "NoneType" in message
    bad_rows = [i for i, k in enumerate(kinds) if k is None or k in BAD_KINDS]
    assert np.isnan(out[bad_rows]).all()
    good_rows = [i for i in range(len(kinds)) if i not in bad_rows]
    assert np.isfinite(out[good_rows]).all()
    alone = emb.transform([s for i, s in enumerate(sources) if i in good_rows])
    np.testing.assert_allclose(out[good_rows], alone, atol=1e-6)


def test_bad_image_nan_with_cache(zoo, tmp_path):
    emb = timm_embedder(on_error="nan", cache_dir=tmp_path).fit([photo(0)])
    with pytest.warns(BadImageWarning):
        out = emb.transform([str(zoo["missing"]), str(zoo["good"]), str(zoo["corrupt"])])
    assert np.isnan(out[[0, 2]]).all() and np.isfinite(out[1]).all()
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        emb.set_params(on_error="raise").transform([str(zoo["good"]), str(zoo["missing"])])


# -- options --------------------------------------------------------------------------------
def test_tta_averages_image_and_mirror():
    image = photo(3, size=(160, 160))
    emb = timm_embedder(normalize=False).fit([image])
    plain, mirrored = emb.transform([image, image[:, ::-1].copy()])
    tta = emb.set_params(tta=True).transform([image])[0]
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, atol=1e-4)
    assert not np.allclose(tta, plain, atol=1e-4)


def test_bf16_on_cpu_is_close_to_fp32(fitted_timm, zoo):
    sources = [str(zoo[k]) for k in GOOD_KINDS[:3]]
    full = fitted_timm.transform(sources)
    half = clone(fitted_timm).set_params(precision="bf16").fit(sources).transform(sources)
    cosine = (full * half).sum(axis=1)
    assert half.dtype == np.float32 and (cosine > 0.98).all()


def test_duplicates_are_embedded_once_and_agree(fitted_timm, zoo, monkeypatch):
    seen = []
    original = TimmEmbedder._forward
    monkeypatch.setattr(
        TimmEmbedder, "_forward", lambda self, m, b: seen.append(len(b)) or original(self, m, b)
    )
    out = fitted_timm.transform([str(zoo["good"]), str(zoo["good2"]), str(zoo["good"])])
    assert sum(seen) == 2
    np.testing.assert_array_equal(out[0], out[2])


def test_progress_bar(fitted_timm, zoo, capsys):
    fitted_timm.set_params(progress=True).transform([str(zoo["good"])])
    fitted_timm.set_params(progress=False)
    assert "TimmEmbedder" in capsys.readouterr().err


# -- pandas, pipelines ----------------------------------------------------------------------
def test_dataframe_columns_feature_names_and_pandas_output(zoo):
    frame = pd.DataFrame(
        {"image_a": [str(zoo["good"]), str(zoo["good2"])], "image_b": [str(zoo["good2"]), str(zoo["cmyk"])]},
        index=[10, 11],
    )
    emb = timm_embedder().set_output(transform="pandas").fit(frame)
    out = emb.transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.index) == [10, 11]
    assert list(out.columns[:2]) == ["image_a_0", "image_a_1"]
    assert list(out.columns[256:258]) == ["image_b_0", "image_b_1"]
    np.testing.assert_allclose(out.iloc[0, 256:], out.iloc[1, :256], atol=1e-6)
    single = timm_embedder().fit([photo(0)])
    assert single.get_feature_names_out()[:2].tolist() == ["timmembedder0", "timmembedder1"]
    with pytest.raises(ValueError):
        emb.transform(frame.rename(columns={"image_b": "other"}))


def test_pipeline_columntransformer_and_gridsearch_over_model_name(zoo, tiny_clip):
    paths = [str(zoo[k]) for k in GOOD_KINDS]
    frame = pd.DataFrame({"image_a": paths, "image_b": paths[::-1]})
    y = np.linspace(0, 1, len(paths))
    columns = ColumnTransformer(
        [("a", timm_embedder(), ["image_a"]), ("b", clip_embedder(tiny_clip), ["image_b"])]
    )
    model = Pipeline([("embed", columns), ("ridge", Ridge())]).fit(frame, y)
    assert model.predict(frame).shape == (len(paths),)
    assert model[:-1].transform(frame).shape == (len(paths), 256 + 16)
    search = GridSearchCV(
        Pipeline([("embed", timm_embedder()), ("ridge", Ridge())]),
        {"embed__model_name": [TINY_TIMM, "test_resnet"]},
        cv=2,
    )
    search.fit(pd.Series(paths), y)
    assert search.best_params_["embed__model_name"] in (TINY_TIMM, "test_resnet")


# -- persistence ----------------------------------------------------------------------------
def test_changing_the_model_after_fit_requires_refit(zoo):
    emb = timm_embedder().fit([photo(0)])
    with pytest.raises(ValueError, match="call fit again"):
        clone(emb).fit([photo(0)]).set_params(model_name="test_resnet").transform([photo(0)])
    emb.set_params(device="cpu", batch_size=1, tta=True).transform([photo(0)])  # no refit needed


def test_clone_is_unfitted_with_same_params(fitted_timm):
    copy = clone(fitted_timm)
    assert copy.get_params() == fitted_timm.get_params()
    assert not hasattr(copy, "weights_id_") and "_model" not in vars(copy)


@pytest.mark.parametrize("bundle", ["auto", True, False])
def test_pickle_and_joblib_round_trip(zoo, tmp_path, bundle):
    sources = [str(zoo["good"]), str(zoo["rgba"])]
    emb = timm_embedder(bundle_weights=bundle).fit(sources)
    expected = emb.transform(sources)
    joblib.dump(emb, tmp_path / "emb.joblib")
    loaded = joblib.load(tmp_path / "emb.joblib")
    assert "_model" not in vars(loaded)  # rebuilt lazily, not while unpickling
    np.testing.assert_array_equal(loaded.transform(sources), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).transform(sources), expected)


def test_local_weights_reference_checks_the_file(zoo, tmp_path):
    import timm

    torch.manual_seed(5)
    path = tmp_path / "weights.pt"
    torch.save(timm.create_model(TINY_TIMM, num_classes=0).state_dict(), path)
    sources = [str(zoo["good"])]
    emb = timm_embedder(pretrained=str(path), bundle_weights=False).fit(sources)
    bundled = timm_embedder(pretrained=str(path), bundle_weights=True).fit(sources)
    expected = emb.transform(sources)
    np.testing.assert_array_equal(bundled.transform(sources), expected)
    assert not np.allclose(timm_embedder().fit(sources).transform(sources), expected)
    small, large = pickle.dumps(emb), pickle.dumps(bundled)
    assert len(small) < 5_000 < len(large)
    np.testing.assert_array_equal(pickle.loads(small).transform(sources), expected)
    torch.manual_seed(6)
    torch.save(timm.create_model(TINY_TIMM, num_classes=0).state_dict(), path)
    with pytest.raises(ValueError, match="changed since it was fitted"):
        pickle.loads(small).transform(sources)
    path.unlink()
    np.testing.assert_array_equal(pickle.loads(large).transform(sources), expected)
    with pytest.raises(FileNotFoundError, match="weights.pt"):
        pickle.loads(small).transform(sources)


def test_shipped_weights_pickle_is_a_reference(zoo):
    emb = TimmEmbedder(device="cpu", num_workers=0).fit([str(zoo["good"])])
    assert emb.embedding_dim_ == 1280 and len(pickle.dumps(emb)) < 5_000
    lite2 = TimmEmbedder(model_name="efficientnet_lite2", device="cpu", num_workers=0)
    expected = lite2.fit_transform([str(zoo["good"])])
    assert expected.shape == (1, 1280) and len(pickle.dumps(lite2)) < 5_000
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(lite2)).transform([str(zoo["good"])]), expected, atol=1e-6
    )
    with pytest.raises(ValueError, match="No shipped weights for 'resnet18'"):
        shipped_weights_path("resnet18")
    with pytest.raises(
        ValueError, match="only has weights for 'efficientnet_lite0' and 'efficientnet_lite2'"
    ):
        TimmEmbedder(model_name=TINY_TIMM, device="cpu").fit([photo(0)])
    with pytest.raises(
        ValueError, match="only has weights for 'efficientnet_lite0', not 'efficientnet_lite2'"
    ):
        TimmEmbedder(model_name="efficientnet_lite2", pretrained=SHIPPED_LITE0, device="cpu").fit([photo(0)])


# -- CLIP -----------------------------------------------------------------------------------
def test_clip_images_text_and_local_checkpoint(zoo, tiny_clip, tmp_path):
    import open_clip

    sources = [str(zoo["good"]), str(zoo["palette"])]
    emb = clip_embedder(tiny_clip, random_state=3).fit(sources)
    images = emb.transform(sources)
    text = emb.embed_text(["a face", "a smiling face", "a cat"])
    assert images.shape == (2, 16) and text.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(text[0], text[2])
    tokenizer = open_clip.get_tokenizer(tiny_clip)
    with torch.inference_mode():
        direct = emb._model.encode_text(tokenizer(["a cat"])).numpy()[0]
    np.testing.assert_allclose(text[2], direct / np.linalg.norm(direct), atol=1e-5)

    torch.manual_seed(3)
    path = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model(tiny_clip).state_dict(), path)
    from_file = clip_embedder(tiny_clip, pretrained=str(path), bundle_weights=False).fit(sources)
    np.testing.assert_allclose(from_file.transform(sources), images, atol=1e-6)
    reloaded = pickle.loads(pickle.dumps(from_file))
    np.testing.assert_allclose(reloaded.embed_text(["a cat"]), text[2:], atol=1e-6)
    with pytest.raises(ValueError, match="no pretrained tag"):
        clip_embedder(tiny_clip, pretrained="no-such-tag").fit(sources)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        clip_embedder(tiny_clip, pretrained=str(tmp_path / "nope.pt")).fit(sources)


# -- real shipped weights -------------------------------------------------------------------
@pytest.mark.parametrize("model_name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_shipped_weights_are_real_imagenet_weights(model_name):
    """The shipped weights classify real photos into sensible ImageNet classes."""
    import matplotlib.cbook
    import timm

    from skpercept.embed.towers import SHIPPED_WEIGHTS, load_shipped_weights

    pytest.importorskip(SHIPPED_WEIGHTS[model_name][1])

    photos = {
        "grace_hopper": (
            np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))),
            {457, 400, 652, 834, 906},
        )
    }  # bow tie, gown, uniform, suit, tie
    try:
        import skimage.data

        photos["chelsea"] = (skimage.data.chelsea(), {281, 282, 285})  # tabby, tiger, Egyptian cat
    except ImportError:
        warnings.warn("scikit-image not installed: only the Grace Hopper photo is checked", stacklevel=2)
    classifier = timm.create_model(model_name).eval()
    load_shipped_weights(classifier, name=model_name)
    emb = TimmEmbedder(model_name=model_name, device="cpu", normalize=False, num_workers=0)
    features = emb.fit_transform([image for image, _ in photos.values()])
    assert features.shape == (len(photos), 1280)
    with torch.inference_mode():
        logits = classifier.get_classifier()(torch.from_numpy(features))
    probabilities = logits.softmax(-1)
    for (name, (_, sensible)), p in zip(photos.items(), probabilities):
        top = int(p.argmax())
        assert top in sensible, f"{name}: top class {top}"
        assert float(p[top]) > 0.2, f"{name}: top probability {float(p[top]):.3f}"


def test_crop_pct_keeps_the_whole_frame_and_changes_the_cache_key(tmp_path):
    image = [photo(seed=3, size=(96, 64))]
    common = dict(model_name=TINY_TIMM, pretrained=None, device="cpu", num_workers=0, cache_dir=tmp_path)
    cropped = TimmEmbedder(**common).fit(image)
    full = TimmEmbedder(crop_pct=1.0, **common).fit(image)
    first = cropped.transform(image)  # fills the cache
    # A cache keyed without the preprocessing would hand the cropped vector back here.
    assert not np.allclose(full.transform(image), first)
    np.testing.assert_allclose(cropped.transform(image), first)
    with pytest.raises(ValueError, match="crop_pct"):
        TimmEmbedder(crop_pct=1.5, **common).fit(image)
