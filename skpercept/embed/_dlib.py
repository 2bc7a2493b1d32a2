"""DlibFaceEmbedder: dlib's 128-d face descriptor, or the face's geometry, as a scikit-learn
transformer.

The descriptor comes from dlib's ResNet face-recognition model (``dlib_face_recognition_resnet
_model_v1``), trained to tell identities apart; on the OMI faces it is the best single feature
for attractiveness and, concatenated with EfficientNet features, lifts every attribute (see
``benchmarks/omi.py``). ``output='landmarks'`` gives the face's geometry instead: dlib's
landmarks in a frame fixed by the eyes, which carries expression and proportions (on OMI it
lifts trustworthiness most). It needs the ``[face]`` extra: ``dlib-bin`` (the library, CPU
build) and ``face-recognition-models`` (the model files).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from skpercept._compat import Interval, Options, StrOptions
from skpercept._utils import estimator_parameters, optional_import, warn_at_caller
from skpercept.embed.base import SHARED_PARAMETERS, BaseEmbedder

_LANDMARKS = {5: "shape_predictor_5_face_landmarks.dat", 68: "shape_predictor_68_face_landmarks.dat"}
_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
#: Landmark indices of the two eyes, per landmark model (68: iBUG 300-W; 5: dlib's eye corners).
_EYES = {68: (range(36, 42), range(42, 48)), 5: (range(0, 2), range(2, 4))}


def aligned_landmarks(points: np.ndarray, n_landmarks: int) -> np.ndarray:
    """Landmark coordinates ``(n, 2)`` in the eyes' frame, flattened to ``2n`` values.

    The origin is midway between the two eye centres, the x axis runs from the eye on the
    image's left to the other, and the unit is the distance between the eye centres: position,
    in-plane rotation and size of the face drop out, its shape and expression remain.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed._dlib import aligned_landmarks
    >>> pts = np.array([[10, 10], [12, 10], [30, 10], [32, 10], [21, 25]], dtype=float)
    >>> aligned_landmarks(pts, 5).reshape(5, 2)[4].round(3).tolist()   # the nose, below centre
    [0.0, 0.75]
    """
    points = np.asarray(points, dtype=np.float64)
    a, b = (points[list(idx)].mean(axis=0) for idx in _EYES[n_landmarks])
    if a[0] > b[0]:
        a, b = b, a
    axis = b - a
    distance = float(np.hypot(*axis))
    if distance == 0:
        return np.zeros(points.size, dtype=np.float32)
    cos, sin = axis / distance
    rotation = np.array([[cos, sin], [-sin, cos]])
    return (((points - (a + b) / 2) @ rotation.T) / distance).astype(np.float32).ravel()


def dlib_available() -> bool:
    """True when the ``[face]`` extra (``dlib`` and ``face_recognition_models``) is installed.

    Examples
    --------
    >>> from skpercept.embed import dlib_available, make_backbones
    >>> names = ["lite0", "dlib"] if dlib_available() else ["lite0"]
    >>> type(make_backbones(names)["lite0"]).__name__
    'TimmEmbedder'
    """
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))


class NoFaceWarning(UserWarning):
    """No face was detected in some images; their descriptors come from the whole image.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skpercept.embed import DlibFaceEmbedder, NoFaceWarning
    >>> blank = np.zeros((64, 64, 3), dtype=np.uint8)  # no face in it
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     X = DlibFaceEmbedder().fit_transform([blank])
    >>> [str(w.message)[:35] for w in caught if issubclass(w.category, NoFaceWarning)]
    ['No face detected in 1 of the images']
    >>> X.shape  # described from the whole image instead
    (1, 128)
    """


def _models_dir(models_dir: str | Path | None) -> Path:
    """Folder holding dlib's ``.dat`` model files.

    ``face_recognition_models`` is located without importing it: its ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ship.
    """
    if models_dir is not None:
        return Path(models_dir).expanduser()
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "'face_recognition_models' is required for DlibFaceEmbedder; install it with "
            "`pip install 'skpercept[face]'` (or pass models_dir= to a folder of dlib .dat files)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class _Letterbox:
    """PIL RGB image -> uint8 CHW tensor on a ``size`` x ``size`` canvas, aspect ratio kept.

    dlib works on whole uint8 images, not normalised crops; a fixed canvas lets the base class
    batch images of any size, and bounds detection time for large photos.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, image):
        scale = self.size / max(image.size)
        if scale != 1:
            new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(new, Image.BICUBIC)
        canvas = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        top, left = (self.size - image.height) // 2, (self.size - image.width) // 2
        canvas[top : top + image.height, left : left + image.width] = np.asarray(image.convert("RGB"))
        return torch.from_numpy(canvas).permute(2, 0, 1)

    def __repr__(self) -> str:
        return f"Letterbox(size={self.size}, resample=bicubic, fill=0)"


@functools.lru_cache(maxsize=1)
def _detector_template():
    """dlib's HOG face detector, built once per process and only ever copied.

    Building it deserialises dlib's embedded model (most of a ``fit``'s time), while a copy
    is nearly free; each embedder runs its own copy, so no detector is shared between threads.
    """
    return optional_import("dlib", "face").get_frontal_face_detector()


