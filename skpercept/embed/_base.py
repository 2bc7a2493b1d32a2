"""The shared image-embedder base: input handling, fast batched decoding, cache, persistence.

Subclasses (:class:`~skpercept.embed.CLIPEmbedder`, :class:`~skpercept.embed.TimmEmbedder`)
only say how to build their model and preprocessing and how to run a forward pass; everything
a user touches (what X may be, batching, devices, precision, cache, bad images, pickling) is
defined once here.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from skpercept._utils import resolve_device
from skpercept.embed._cache import EmbeddingCache
from skpercept.embed._decode import (
    MAX_IMAGE_PIXELS,
    ImageDataset,
    ImageLoadError,
    content_hash,
    describe_source,
    is_image_source,
    load_image,
    read_source_bytes,
    resolve_path,
)

__all__ = [
    "MAX_IMAGE_PIXELS",
    "BadImageWarning",
    "BaseEmbedder",
    "ImageDataset",
    "ImageLoadError",
    "load_image",
]

_PRECISIONS = ("fp32", "fp16", "bf16")
_RUNTIME = ("_model", "_preprocess", "_draft_size", "_device", "_tokenizer")

SHARED_PARAMETERS = """image_root : str or path-like, default=None
        Folder that relative image paths are relative to.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the forward pass runs; ``'auto'`` picks the GPU when one is visible. Output is
        always a float32 NumPy array on the CPU.
    batch_size : int or 'auto', default='auto'
        Images per forward pass. ``'auto'``: 64 on a GPU; on the CPU a size that suits the
        model family (4 for timm, 16 for CLIP, 8 for dlib), since a CPU's caches favour small batches of
        convolution feature maps (2 cores: EfficientNet-Lite0 ran 52 images/s at 4 per pass,
        20 at 32) while transformers gain from larger matrix products (ViT-B-32: 11 images/s
        at 4, 13 at 32).
    num_workers : int, default=4
        Threads that read, decode and preprocess images ahead of the forward pass (PIL and
        torchvision release the GIL, so decoding overlaps with compute without the start-up
        and pickling cost of worker processes). ``0`` decodes in the calling thread.
    precision : {'fp32', 'fp16', 'bf16'}, default='fp32'
        Autocast precision of the forward pass. ``'fp16'`` needs CUDA; ``'bf16'`` runs on CPU
        and on GPUs that support it.
    normalize : bool, default=True
        L2-normalise each image's embedding.
    tta : bool, default=False
        Average the embedding of each image and of its horizontal mirror (on the preprocessed,
        centre-cropped tensor). Doubles compute; on the OMI faces it added 0.002-0.006
        pair-ordering accuracy with a ridge head.
    cache_dir : str or path-like, default=None
        Folder of a persistent cache keyed on each image's content hash plus the model,
        weights, preprocessing, precision and ``tta``: a renamed or copied file is a hit, an
        edited file a miss. Entries are written atomically, so an interrupted run never leaves
        a corrupt entry and a rerun only computes what is missing. ``None`` disables it.
    on_error : {'raise', 'nan'}, default='raise'
        What a missing, unreadable, corrupt, truncated or oversized image does. ``'raise'``:
        an :class:`ImageLoadError` naming the file, row, column and reason. ``'nan'``: that
        image's output columns are NaN (rows are never dropped or shifted) and one
        :class:`BadImageWarning` lists the files.
    progress : bool, default=False
        Show a tqdm progress bar over the images being computed.
    bundle_weights : {'auto', True, False}, default='auto'
        Whether pickling stores the model's weights inside the pickle. ``False`` stores only a
        reference (a pretrained tag, or a local file path plus its content hash, checked on
        reload): small pickles, but the reloading machine needs the same file or cached tag.
        ``True`` stores the state dict, so the pickle reloads anywhere with no file and no
        network, at the cost of its size. ``'auto'`` bundles only randomly initialised models,
        which no reference can rebuild exactly. Either way the model is rebuilt lazily on the
        first ``transform`` after loading, never during unpickling.
    random_state : int or None, default=0
        Seed for randomly initialised weights (``pretrained=None``); unused otherwise."""


class BadImageWarning(UserWarning):
    """Some images could not be loaded and were output as NaN (``on_error='nan'``)."""


class BaseEmbedder(TransformerMixin, BaseEstimator):
    """Shared machinery of the image embedders; subclasses implement ``_create_model``.

    Subclass hooks
    --------------
    ``_create_model(load_weights: bool) -> (module, preprocess, embedding_dim)`` builds the
    network (with its pretrained weights when ``load_weights``) and the evaluation transform
    from an RGB PIL image to a CHW float tensor. ``_weights_identity() -> str`` names the
    weights (used by the cache key and reload checks). ``_forward(module, batch)`` returns
    the (batch, dim) features.
    """

    #: ``batch_size='auto'`` on the CPU (subclasses set what suits their models).
    _cpu_batch_size = 8

    # -- sklearn contract ---------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = []
        return tags

    def fit(self, X: Any, y: Any = None) -> BaseEmbedder:
        """Check the parameters, record the input columns and build the model.

        Embedders learn nothing from the images: ``fit`` only validates, records
        ``n_features_in_`` (the number of image columns) and creates the network, so that
        a bad ``model_name`` or weights file fails here rather than at ``transform``.

        Parameters
        ----------
        X : sequence, Series, DataFrame or ndarray of images
            Image paths, PIL images or ``HxWxC`` arrays; a DataFrame's columns are separate
            image columns (e.g. ``image_a``, ``image_b``).
        y : ignored

        Returns
        -------
        self : object
        """
        self._check_params()
        self._as_columns(X, reset=True)
        for name in _RUNTIME + ("_bundled_weights",):
            self.__dict__.pop(name, None)
        self.weights_id_ = self._weights_identity()
        self.model_ref_ = (self.model_name, _as_text(self.pretrained))
        self._ensure_model(verify=False)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Embed every image; one block of ``embedding_dim_`` columns per input column.

        Parameters
        ----------
        X : sequence, Series, DataFrame or ndarray of images
            Same kinds as in :meth:`fit`, with the same number of columns.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features_in_ * embedding_dim_), float32
        """
        check_is_fitted(self)
        self._check_params()
        self._check_model_unchanged()
        columns, names = self._as_columns(X, reset=False)
        n_rows = len(columns[0])
        flat = [cell for column in columns for cell in column]
        unique: dict[Any, int] = {}
        sources: list[Any] = []
        inverse = np.empty(len(flat), dtype=np.int64)
        for position, cell in enumerate(flat):
            key = self._dedupe_key(cell)
            if key not in unique:
                unique[key] = len(sources)
                sources.append(cell)
            inverse[position] = unique[key]
        try:
            vectors, errors = self._embed_sources(sources)
        except _FirstError as first:
            position = int(np.flatnonzero(inverse == first.index)[0])
            raise self._located(first.error, position, n_rows, names) from None
        if errors:
            listed = [f"{self._describe(sources[i])}: {errors[i].reason}" for i in sorted(errors)]
            warnings.warn(
                f"{len(errors)} image(s) could not be loaded; their output columns are NaN: "
                + "; ".join(listed[:20])
                + (f"; ... and {len(listed) - 20} more" if len(listed) > 20 else ""),
                BadImageWarning,
                stacklevel=2,
            )
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        out = vectors[inverse].reshape(len(columns), n_rows, -1)
        return np.ascontiguousarray(out.transpose(1, 0, 2).reshape(n_rows, -1), dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output names: ``<column>_<i>`` per image column, or ``<classname><i>`` for one
        unnamed column.
        """
        check_is_fitted(self)
        dim = self.embedding_dim_
        if input_features is None and not hasattr(self, "feature_names_in_") and (self.n_features_in_ == 1):
            prefix = type(self).__name__.lower()
            return np.asarray([f"{prefix}{i}" for i in range(dim)], dtype=object)
        columns = _check_feature_names_in(self, input_features)
        return np.asarray([f"{c}_{i}" for c in columns for i in range(dim)], dtype=object)

    # -- persistence --------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        model = state.get("_model")
        for name in _RUNTIME:
            state.pop(name, None)
        if self._bundles() and model is not None:
            state["_bundled_weights"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        elif not self._bundles():
            state.pop("_bundled_weights", None)
        return state

    def _bundles(self) -> bool:
        if self.bundle_weights == "auto":
            return self.pretrained is None
        return bool(self.bundle_weights)

    # -- model lifecycle ----------------------------------------------------------------------
    def _check_model_unchanged(self) -> None:
        current = (self.model_name, _as_text(self.pretrained))
        if current != tuple(self.model_ref_):
            raise ValueError(
                f"model_name/pretrained changed from {tuple(self.model_ref_)} to {current} "
                "since fit; call fit again."
            )

    def _ensure_model(self, verify: bool = True):
        """The network on its device, built on first use (after fit or after unpickling).

        A changed ``device`` parameter moves the built network instead of rebuilding it.
        """
        device = resolve_device(self.device)
        if self.__dict__.get("_model") is not None:
            if device != self._device:
                self._model.to(device)
                self._device = device
            return self._model
        import torch

        bundled = self.__dict__.get("_bundled_weights")
        if verify and bundled is None:
            current = self._weights_identity()
            if current != self.weights_id_:
                raise ValueError(
                    f"The weights of this fitted {type(self).__name__} changed since it was "
                    f"fitted ({self.weights_id_} -> {current}); refit it, restore the original "
                    "weights file, or pickle it with bundle_weights=True."
                )
        with torch.random.fork_rng(devices=[]):
            if self.random_state is not None:
                torch.manual_seed(int(self.random_state))
            model, preprocess, dim = self._create_model(load_weights=bundled is None)
        if bundled is not None:
            model.load_state_dict(bundled)
            self.__dict__.pop("_bundled_weights")
        model.eval().requires_grad_(False).to(device)
        self._model, self._preprocess, self._device = model, preprocess, device
        self._draft_size = _resize_side(preprocess)
        self.embedding_dim_ = int(dim)
        return model

    def _forward(self, model, batch):
        return model(batch)

    # -- the embedding pipeline ---------------------------------------------------------------
    def _embed_sources(self, sources: list) -> tuple[np.ndarray, dict[int, ImageLoadError]]:
        """(unique images x dim) un-normalised vectors, and the failures by index."""
        errors: dict[int, ImageLoadError] = {}
        vectors = np.full((len(sources), self.embedding_dim_), np.nan, dtype=np.float32)
        cache = hashes = None
        todo = list(range(len(sources)))
        if self.cache_dir is not None:
            cache = EmbeddingCache(self.cache_dir, self._cache_identity())
            hashes = self._hash_sources(sources, errors)
            todo = []
            for i, digest in enumerate(hashes):
                if digest is None:
                    continue
                hit = cache.get(digest)
                if hit is not None and hit.shape == (self.embedding_dim_,):
                    vectors[i] = hit
                else:
                    todo.append(i)
        if not todo:
            return vectors, errors
        self._ensure_model()
        bar = _progress(len(todo), self.progress, type(self).__name__)
        for indices, batch in self._batches(sources, todo, errors):
            if batch is not None:
                out = self._run_batch(batch)
                vectors[indices] = out
                if cache is not None:
                    for i, vector in zip(indices, out):
                        cache.put(hashes[i], vector)
            bar.update(len(indices))
        bar.close()
        return vectors, errors

    def _fail(self, index: int, error: ImageLoadError, errors: dict) -> None:
        if self.on_error == "raise":
            raise _FirstError(index, error)
        errors[index] = error

    def _hash_sources(self, sources: list, errors: dict) -> list[str | None]:
        def digest(source):
            try:
                if not is_image_source(source):
                    raise ImageLoadError(source, _NOT_AN_IMAGE)
                return content_hash(read_source_bytes(source, self.image_root)), None
            except ImageLoadError as exc:
                return None, exc

        with _executor(self.num_workers) as pool:
            results = list(pool.map(digest, sources) if pool else map(digest, sources))
        hashes = []
        for i, (value, error) in enumerate(results):
            if error is not None:
                self._fail(i, error, errors)
            hashes.append(value)
        return hashes

    def _load_one(self, source: Any):
        try:
            if not is_image_source(source):
                raise ImageLoadError(source, _NOT_AN_IMAGE)
            image = load_image(source, self.image_root, self._draft_size)
            return self._preprocess(image), None
        except ImageLoadError as exc:
            return None, exc

    def _batches(self, sources: list, todo: list[int], errors: dict) -> Iterator:
        """Yield (indices, stacked tensor or None) while the next images decode in threads."""
        import torch

        batch_size = self._batch_size()
        window = max(2 * batch_size, 2 * self.num_workers)
        indices: list[int] = []
        tensors: list = []
        with _executor(self.num_workers) as pool:
            pending: deque[tuple[int, Future | tuple]] = deque()
            position = 0
            while position < len(todo) or pending:
                while pool is not None and position < len(todo) and len(pending) < window:
                    i = todo[position]
                    pending.append((i, pool.submit(self._load_one, sources[i])))
                    position += 1
                if pool is None:
                    i = todo[position]
                    pending.append((i, self._load_one(sources[i])))
                    position += 1
                i, job = pending.popleft()
                tensor, error = job.result() if isinstance(job, Future) else job
                if error is not None:
                    self._fail(i, error, errors)
                else:
                    indices.append(i)
                    tensors.append(tensor)
                if len(tensors) == batch_size or (not pending and position >= len(todo)):
                    if tensors:
                        yield indices, torch.stack(tensors)
                    indices, tensors = [], []

    def _run_batch(self, batch) -> np.ndarray:
        import torch

        model = self._model
        batch = batch.to(self._device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            features = self._forward(model, batch)
            if self.tta:
                features = (features + self._forward(model, torch.flip(batch, dims=[-1]))) / 2
        return features.float().cpu().numpy()

    def _autocast(self):
        import torch

        if self.precision == "fp32":
            return nullcontext()
        device_type = self._device.split(":")[0]
        if self.precision == "fp16" and device_type != "cuda":
            raise ValueError("precision='fp16' needs device='cuda'; on CPU use 'bf16' or 'fp32'.")
        cuda = device_type == "cuda"
        if self.precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            raise ValueError("This GPU does not support bf16; use precision='fp16' or 'fp32'.")
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type=device_type, dtype=dtype)

    def _cache_identity(self) -> dict:
        self._ensure_model()
        return {
            "embedder": type(self).__name__,
            "model_name": self.model_name,
            "weights": self.weights_id_,
            "preprocess": re.sub(r" at 0x[0-9a-fA-F]+", "", repr(self._preprocess)),
            "draft_size": self._draft_size,
            "precision": self.precision,
            "tta": bool(self.tta),
            "format": 1,
        }

    def _batch_size(self) -> int:
        """Images per forward pass on the device the model is on."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return self._cpu_batch_size if str(self._device).split(":")[0] == "cpu" else 64

    # -- inputs -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int or 'auto', got {self.batch_size!r}.")
        if not isinstance(self.num_workers, (int, np.integer)) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {self.num_workers!r}.")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}.")
        if self.on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {self.on_error!r}.")
        if self.bundle_weights not in ("auto", True, False):
            raise ValueError(f"bundle_weights must be 'auto', True or False, got {self.bundle_weights!r}.")

    def _as_columns(self, X: Any, reset: bool) -> tuple[list[list], list[str] | None]:
        """Normalise X into image columns (lists of equal length) and their names."""
        if isinstance(X, (str, os.PathLike, Image.Image)):
            raise ValueError(
                f"X must be a sequence of images, got a single {type(X).__name__}; wrap it in a list."
            )
        if isinstance(X, pd.DataFrame):
            table: Any = X
            columns = [X.iloc[:, j].tolist() for j in range(X.shape[1])]
        elif isinstance(X, pd.Series):
            table = X.to_numpy(dtype=object).reshape(-1, 1)
            columns = [X.tolist()]
        else:
            table = _object_table(X)
            columns = [list(table[:, j]) for j in range(table.shape[1])]
        if table.shape[0] == 0 or table.shape[1] == 0:
            raise ValueError(
                f"Found array with {table.shape[0]} sample(s) and {table.shape[1]} image "
                "column(s) while at least one of each is required."
            )
        validate_data(self, table, skip_check_array=True, reset=reset)
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        return columns, names

    def _dedupe_key(self, cell: Any) -> Any:
        if isinstance(cell, (str, os.PathLike)):
            return ("path", str(resolve_path(cell, self.image_root)))
        return ("object", id(cell))

    def _describe(self, source: Any) -> str:
        if isinstance(source, (str, os.PathLike)):
            return describe_source(resolve_path(source, self.image_root))
        return describe_source(source)

    def _located(self, error: ImageLoadError, position: int, n_rows: int, names) -> Exception:
        row, column = position % n_rows, position // n_rows
        where = f"row {row}" + (
            f", column {names[column]!r}" if names else (f", column {column}" if column else "")
        )
        return ImageLoadError(error.source, f"{error.reason} ({where})")


