"""LayoutEmbedder: the default grouping descriptor of photo collections."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image, ImageFilter

from skpercept.datasets import load_omi
from skpercept.embed import BadImageWarning, ImageLoadError, LayoutEmbedder
from skpercept.metrics import grouping_ari
from skpercept.photos import grouping_embeddings, rank_photos


def versions(face: Image.Image, seed: int) -> dict[str, Image.Image]:
    """Four near-duplicates of one face: shifted windows, blurred, noisy, over-exposed."""
    rng = np.random.default_rng(seed)

    def window():
        left, top = (int(v) for v in rng.integers(0, 17, 2))
        return face.crop((left, top, left + 240, top + 240))

    pixels = np.asarray(window(), dtype=np.float64)
    return {
        "clean": window(),
        "blur": window().filter(ImageFilter.GaussianBlur(2.5)),
        "noise": Image.fromarray(np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)),
        "bright": Image.fromarray(np.clip(np.asarray(window(), np.float64) * 1.8, 0, 255).astype(np.uint8)),
    }


@pytest.fixture(scope="module")
def face_series(tmp_path_factory):
    """Five real OMI faces x four degraded versions, as JPEG files in one folder per face."""
    root = tmp_path_factory.mktemp("series")
    faces = load_omi().means["image"].to_numpy()[[3, 150, 400, 700, 900]]
    for f, path in enumerate(faces):
        (root / f"face{f}").mkdir()
        for kind, image in versions(Image.open(path).convert("RGB"), f).items():
            image.save(root / f"face{f}" / f"{kind}.jpg", quality=90)
    return root


def test_rank_groups_degraded_versions_of_real_faces_by_face(face_series):
    table = rank_photos(face_series, device="cpu")
    faces = table["path"].str.split("/").str[0]
    assert table["group"].nunique() == 5
    assert grouping_ari(faces, table["group"]) == 1.0


def test_layout_separates_faces_that_the_pooled_embedding_confuses(face_series):
    paths = sorted(str(p) for p in face_series.rglob("*.jpg"))
    faces = np.array([p.split("/")[-2] for p in paths])
    Z = grouping_embeddings(paths, LayoutEmbedder(device="cpu"))
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    similarity = Z @ Z.T
    same = faces[:, None] == faces[None, :]
    np.fill_diagonal(same, False)
    different = faces[:, None] != faces[None, :]
    # every version is closer to each version of its own face than to any other face
    assert similarity[same].min() > similarity[different].max()


def test_shape_names_and_unit_parts():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 80, 96, 3), dtype=np.uint8)
    params = {"pretrained": None, "side": 64, "grid": 2, "device": "cpu", "normalize": False}
    embedder = LayoutEmbedder(thumbnail=4, **params).fit(images)
    Z = embedder.transform(images)
    assert embedder.embedding_dim_ == 112 * 4 + 16
    assert Z.shape == (4, 112 * 4 + 16) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z[:, :448], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(Z[:, 448:], axis=1), 1.0, rtol=1e-5)
    assert list(embedder.get_feature_names_out()[:2]) == ["layoutembedder0", "layoutembedder1"]
    no_thumbnail = LayoutEmbedder(thumbnail=0, **params).fit(images)
    np.testing.assert_allclose(no_thumbnail.transform(images), Z[:, :448], atol=1e-6)
    # the thumbnail: box averages of the grey image, minus their mean, unit length
    grey = np.asarray(
        [np.asarray(Image.fromarray(i).resize((64, 64), Image.BILINEAR).convert("L"), float) for i in images]
    )
    boxes = grey.reshape(4, 4, 16, 4, 16).mean(axis=(2, 4)).reshape(4, 16)
    boxes -= boxes.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(Z[:, 448:], boxes / np.linalg.norm(boxes, axis=1, keepdims=True), atol=0.02)
    # exposure and contrast: an affine change of grey levels (no clipping) keeps the thumbnail part
    smooth = np.stack(
        [np.asarray(Image.fromarray(image[:4, :4]).resize((96, 80), Image.BILINEAR)) for image in images]
    )
    dimmer = (smooth.astype(np.float64) * 0.5 + 60).round().astype(np.uint8)
    np.testing.assert_allclose(
        embedder.transform(dimmer)[:, 448:], embedder.transform(smooth)[:, 448:], atol=0.03
    )
    # by default the whole vector is unit length, the two parts equally weighted
    default = LayoutEmbedder(pretrained=None, side=64, grid=2, thumbnail=4, device="cpu").fit_transform(
        images
    )
    np.testing.assert_allclose(default, Z / np.sqrt(2), atol=1e-5)


def test_cache_key_follows_the_layout_parameters(tmp_path):
    images = [np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    params = {"pretrained": None, "side": 64, "device": "cpu", "cache_dir": tmp_path}
    first = LayoutEmbedder(grid=2, **params).fit_transform(images)
    assert LayoutEmbedder(grid=2, **params).fit_transform(images).shape == first.shape
    other = LayoutEmbedder(grid=3, **params).fit_transform(images)  # a hit would have the old width
    assert other.shape == (1, 112 * 9 + 64)


def test_refit_after_set_params_rebuilds_the_network():
    images = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    embedder = LayoutEmbedder(pretrained=None, side=64, grid=2, device="cpu").fit(images)
    assert embedder.transform(images).shape == (2, 112 * 4 + 64)
    embedder.set_params(stage=2).fit(images)
    assert embedder.embedding_dim_ == 40 * 4 + 64 and embedder.transform(images).shape == (2, 40 * 4 + 64)


def test_pickle_round_trip_rebuilds_the_network():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    embedder = LayoutEmbedder(pretrained=None, side=64, device="cpu").fit(images)
    before = embedder.transform(images)
    restored = pickle.loads(pickle.dumps(embedder))
    assert "_model" not in restored.__dict__
    np.testing.assert_array_equal(restored.transform(images), before)


def test_bad_images_raise_naming_the_row_or_give_nan(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    embedder = LayoutEmbedder(pretrained=None, side=64, device="cpu").fit([str(good)])
    with pytest.raises(ImageLoadError, match=r"bad.jpg.*\(row 1\)"):
        embedder.transform([str(good), str(bad)])
    with pytest.warns(BadImageWarning, match="bad.jpg"):
        Z = embedder.set_params(on_error="nan").transform([str(good), str(bad), str(good)])
    assert np.isfinite(Z[[0, 2]]).all() and np.isnan(Z[1]).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grid": 0}, "'grid' parameter"),
        ({"side": 8}, "'side' parameter"),
        ({"stage": 9}, "stage must be below 5"),
        ({"thumbnail_weight": -1}, "'thumbnail_weight' parameter"),
        ({"on_error": "skip"}, "'on_error' parameter"),
        ({"model_name": "no_such_model"}, "Unknown timm model_name"),
    ],
)
def test_parameter_errors(params, message):
    with pytest.raises(ValueError, match=message):
        LayoutEmbedder(pretrained=None, device="cpu", **params).fit([np.zeros((32, 32, 3), np.uint8)])
