"""Batched JPEG decoding with torchvision (nvJPEG on a GPU) and the model's preprocessing as tensor ops.

On a GPU, decoding JPEGs on the host's cores bounds throughput long before the forward pass
does. This module moves the work to the device: files are read and their headers checked in
background threads (:func:`sniff`), the JPEGs of a batch are decoded together by
``torchvision.io.decode_jpeg(..., device=device)`` (nvJPEG when ``device`` is CUDA), EXIF
orientation is applied with tensor flips, and the model's evaluation transform is replayed on
the device (:class:`TensorPreprocess`: resize, centre crop, scale, normalise).

Every function takes ``device``: with ``'cpu'`` the same code decodes with libjpeg-turbo on the
host, which is how the GPU path is tested on machines without a GPU. Anything this path cannot
decode exactly as :func:`~skpercept.embed.load_image` would (PNG, WebP, CMYK or 16-bit JPEGs,
in-memory images, truncated files) is flagged for the PIL decoder instead.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import Compose
from torchvision.transforms.v2 import functional as F

from skpercept.embed._decode import MAX_IMAGE_PIXELS, read_source_bytes, resolve_path

__all__ = [
    "JpegFile",
    "TensorPreprocess",
    "Uint8Preprocess",
    "apply_orientation",
    "decode_jpegs",
    "sniff",
    "tensor_batches",
]

_JPEG_MAGIC = b"\xff\xd8\xff"
_EXIF_ORIENTATION = 0x0112


@dataclass
class JpegFile:
    """A JPEG's bytes (a 1-D uint8 tensor) and its EXIF orientation (1 = upright)."""

    data: Any
    orientation: int