_NOT_AN_IMAGE = "not an image path, PIL image or HxW[xC] array"


class _FirstError(Exception):
    """Carries the first failure out of the pipeline when ``on_error='raise'``."""

    def __init__(self, index: int, error: ImageLoadError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def _object_table(X: Any) -> np.ndarray:
    """2-D object array of image cells from a list / tuple / ndarray input."""
    if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "USO":
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must hold images.")
        if X.ndim == 2 and X.shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        if X.ndim == 4 or X.ndim == 3:
            # A stack of N images (N x H x W x C, or N x H x W grayscale).
            table = np.empty((X.shape[0], 1), dtype=object)
            for i in range(X.shape[0]):
                table[i, 0] = X[i]
            return table
        raise ValueError(
            f"X is a numeric array of shape {X.shape}; image embedders take images (file "
            "paths, PIL images, HxWxC arrays, or an N x H x W x C stack), not feature vectors."
        )
    if isinstance(X, np.ndarray):
        items = list(X) if X.ndim == 1 else None
        if X.ndim == 2:
            return X.astype(object)
        if items is None:
            raise ValueError(f"X of strings/objects must be 1-D or 2-D, got shape {X.shape}.")
    else:
        try:
            items = list(X)
        except TypeError:
            raise ValueError(
                f"X must be a sequence of images, a Series or a DataFrame, got {type(X).__name__}."
            ) from None
    if items and all(isinstance(row, (list, tuple)) for row in items):
        widths = {len(row) for row in items}
        if len(widths) != 1:
            raise ValueError(f"Rows of X have different numbers of images: {sorted(widths)}.")
        table = np.empty((len(items), widths.pop()), dtype=object)
        for i, row in enumerate(items):
            for j, cell in enumerate(row):
                table[i, j] = cell
        return table
    table = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        table[i, 0] = item
    return table


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def file_identity(path: str | os.PathLike) -> str:
    """Content identity of a weights file (BLAKE2b of its bytes), read in 8 MiB chunks."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 23), b""):
            digest.update(chunk)
    return f"file:{digest.hexdigest()}"


def random_identity(random_state: int | None) -> str:
    """Identity of randomly initialised weights; unseeded ones never share a cache entry."""
    if random_state is None:
        return f"random-init:{uuid.uuid4().hex}"
    return f"random-init:seed={int(random_state)}"


def looks_like_path(value: Any) -> bool:
    """Whether a ``pretrained`` value names a local file rather than a library's tag."""
    if isinstance(value, os.PathLike):
        return True
    text = str(value)
    return (
        os.sep in text
        or "/" in text
        or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))
        or Path(text).expanduser().is_file()
    )


def check_weights_file(value: Any) -> Path:
    """The weights file as a Path, or a FileNotFoundError that names it."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {str(path)!r}.")
    return path


def _resize_side(preprocess: Callable) -> int | None:
    """The shorter side the preprocessing resizes to (the JPEG draft target), if found."""
    for step in getattr(preprocess, "transforms", []):
        if type(step).__name__ in ("Resize", "ResizeKeepRatio"):
            size = step.size
            return int(size if isinstance(size, int) else min(size))
    return None


def _executor(num_workers: int):
    return ThreadPoolExecutor(num_workers) if num_workers > 0 else nullcontext()


def _progress(total: int, enabled: bool, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=label, unit="img")
