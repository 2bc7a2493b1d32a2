"""The embedders' own contract, checked with images.

scikit-learn's common checks (tests/test_common.py) feed numeric tables, which image
embedders refuse, so most of them are excused there. This file checks the same properties
with what embedders take: image files, in-memory PIL images and ``H x W x C`` arrays. As in
imbalanced-learn's ``_yield_sampler_checks``, a generator yields the check functions and each
runs on every embedder (the tiny timm and open_clip configs, and dlib's descriptor when the
``[face]`` extra is installed) with every kind of input.
"""

from __future__ import annotations

import importlib.util
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_param_validation
from sklearn.utils.validation import check_is_fitted

from skpercept.embed import CLIPEmbedder, DlibFaceEmbedder, LayoutEmbedder, NoFaceWarning, TimmEmbedder
from skpercept.finetune import ContrastiveEmbedder
from tests._images import TINY_TIMM, photo, register_tiny_clip

_TINY_CLIP = register_tiny_clip(Path(tempfile.mkdtemp(prefix="skpercept-clip-")))
_OMI_IMAGES = Path(__file__).resolve().parents[2] / "skpercept" / "datasets" / "data" / "omi" / "images"
HAS_DLIB = all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))

# Ways to make each embedder, and the input kinds each is fed. dlib's descriptor network costs
# far more per image than the tiny test towers, so dlib gets one input per kind in one call
# ('mixed': a file, a PIL image and an array) instead of a call per kind.
EMBEDDERS: dict[str, Callable] = {
    "TimmEmbedder": lambda: TimmEmbedder(
        model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=3, num_workers=2
    ),
    "CLIPEmbedder": lambda: CLIPEmbedder(
        model_name=_TINY_CLIP, pretrained=None, device="cpu", batch_size=3, num_workers=2
    ),
    "DlibFaceEmbedder": lambda: DlibFaceEmbedder(num_workers=2),
    "LayoutEmbedder": lambda: LayoutEmbedder(
        pretrained=None, side=32, device="cpu", batch_size=3, num_workers=2
    ),
    "ContrastiveEmbedder": lambda: ContrastiveEmbedder(
        model_name=f"timm:{TINY_TIMM}",
        pretrained=None,
        image_size=32,
        max_epochs=1,
        early_stopping=False,
        device="cpu",
        batch_size=3,
        num_workers=2,
    ),
}
#: Embedders whose ``fit`` learns from the images (the others only build their network).
LEARNING = {"ContrastiveEmbedder"}
KINDS = {
    "TimmEmbedder": ("paths", "pil", "arrays"),
    "CLIPEmbedder": ("paths", "pil", "arrays"),
    "DlibFaceEmbedder": ("mixed",),
    "LayoutEmbedder": ("paths", "pil", "arrays"),
    "ContrastiveEmbedder": ("paths", "pil", "arrays"),
}


def _pixels(name: str) -> list[np.ndarray]:
    """RGB images of different sizes: smooth synthetic photos, or real OMI faces for dlib."""
    if name == "DlibFaceEmbedder":
        return [np.asarray(Image.open(_OMI_IMAGES / f"{i}.jpg").convert("RGB")) for i in (1, 2, 3)]
    return [photo(seed, size=(40 + 8 * seed, 32 + 6 * seed)) for seed in range(5)]


def make_images(name: str, kind: str, folder: Path) -> list:
    """The images as the given kind of source.

    'arrays' are read-only, and one is Fortran-ordered: embedders must neither write into
    the caller's arrays nor assume a memory layout.
    """
    sources = []
    for i, pixels in enumerate(_pixels(name)):
        as_kind = kind if kind != "mixed" else ("paths", "pil", "arrays")[i % 3]
        if as_kind == "paths":
            path = folder / f"image_{i}.png"
            Image.fromarray(pixels).save(path)
            sources.append(str(path))
        elif as_kind == "pil":
            sources.append(Image.fromarray(pixels))
        else:
            array = np.asfortranarray(pixels) if i == 1 else pixels.copy()
            array.setflags(write=False)
            sources.append(array)
    return sources


def _take(images: list, rows) -> list:
    return [images[i] for i in rows]


def _object_column(images: list) -> np.ndarray:
    column = np.empty(len(images), dtype=object)
    for i, image in enumerate(images):
        column[i] = image
    return column


# -- the checks --------------------------------------------------------------------------------
def check_clone(embedder, images, tmp_path):
    """clone copies the parameters and nothing fitted, from a fitted embedder too."""
    copy = clone(embedder)
    assert copy.get_params() == embedder.get_params()
    fitted = clone(embedder).fit(images)
    for unfitted in (copy, clone(fitted)):
        assert unfitted.get_params() == embedder.get_params()
        with pytest.raises(NotFittedError):
            check_is_fitted(unfitted)
        assert "_model" not in vars(unfitted)


