"""DlibFaceEmbedder: real dlib descriptors on shipped OMI faces, fallbacks, base-class policies."""

from __future__ import annotations

import copy

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone

pytest.importorskip("dlib")
from skpercept.datasets import load_omi
from skpercept.embed import BadImageWarning, ImageLoadError, dlib_available
from skpercept.embed._dlib import DlibFaceEmbedder, NoFaceWarning

pytestmark = pytest.mark.skipif(not dlib_available(), reason="needs skpercept[face]")


@pytest.fixture(scope="module")
def faces() -> list[str]:
    return load_omi(["smart"]).images["image"].tolist()[:2]


@pytest.fixture(scope="module")
def fitted(faces) -> DlibFaceEmbedder:
    """Loading dlib's models takes seconds; tests share one fitted embedder (copied shallowly)."""
    return DlibFaceEmbedder(num_workers=0, normalize=False).fit(faces)


def variant(fitted: DlibFaceEmbedder, **params) -> DlibFaceEmbedder:
    return copy.copy(fitted).set_params(**params)


def test_descriptors_of_real_faces(fitted, faces, tmp_path):
    mirrored = tmp_path / "mirror.png"
    Image.open(faces[0]).transpose(Image.FLIP_LEFT_RIGHT).save(mirrored)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", NoFaceWarning)  # OMI portraits: a face in every image
        X = fitted.transform(faces + [str(mirrored)])
    assert X.shape == (3, 128) and X.dtype == np.float32 and np.isfinite(X).all()
    # a face is nearer to its own mirror image than to another person
    assert np.linalg.norm(X[2] - X[0]) < np.linalg.norm(X[1] - X[0])
    assert np.abs(X[0] - X[1]).max() > 0.01


def test_no_face_falls_back_to_whole_image_with_warning(fitted):
    blank = np.full((80, 80, 3), 127, dtype=np.uint8)
    with pytest.warns(NoFaceWarning, match="1 of the images"):
        X = fitted.transform([blank])
    assert X.shape == (1, 128) and np.isfinite(X).all()


def test_no_face_warning_names_the_images_and_the_callers_line(fitted, faces, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (80, 80), (127, 127, 127)).save(blank)
    with pytest.warns(NoFaceWarning) as caught:
        fitted.transform([faces[0], str(blank), faces[1]])  # through scikit-learn's output wrapper
    [warning] = [w for w in caught if w.category is NoFaceWarning]
    message = str(warning.message)
    assert message.startswith("No face detected in 1 of the images computed in this call: ")
    assert "blank.png" in message and faces[0] not in message and faces[1] not in message
    # how to act on it, in Python and on the command line
    assert "DlibFaceEmbedder(upsample=1)" in message and "--face-upsample 1" in message
    assert warning.filename == __file__  # this line, not a file of scikit-learn or skpercept
    assert "_no_face" not in vars(fitted) and "_batch_sources" not in vars(fitted)
    with pytest.warns(NoFaceWarning, match=r"in either view: tta=True\): .*blank.png.*upsample=2"):
        variant(fitted, tta=True, upsample=1).transform([str(blank)])


def test_bad_images_follow_on_error(fitted, faces, tmp_path):
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="nope.jpg"):
        fitted.transform([faces[0], missing])
    with pytest.warns(BadImageWarning, match="nope.jpg"):
        X = variant(fitted, on_error="nan").transform([missing, faces[0]])
    assert np.isnan(X[0]).all() and np.isfinite(X[1]).all()


def test_cache_flip_pickle_and_clone(fitted, faces, tmp_path):
    emb = variant(fitted, cache_dir=tmp_path / "cache", tta=True)
    first = emb.transform(faces[:1])
    plain = fitted.transform(faces[:1])
    assert not np.allclose(first, plain)  # flip averaging changes the vector
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    joblib.dump(emb, tmp_path / "e.joblib")
    loaded = joblib.load(tmp_path / "e.joblib")
    assert "_model" not in loaded.__dict__  # dlib's models are not pickled, only rebuilt
    np.testing.assert_array_equal(loaded.transform(faces[:1]), first)  # served by the cache
    assert clone(emb).get_params()["tta"] is True


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"'device' parameter of DlibFaceEmbedder must be a str among"):
        DlibFaceEmbedder(device="cuda").fit(["x.jpg"])
    with pytest.raises(ValueError, match="landmarks"):
        DlibFaceEmbedder(landmarks=7).fit(["x.jpg"])
    with pytest.raises(ValueError, match="upsample"):
        DlibFaceEmbedder(upsample=-1).fit(["x.jpg"])
    with pytest.raises(FileNotFoundError, match="dlib model file"):
        DlibFaceEmbedder(models_dir="/nonexistent").fit(["x.jpg"])


def test_aligned_landmarks_drop_position_rotation_and_size():
    from skpercept.embed._dlib import aligned_landmarks

    rng = np.random.RandomState(0)
    points = rng.uniform(0, 200, size=(68, 2))
    points[36:42] += [-40, 0]  # eyes apart, image-left eye first
    points[42:48] += [40, 0]
    reference = aligned_landmarks(points, 68)
    angle, scale, shift = 0.4, 2.5, np.array([31.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ rotation.T * scale + shift
    np.testing.assert_allclose(aligned_landmarks(moved, 68), reference, atol=1e-5)
    frame = reference.reshape(68, 2)
    left, right = frame[36:42].mean(axis=0), frame[42:48].mean(axis=0)
    np.testing.assert_allclose([left, right], [[-0.5, 0.0], [0.5, 0.0]], atol=1e-6)
    assert aligned_landmarks(np.zeros((5, 2)), 5).tolist() == [0.0] * 10  # no eye distance: zeros


def test_landmark_output_of_real_faces(fitted, faces, tmp_path):
    """The face's geometry: 136 values, the same for a resized copy of the image, a cache of its
    own, and the 'landmarks' backbone of the presets."""
    from skpercept.embed import make_backbones, parse_backbones

    geometry = variant(fitted, output="landmarks", landmarks=68, cache_dir=tmp_path / "cache")
    larger = tmp_path / "larger.png"
    image = Image.open(faces[0])
    image.resize((image.width * 3 // 2, image.height * 3 // 2), Image.BICUBIC).save(larger)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", NoFaceWarning)
        G = geometry.fit(faces).transform(faces + [str(larger)])
    assert G.shape == (3, 136) and geometry.embedding_dim_ == 136 and np.isfinite(G).all()
    assert np.abs(G[2] - G[0]).max() < 0.05 < np.abs(G[1] - G[0]).max()
    # the descriptor's cache entries are not served for the geometry, nor the other way round
    descriptor = variant(fitted, cache_dir=tmp_path / "cache").transform(faces[:1])
    assert descriptor.shape == (1, 128)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3 + 1  # 3 geometries, 1 descriptor
    assert len([d for d in (tmp_path / "cache").iterdir() if d.is_dir()]) == 2  # one namespace each
    five = variant(fitted, output="landmarks", landmarks=5).fit(faces).transform(faces[:1])
    assert five.shape == (1, 10)
    backbone = make_backbones(["landmarks"], cache_dir=None)["landmarks"]
    assert backbone.get_params()["output"] == "landmarks" and backbone.get_params()["landmarks"] == 68
    assert parse_backbones("lite0+landmarks") == {"lite0": None, "landmarks": None}
    with pytest.raises(ValueError, match="output"):
        DlibFaceEmbedder(output="mesh").fit(["x.jpg"])