def sniff(source: Any, image_root: str | os.PathLike | None = None) -> JpegFile | None:
    """Read a file and say whether the tensor decoder can take it.

    Parameters
    ----------
    source : str, path-like, PIL image or ndarray
    image_root : str or path-like, default=None

    Returns
    -------
    jpeg : JpegFile or None
        The file's bytes and orientation when it is a complete 8-bit RGB or grayscale JPEG;
        ``None`` for anything else (the caller decodes it with PIL, which also produces the
        precise error for a bad file).

    Raises
    ------
    ImageLoadError
        The file is missing or unreadable. (A header announcing more than
        ``MAX_IMAGE_PIXELS`` returns ``None``: ``load_image`` then refuses it, before any
        pixel is decoded, with its usual message.)
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = resolve_path(source, image_root)
    data = read_source_bytes(path)
    # A file cut short still decodes with libjpeg-turbo and nvJPEG (grey bottom rows), while
    # PIL refuses it: a missing end-of-image marker sends the file to PIL for the same error.
    if not data.startswith(_JPEG_MAGIC) or data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Opening reads the header only: size, mode and EXIF, no pixels.
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return None  # load_image raises the decompression-bomb error with its wording
            if image.mode not in ("RGB", "L"):
                return None
            orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:
        return None
    # A writable copy: torch wraps read-only bytes only with a warning.
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return JpegFile(tensor, orientation if 1 <= orientation <= 8 else 1)


def apply_orientation(image, orientation: int):
    """Turn a decoded ``(3, H, W)`` tensor upright as its EXIF orientation says.

    The same transposition PIL's ``ImageOps.exif_transpose`` makes, as tensor views, so that
    it runs on whatever device holds the image.

    Parameters
    ----------
    image : torch.Tensor of shape (C, H, W)
    orientation : int in 1..8

    Returns
    -------
    image : torch.Tensor
    """
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1).flip(-2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return image.transpose(-1, -2).flip(-1)
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return image.transpose(-1, -2).flip(-2)
    return image


def decode_jpegs(files: list[JpegFile], device: str) -> list:
    """Decode JPEGs together on ``device`` into upright ``(3, H, W)`` uint8 tensors.

    Parameters
    ----------
    files : list of JpegFile
        From :func:`sniff`.
    device : str
        ``'cuda'`` (``'cuda:N'``) decodes the whole list in one nvJPEG batch; ``'cpu'`` with
        libjpeg-turbo.

    Returns
    -------
    images : list of torch.Tensor
        One per file, on ``device``.

    Raises
    ------
    RuntimeError
        A file the decoder rejects; the caller retries the batch's files with PIL.
    """
    with warnings.catch_warnings():
        # torchvision 0.29 announces a move of its decoders to torchcodec; they still work.
        warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
        images = decode_jpeg([f.data for f in files], mode=ImageReadMode.RGB, device=device)
    return [apply_orientation(image, f.orientation) for image, f in zip(images, files)]


@dataclass(frozen=True)
class TensorPreprocess:
    """A model's evaluation transform (resize, centre crop, to-tensor, normalise) as tensor ops.

    Built from the torchvision ``Compose`` the embedders use on PIL images
    (:meth:`from_transform`); applied to decoded uint8 images on any device. The resize runs
    on uint8 pixels with antialiasing and rounds back to uint8, as PIL does, so the result
    differs from PIL's full decode + transform only by the resamplers' rounding: at most two
    8-bit levels per pixel (``tests/embed/test_gpu_decode.py``).

    Parameters
    ----------
    size : int or tuple of int or None
        The ``Resize`` size (int: the shorter side).
    interpolation : torchvision.transforms.InterpolationMode
    max_size : int or None
    crop : tuple of int or None
        ``(height, width)`` of the centre crop.
    mean, std : tuple of float
    """

    size: Any
    interpolation: Any
    max_size: int | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]

    #: Transform steps that do nothing to an 8-bit RGB image (mode converters, to-tensor).
    _NEUTRAL = ("ToTensor", "MaybeToTensor", "MaybeConvertMode", "_convert_to_rgb", "ToImage")

    @classmethod
    def from_transform(cls, transform: Any) -> TensorPreprocess | None:
        """Translate a torchvision ``Compose``; ``None`` when a step has no tensor equivalent.

        Parameters
        ----------
        transform : torchvision.transforms.Compose

        Returns
        -------
        preprocess : TensorPreprocess or None
        """
        steps = getattr(transform, "transforms", None)
        if steps is None:
            return None
        size = interpolation = max_size = crop = mean = std = None
        for step in steps:
            # Plain functions (open_clip's ``_convert_to_rgb``) go by their own name.
            kind = getattr(step, "__name__", type(step).__name__)
            if kind == "Resize" and size is None and crop is None and mean is None:
                if not getattr(step, "antialias", True):
                    return None
                size, interpolation, max_size = step.size, step.interpolation, step.max_size
            elif kind == "CenterCrop" and crop is None and mean is None:
                crop = tuple(int(s) for s in step.size)
            elif kind == "Normalize" and mean is None:
                mean = tuple(float(m) for m in step.mean)
                std = tuple(float(s) for s in step.std)
            elif kind == "ToDtype" and mean is None and step.scale and str(step.dtype) == "torch.float32":
                continue  # torchvision v2's uint8 -> [0, 1] float step, as ToTensor's
            elif kind not in cls._NEUTRAL or (kind == "ToImage" and mean is not None):
                return None
        if mean is None or crop is None:
            return None  # without a crop the batch's images would differ in size
        return cls(size, interpolation, max_size, crop, mean, std)

    def __call__(self, images: list, out=None):
        """Preprocess decoded images into one normalised float32 batch.

        Parameters
        ----------
        images : list of torch.Tensor of shape (3, H, W), uint8
        out : torch.Tensor, default=None
            A ``(len(images), 3, h, w)`` float32 tensor to fill (e.g. a slice of the batch).

        Returns
        -------
        batch : torch.Tensor of shape (len(images), 3, h, w), float32
        """
        resized = []
        for image in images:
            if self.size is not None:
                image = F.resize(image, self.size, self.interpolation, max_size=self.max_size, antialias=True)
            if self.crop is not None:
                image = F.center_crop(image, list(self.crop))
            resized.append(image)
        stacked = torch.stack(resized)
        if out is None:
            out = torch.empty(stacked.shape, dtype=torch.float32, device=stacked.device)
        out.copy_(stacked).div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=out.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=out.device).view(1, -1, 1, 1)
        return out.sub_(mean).div_(std)


class Uint8Preprocess:
    """A PIL evaluation transform split where its pixels stop being 8-bit.

    For transforms made of PIL steps (resize, centre crop, mode conversion) followed by
    ``ToTensor`` and ``Normalize`` — timm's and open_clip's evaluation transforms — the PIL
    steps run per image (:meth:`pixels`, in the decoding threads) and hand over an 8-bit
    ``(H, W, 3)`` tensor; the scaling to [0, 1] and the normalisation run once per batch
    (:meth:`normalize`, just before the forward pass). That is the same arithmetic as the
    transform's own ``ToTensor`` + ``Normalize`` in float32 (bit-identical results), but the
    per-image work and the batch stacked between threads are 8-bit, a quarter of the bytes,
    and the batch comes out channels-last without a copy.

    Parameters
    ----------
    steps : torchvision.transforms.Compose
        The PIL steps.
    mean, std : tuple of float
    """

    _PIL = ("Resize", "CenterCrop", "MaybeConvertMode", "_convert_to_rgb")
    _TO_TENSOR = ("ToTensor", "MaybeToTensor")

    def __init__(self, steps: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.steps, self.mean, self.std = steps, mean, std

    @classmethod
    def from_transform(cls, transform: Any) -> Uint8Preprocess | None:
        """Split a torchvision ``Compose``; ``None`` unless it is PIL steps, to-tensor, Normalize."""
        steps = list(getattr(transform, "transforms", None) or [])
        kinds = [getattr(step, "__name__", type(step).__name__) for step in steps]
        if len(kinds) < 2 or kinds[-2] not in cls._TO_TENSOR or kinds[-1] != "Normalize":
            return None
        if not all(kind in cls._PIL for kind in kinds[:-2]):
            return None
        normalize = steps[-1]
        return cls(Compose(steps[:-2]), tuple(map(float, normalize.mean)), tuple(map(float, normalize.std)))

    def pixels(self, image: Any):
        """The PIL steps on one RGB image: an ``(H, W, 3)`` uint8 tensor."""
        out = self.steps(image)
        if out.mode != "RGB":
            out = out.convert("RGB")
        return torch.from_numpy(np.array(out, dtype=np.uint8))

    def normalize(self, batch):
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32, channels-last, normalised."""
        out = batch.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=out.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=out.device).view(1, -1, 1, 1)
        return out.sub_(mean).div_(std)