def check_fit_returns_self(embedder, images, tmp_path):
    """fit returns the embedder itself, with or without a (ignored) y."""
    assert embedder.fit(images) is embedder
    assert embedder.fit(images, np.arange(len(images))) is embedder


def check_fit_sets_only_fitted_attributes(embedder, images, tmp_path):
    """fit leaves the parameters as they were and adds only ``*_`` / private attributes."""
    params = embedder.get_params()
    before = set(vars(embedder))
    with pytest.raises(NotFittedError):
        check_is_fitted(embedder)
    embedder.fit(images)
    check_is_fitted(embedder)
    assert embedder.get_params() == params
    added = set(vars(embedder)) - before
    assert added and all(a.endswith("_") or a.startswith("_") for a in added), sorted(added)


def check_fit_idempotent(embedder, images, tmp_path):
    """Fitting again on the same images does not change what transform gives; nor, for an
    embedder that learns nothing from them, does fitting on other images."""
    first = embedder.fit(images).transform(images)
    np.testing.assert_array_equal(embedder.fit(images).transform(images), first)
    if type(embedder).__name__ not in LEARNING:
        np.testing.assert_array_equal(embedder.fit(images[:1]).transform(images), first)


def check_transform_deterministic(embedder, images, tmp_path):
    """transform gives the same output twice and leaves the fitted embedder as it was."""
    embedder.fit(images)
    first = embedder.transform(images)
    state = dict(vars(embedder))
    np.testing.assert_array_equal(embedder.transform(images), first)
    assert vars(embedder).keys() == state.keys()
    assert all(vars(embedder)[k] is v for k, v in state.items())


def check_fit_transform(embedder, images, tmp_path):
    """fit_transform equals fit then transform."""
    np.testing.assert_array_equal(
        clone(embedder).fit_transform(images), embedder.fit(images).transform(images)
    )


def check_float32_output(embedder, images, tmp_path):
    """One C-contiguous float32 row per image, ``embedding_dim_`` wide, finite, unit length."""
    out = embedder.fit(images).transform(images)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out.shape == (len(images), embedder.embedding_dim_)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def check_one_image(embedder, images, tmp_path):
    """A single image (one sample) is embedded like the same image among others (fitted on
    that one image, unless the embedder learns by contrasting images)."""
    alone = embedder.fit(images if type(embedder).__name__ in LEARNING else images[:1]).transform(images[:1])
    assert alone.shape == (1, embedder.embedding_dim_)
    np.testing.assert_allclose(alone[0], embedder.transform(images)[0], rtol=1e-5, atol=1e-6)


def check_n_features_in(embedder, images, tmp_path):
    """``n_features_in_`` counts image columns; ``feature_names_in_`` names a DataFrame's."""
    embedder.fit(images)
    assert embedder.n_features_in_ == 1 and not hasattr(embedder, "feature_names_in_")
    frame = pd.DataFrame({"image_a": images, "image_b": images[::-1]})
    embedder.fit(frame)
    assert embedder.n_features_in_ == 2
    assert list(embedder.feature_names_in_) == ["image_a", "image_b"]
    # An unnamed input after a named fit: scikit-learn's warning, then the column-count error.
    with pytest.warns(UserWarning, match="valid feature names"), pytest.raises(ValueError, match="features"):
        embedder.transform(images)
    with pytest.raises(ValueError, match="feature names"):
        embedder.transform(frame.rename(columns={"image_b": "other"}))


def check_feature_names_out(embedder, images, tmp_path):
    """One name per output column: ``<class><i>`` for one unnamed column, else ``<column>_<i>``."""
    dim = embedder.fit(images).embedding_dim_
    prefix = type(embedder).__name__.lower()
    assert embedder.get_feature_names_out().tolist() == [f"{prefix}{i}" for i in range(dim)]
    frame = pd.DataFrame({"image_a": images, "image_b": images[::-1]})
    names = embedder.fit(frame).get_feature_names_out()
    assert names.tolist() == [f"{c}_{i}" for c in ("image_a", "image_b") for i in range(dim)]
    assert len(names) == embedder.transform(frame).shape[1]