def _dlib_module_class():
    class _DlibFaceModel(torch.nn.Module):
        """Detector + landmarks + descriptor. A torch Module only so that the base class can
        manage it like the other backbones (it holds no torch parameters)."""

        def __init__(
            self, folder: Path, landmarks: int, upsample: int, num_jitters: int, output: str = "descriptor"
        ) -> None:
            super().__init__()
            dlib = optional_import("dlib", "face")
            self.detector = copy.deepcopy(_detector_template())
            self.shape_predictor = dlib.shape_predictor(str(folder / _LANDMARKS[landmarks]))
            self.recognizer = (
                dlib.face_recognition_model_v1(str(folder / _RECOGNITION)) if output == "descriptor" else None
            )
            self.landmarks = int(landmarks)
            self.upsample = int(upsample)
            self.num_jitters = int(num_jitters)
            self.output = output
            # Rows of the batch being run (either view, with tta) in which no face was found.
            self.no_face_rows: set[int] = set()

        def describe(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
            """The image's vector, and whether a face was found (else the whole image is used)."""
            import dlib

            faces = self.detector(image, self.upsample)
            if len(faces):
                box = max(faces, key=lambda r: r.area())
            else:
                box = dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
            shape = self.shape_predictor(image, box)
            if self.output == "landmarks":
                points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                return aligned_landmarks(points, self.landmarks), bool(len(faces))
            descriptor = self.recognizer.compute_face_descriptor(image, shape, self.num_jitters)
            return np.asarray(descriptor, dtype=np.float32), bool(len(faces))

        def forward(self, batch):
            images = batch.permute(0, 2, 3, 1).contiguous().cpu().numpy()
            vectors = []
            for row, image in enumerate(images):
                vector, found = self.describe(np.ascontiguousarray(image))
                if not found:
                    self.no_face_rows.add(row)
                vectors.append(vector)
            return torch.from_numpy(np.stack(vectors))

    return _DlibFaceModel


@estimator_parameters
class DlibFaceEmbedder(BaseEmbedder):
    """dlib's 128-d face descriptor (or the face's landmark geometry) of the largest detected
    face in each image.

    For each image: dlib's HOG frontal-face detector (``upsample`` times upsampled) finds faces;
    the largest is aligned with a 5-point (or 68-point) landmark model and described by dlib's
    ResNet face-recognition network (128-d). With ``output='landmarks'`` the vector is instead
    the landmarks themselves in the eyes' frame (:func:`aligned_landmarks`: origin between the
    eyes, x along the eye line, unit the distance between the eyes), 2 values per landmark:
    136 with ``landmarks=68``, 10 with the 5-point model. **When no face is found the whole
    image is used as the face box**, so every row gets a vector (never a dropped or shifted
    row); a :class:`NoFaceWarning` names the images of the call that fell back. Images are
    first fitted onto an ``image_size`` square canvas (aspect ratio kept, black borders).

    Decoding, batching, the content-hash cache, ``on_error``, progress bars, flip averaging
    (``tta``) and pickling are those of every skpercept embedder (see
    :class:`~skpercept.embed.TimmEmbedder`). dlib runs on the CPU in its own precision, so
    ``device`` only accepts ``'auto'``/``'cpu'`` and there is no ``precision`` setting.

    Parameters
    ----------
    upsample : int, default=0
        Times the detector upsamples the image before searching (finds smaller faces, ~4x
        slower per step). On the 256-px OMI portraits 0 finds as many faces as 1. The command
        sets it with ``--face-upsample``.
    landmarks : {5, 68}, default=5
        Landmark model used to align the face (68 needs the 68-point file, which
        ``face-recognition-models`` ships).
    num_jitters : int, default=0
        dlib's own test-time augmentation: average over this many random jitters (slow; the
        descriptor only).
    output : {'descriptor', 'landmarks'}, default='descriptor'
        What each image becomes: the 128-d descriptor, or the aligned landmark coordinates
        (use ``landmarks=68``: the 5-point model has only eye corners and the nose). With
        ``tta=True`` the landmarks are averaged with the mirror image's, which makes the face
        symmetric.
    image_size : int, default=256
        Side of the square canvas images are fitted onto. Portrait faces keep plenty of the
        150-px aligned chip the network reads; raise it for small faces in large photos.
    models_dir : str or path-like, default=None
        Folder with dlib's ``.dat`` files; ``None`` uses ``face-recognition-models``' folder.
    {shared}

    Attributes
    ----------
    embedding_dim_ : int
        128, or 2 x the number of landmarks with ``output='landmarks'``.
    weights_id_ : str
        Names and sizes of the model files used (checked again after unpickling).
    n_features_in_ : int
        Number of image columns seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import DlibFaceEmbedder
    >>> blank = np.zeros((64, 64, 3), dtype=np.uint8)   # no face: falls back to the whole image
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     X = DlibFaceEmbedder().fit_transform([blank])
    >>> X.shape
    (1, 128)
    """

    #: dlib computes in its own precision on the CPU; the base class reads these settings.
    precision = "fp32"
    bundle_weights = False
    pretrained = "dlib"
    model_name = "dlib_face_recognition_resnet_model_v1"
    random_state = None
    decode = "cpu"
    torch_compile = False
    _parameter_constraints: ClassVar[dict] = {
        **BaseEmbedder._parameter_constraints,
        # dlib's detector and network run on the CPU only.
        "device": [StrOptions({"auto", "cpu"})],
        "upsample": [Interval(Integral, 0, None, closed="left")],
        "landmarks": [Options(Integral, set(_LANDMARKS))],
        "num_jitters": [Interval(Integral, 0, None, closed="left")],
        "output": [StrOptions({"descriptor", "landmarks"})],
        "image_size": [Interval(Integral, 32, None, closed="left")],
        "models_dir": [str, os.PathLike, None],
    }

    upsample: int = 0
    landmarks: int = 5
    num_jitters: int = 0
    output: str = "descriptor"
    image_size: int = 256
    models_dir: str | Path | None = None

    def _files(self) -> list[Path]:
        folder = _models_dir(self.models_dir)
        files = [folder / _LANDMARKS[self.landmarks], folder / _RECOGNITION]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"dlib model file(s) not found: {', '.join(missing)}.")
        return files

    def _weights_identity(self) -> str:
        return ";".join(f"{f.name}:{f.stat().st_size}" for f in self._files())

    def _create_model(self, load_weights: bool):
        optional_import("dlib", "face")
        model = _dlib_module_class()(
            self._files()[0].parent,
            int(self.landmarks),
            int(self.upsample),
            int(self.num_jitters),
            self.output,
        )
        width = 128 if self.output == "descriptor" else 2 * int(self.landmarks)
        return model, _Letterbox(int(self.image_size)), width

    def _ensure_model(self, verify: bool = True):
        model = super()._ensure_model(verify)
        # The canvas size is the JPEG draft target (the base looks for a torchvision Resize).
        self._draft_size = int(self.image_size)
        return model

    def _cache_identity(self) -> dict:
        identity = super()._cache_identity()
        identity.update(
            upsample=int(self.upsample),
            landmarks=int(self.landmarks),
            num_jitters=int(self.num_jitters),
            no_face="whole-image",
        )
        if self.output != "descriptor":  # descriptor caches keep the identity they always had
            identity.update(output=self.output)
        return identity

    def transform(self, X: Any) -> np.ndarray:
        """Embed every image: ``embedding_dim_`` columns per image column (see the class docstring).

        Parameters
        ----------
        X : sequence, Series, DataFrame or ndarray of images

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim * n_features_in), float32
        """
        self._no_face: list = []
        try:
            out = super().transform(X)
            no_face = self._no_face
        finally:
            for name in ("_no_face", "_batch_sources"):
                self.__dict__.pop(name, None)
        if no_face:
            warn_at_caller(self._no_face_message(no_face), NoFaceWarning)
        return out

    def _batches(self, sources: list, todo: list[int], errors: dict):
        # The batch being run is always the one last yielded: remember its images, so that
        # _run_batch can name those in which no face was found.
        for indices, batch in super()._batches(sources, todo, errors):
            self._batch_sources = [sources[i] for i in indices]
            yield indices, batch

    def _run_batch(self, batch) -> np.ndarray:
        model = self._model
        model.no_face_rows = set()
        out = super()._run_batch(batch)
        no_face = self.__dict__.get("_no_face")
        if no_face is not None:
            no_face.extend(self._batch_sources[row] for row in sorted(model.no_face_rows))
        return out

    def _no_face_message(self, sources: list) -> str:
        listed = [self._describe(source) for source in sources]
        more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
        views = " (in either view: tta=True)" if self.tta else ""
        upsample = int(self.upsample) + 1
        return (
            f"No face detected in {len(listed)} of the images computed in this call{views}: "
            f"{', '.join(listed[:20])}{more}. Their vectors describe the whole image instead. "
            f"If their faces are small, let the detector upsample the image: upsample={upsample} "
            f"(DlibFaceEmbedder(upsample={upsample}), or set_params(<step>__upsample={upsample}) "
            f"in a pipeline; --face-upsample {upsample} on the command line)."
        )


def _shared_parameters(
    skip: tuple[str, ...] = ("precision", "bundle_weights", "random_state", "decode", "torch_compile"),
) -> str:
    """The base's parameter docs without the settings dlib does not have."""
    blocks, current = [], []
    for line in SHARED_PARAMETERS.splitlines():
        if current and not line.startswith("        "):
            blocks.append(current)
            current = []
        current.append(line)
    blocks.append(current)
    kept = [b for b in blocks if b[0].strip().split(" :")[0] not in skip]
    return "\n".join("\n".join(b) for b in kept).strip()


DlibFaceEmbedder.__doc__ = DlibFaceEmbedder.__doc__.replace("{shared}", _shared_parameters())