def tensor_batches(
    sources: list,
    todo: list[int],
    *,
    read: Callable,
    load: Callable,
    fail: Callable,
    preprocess: TensorPreprocess,
    device: str,
    batch_size: int,
    num_workers: int,
) -> Iterator:
    """Yield ``(indices, batch on device)``: JPEGs decoded on ``device``, the rest by PIL.

    Threads read files ahead of the decoder (a window of two batches); each batch's JPEGs
    are decoded in one :func:`decode_jpegs` call and preprocessed on ``device``. Files the
    tensor decoder does not take are decoded and preprocessed by ``load`` in the threads,
    then copied through pinned memory without blocking.

    Parameters
    ----------
    sources : list
        The images; ``todo`` lists the positions to compute, in order.
    todo : list of int
    read : callable
        ``source -> (JpegFile or None, ImageLoadError or None)`` (see :func:`sniff`).
    load : callable
        ``source -> (CHW float tensor or None, ImageLoadError or None)``: the PIL path.
    fail : callable
        ``(position, error)``: records a bad image, or raises under ``on_error='raise'``.
    preprocess : TensorPreprocess
    device : str
    batch_size, num_workers : int

    Yields
    ------
    indices : list of int
    batch : torch.Tensor of shape (len(indices), 3, h, w), float32, on ``device``
    """

    def prepare(source):
        jpeg, error = read(source)
        if jpeg is not None or error is not None:
            return jpeg, error
        return load(source)

    window = max(2 * batch_size, 2 * num_workers)
    pool = ThreadPoolExecutor(max(num_workers, 1))
    try:
        pending: deque = deque()
        position = 0
        items: list[tuple[int, Any]] = []
        while position < len(todo) or pending:
            while position < len(todo) and len(pending) < window:
                pending.append((todo[position], pool.submit(prepare, sources[todo[position]])))
                position += 1
            i, job = pending.popleft()
            item, error = job.result()
            if error is not None:
                fail(i, error)
            else:
                items.append((i, item))
            if items and (len(items) == batch_size or not pending):
                yield _assemble(items, sources, load, fail, preprocess, device)
                items = []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _assemble(items: list, sources: list, load: Callable, fail: Callable, preprocess, device: str):
    """One batch on ``device`` from JpegFiles (decoded here) and PIL-decoded CPU tensors."""
    ready: dict[int, Any] = {}
    host = {i: item for i, item in items if not isinstance(item, JpegFile)}
    jpegs = [(i, item) for i, item in items if isinstance(item, JpegFile)]
    if jpegs:
        try:
            decoded = preprocess(decode_jpegs([jpeg for _, jpeg in jpegs], device))
        except RuntimeError:
            # A file the decoder rejects fails its whole batch: PIL retries each file and
            # reports the bad one(s) with the usual reasons.
            for i, _ in jpegs:
                tensor, error = load(sources[i])
                if error is not None:
                    fail(i, error)
                else:
                    host[i] = tensor
        else:
            if not host:
                return [i for i, _ in jpegs], decoded
            ready.update(zip([i for i, _ in jpegs], decoded))
    if host:
        stacked = torch.stack(list(host.values()))
        if str(device).startswith("cuda"):
            stacked = stacked.pin_memory()
        ready.update(zip(host, stacked.to(device, non_blocking=True)))
    indices = [i for i, _ in items if i in ready]
    if not indices:
        return [], None
    return indices, torch.stack([ready[i] for i in indices])