def check_set_output_pandas(embedder, images, tmp_path):
    """``set_output(transform='pandas')``: the same values, named columns, the input's index."""
    frame = pd.DataFrame({"image": images}, index=np.arange(len(images)) * 10 + 7)
    plain = embedder.fit(frame).transform(frame)
    out = clone(embedder).set_output(transform="pandas").fit(frame).transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == list(frame.index)
    assert list(out.columns) == embedder.get_feature_names_out().tolist()
    np.testing.assert_array_equal(out.to_numpy(), plain)


def check_pickle_round_trip(embedder, images, tmp_path):
    """A joblib or pickle round trip gives the same output; the model is rebuilt lazily."""
    expected = embedder.fit(images).transform(images)
    joblib.dump(embedder, tmp_path / "embedder.joblib")
    loaded = joblib.load(tmp_path / "embedder.joblib")
    assert "_model" not in vars(loaded)
    np.testing.assert_array_equal(loaded.transform(images), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(embedder)).transform(images), expected)


# Images are embedded in batches; a float32 forward pass of a batch may differ from that of
# another batch holding the same image in the last bits, hence the tolerances below.
def check_subset_invariance(embedder, images, tmp_path):
    """Embedding a subset of the images gives those images' rows of the whole."""
    whole = embedder.fit(images).transform(images)
    for rows in ([0], [len(images) - 1, 1], list(range(1, len(images)))):
        np.testing.assert_allclose(embedder.transform(_take(images, rows)), whole[rows], rtol=1e-5, atol=1e-6)


def check_order_invariance(embedder, images, tmp_path):
    """Permuted images give the permuted rows."""
    whole = embedder.fit(images).transform(images)
    order = np.random.default_rng(0).permutation(len(images))
    order = order if (order != np.arange(len(images))).any() else order[::-1]
    np.testing.assert_allclose(embedder.transform(_take(images, order)), whole[order], rtol=1e-5, atol=1e-6)


def check_multi_column_dataframe(embedder, images, tmp_path):
    """A DataFrame's image columns are embedded separately and concatenated, in column order."""
    single = embedder.fit(images).transform(images)
    frame = pd.DataFrame({"image_a": images, "image_b": images[::-1]})
    out = clone(embedder).fit(frame).transform(frame)
    dim = embedder.embedding_dim_
    assert out.shape == (len(images), 2 * dim)
    np.testing.assert_allclose(out[:, :dim], single, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, dim:], single[::-1], rtol=1e-5, atol=1e-6)


def check_input_containers_agree(embedder, images, tmp_path):
    """A list, tuple, Series, 1-D or n x 1 object array, or one-column DataFrame: one output."""
    expected = embedder.fit(images).transform(images)
    column = _object_column(images)
    for container in (
        tuple(images),
        pd.Series(images),
        column,
        column.reshape(-1, 1),
        pd.DataFrame({"image": images}),
    ):
        np.testing.assert_array_equal(clone(embedder).fit(container).transform(container), expected)


def _yield_embedder_checks() -> Iterator[Callable]:
    """Every check of the embedder contract, in the order they run."""
    yield check_clone
    yield check_fit_returns_self
    yield check_fit_sets_only_fitted_attributes
    yield check_fit_idempotent
    yield check_transform_deterministic
    yield check_fit_transform
    yield check_float32_output
    yield check_one_image
    yield check_n_features_in
    yield check_feature_names_out
    yield check_set_output_pandas
    yield check_pickle_round_trip
    yield check_subset_invariance
    yield check_order_invariance
    yield check_multi_column_dataframe
    yield check_input_containers_agree


def _cases():
    for name, kinds in KINDS.items():
        marks = [pytest.mark.skipif(not HAS_DLIB, reason="needs skpercept[face]")] if "Dlib" in name else []
        for kind in kinds:
            for check in _yield_embedder_checks():
                yield pytest.param(name, kind, check, marks=marks, id=f"{name}-{kind}-{check.__name__}")


@pytest.mark.parametrize(("name", "kind", "check"), list(_cases()))
def test_embedder_contract(name, kind, check, tmp_path):
    images = make_images(name, kind, tmp_path)
    with warnings.catch_warnings():
        # A face the detector misses is described from the whole image, with a warning;
        # that fallback is deterministic too, and covered in tests/embed/test_dlib.py.
        warnings.simplefilter("ignore", NoFaceWarning)
        check(EMBEDDERS[name](), images, tmp_path)


@pytest.mark.parametrize("name", list(EMBEDDERS))
def test_parameter_constraints_cover_every_parameter(name):
    """scikit-learn's own ``check_param_validation`` (not among ``parametrize_with_checks``'):
    a constraint per parameter, and a bad value refused by ``fit`` with sklearn's message."""
    check_param_validation(name, EMBEDDERS[name]())
