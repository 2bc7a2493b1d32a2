"""The shared image-embedder base: input handling, fast batched decoding, cache, persistence.

Subclasses (:class:`~skpercept.embed.CLIPEmbedder`, :class:`~skpercept.embed.TimmEmbedder`)
only say how to build their model and preprocessing and how to run a forward pass; everything
a user touches (what X may be, batching, devices, precision, cache, bad images, pickling) is
defined once here.

The pipeline streams: worker threads decode images (at reduced scale when the files are much
larger than the model's input) while the forward pass runs on the previous batch, and each
batch's vectors go straight into one pre-allocated output array. On a GPU, JPEG files are
decoded there instead (:mod:`skpercept.embed`); the threads then only read files.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from PIL import Image
from sklearn import get_config
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._compat import Interval, StrOptions, check_feature_names_in, fit_context
from skpercept._dataframes import as_pandas
from skpercept._progress import PROGRESS_CONSTRAINT, progress_bar
from skpercept._utils import (
    LOADED_DEVICE,
    SavedFormatMixin,
    current_device,
    estimator_parameters,
    loaded_device,
    to_arrays,
    to_tensors,
    warn_at_caller,
)
from skpercept.embed import _decode, _inputs
from skpercept.embed._cache import EmbeddingCache
from skpercept.embed._decode import (
    ImageDataset,
    ImageLoadError,
    content_hash,
    describe_source,
    is_image_source,
    load_image,
    read_source_bytes,
    resolve_path,
)
from skpercept.embed._gpu_decode import TensorPreprocess, Uint8Preprocess, sniff, tensor_batches
from skpercept.embed._inputs import arrange_output, object_table

__all__ = [
    "MAX_IMAGE_PIXELS",
    "RUNTIME_ATTRIBUTES",
    "SHARED_PARAMETERS",
    "BadImageWarning",
    "BaseEmbedder",
    "ImageDataset",
    "ImageLoadError",
    "NetworkEmbedder",
    "as_text",
    "load_image",
    "thread_pool",
]

#: Largest image (width x height) that is decoded: a larger one is refused from its header
#: alone, before any pixel memory is allocated (an :class:`ImageLoadError`).
MAX_IMAGE_PIXELS = _decode.MAX_IMAGE_PIXELS
#: The numpydoc entries of the parameters every embedder shares (``image_root``, ``device``,
#: ``batch_size``, ...): an embedder's docstring holds ``{shared_parameters}`` in its
#: ``Parameters`` section and replaces it with this text.
SHARED_PARAMETERS = _inputs.SHARED_PARAMETERS
#: Attributes of a fitted embedder rebuilt after unpickling (never pickled).
RUNTIME_ATTRIBUTES = (
    "_model",
    "_preprocess",
    "_draft_size",
    "_device",
    "_tokenizer",
    "_tensor_preprocess",
    "_uint8_preprocess",
    "_compiled",
    LOADED_DEVICE,
)
#: Rows normalised / arranged at a time: bounds the temporaries of ``transform`` whatever N is.
_CHUNK = 1024


class BadImageWarning(UserWarning):
    """Some images could not be loaded and were output as NaN (``on_error='nan'``).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skpercept.embed import BadImageWarning, TimmEmbedder
    >>> images = [np.zeros((32, 32, 3), dtype=np.uint8), "no/such/file.jpg"]
    >>> emb = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu",
    ...                    on_error="nan")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     X = emb.fit_transform(images)
    >>> any(issubclass(w.category, BadImageWarning) for w in caught)
    True
    >>> np.isnan(X).any(axis=1).tolist()  # the missing file's row is NaN
    [False, True]
    """


@estimator_parameters
class BaseEmbedder(SavedFormatMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the image embedders; subclasses implement ``_create_model``.

    Notes
    -----
    Subclass hooks: ``_create_model(load_weights: bool) -> (module, preprocess,
    embedding_dim)`` builds the network (with its pretrained weights when ``load_weights``)
    and the evaluation transform from an RGB PIL image to a CHW float tensor.
    ``_weights_identity() -> str`` names the weights (used by the cache key and reload
    checks). ``_forward(module, batch)`` returns the (batch, dim) features.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import BaseEmbedder, TimmEmbedder
    >>> emb = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu")
    >>> isinstance(emb, BaseEmbedder)
    True
    >>> images = [np.full((32, 32, 3), v, dtype=np.uint8) for v in (0, 255)]
    >>> emb.fit_transform(images).shape, emb.embedding_dim_
    ((2, 256), 256)
    """

    #: ``batch_size='auto'`` on the CPU (subclasses set what suits their models).
    _cpu_batch_size = 8
    #: Whether the network runs in channels-last memory format on the CPU too (on a GPU it
    #: always does); convolutional subclasses set it.
    _cpu_channels_last = False
    #: The shared parameters' constraints; subclasses add their own (scikit-learn's
    #: declarative validation, checked by ``fit`` and again by ``transform``).
    _parameter_constraints: ClassVar[dict] = {
        "image_root": [str, os.PathLike, None],
        # resolve_device checks the value ('auto', 'cpu', 'cuda', 'cuda:N') and the GPU.
        "device": [str],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "normalize": ["boolean"],
        "tta": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "on_error": [StrOptions({"raise", "nan"})],
        "progress": PROGRESS_CONSTRAINT,
    }

    image_root: str | os.PathLike | None = None
    device: str = "auto"
    batch_size: int | str = "auto"
    num_workers: int = 4
    normalize: bool = True
    tta: bool = False
    cache_dir: str | os.PathLike | None = None
    on_error: str = "raise"
    progress: bool | str = "auto"

    # -- sklearn contract ---------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = []
        return tags

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> BaseEmbedder:
        """Check the parameters, record the input columns and build the model.

        Embedders learn nothing from the images: ``fit`` only validates the parameters, records
        ``n_features_in_`` (the number of image columns) and creates the network, so that
        a bad ``model_name`` or weights file fails here rather than at ``transform``.

        Parameters
        ----------
        X : sequence, Series, DataFrame or ndarray of images
            Image paths, PIL images or ``HxWxC`` arrays; a DataFrame's columns are separate
            image columns (e.g. ``image_a``, ``image_b``). polars and pyarrow tables and
            columns are read as their pandas conversions.
        y : ignored

        Returns
        -------
        self : object
        """
        self._as_columns(X, reset=True)
        for name in RUNTIME_ATTRIBUTES + ("_bundled_weights",):
            self.__dict__.pop(name, None)
        self.weights_id_ = self._weights_identity()
        self.model_ref_ = (self.model_name, as_text(self.pretrained))
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
        embeddings : ndarray of shape (n_samples, n_features_in * embedding_dim), float32
        """
        check_is_fitted(self)
        self._validate_runtime_params()
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
            warn_at_caller(
                f"{len(errors)} image(s) could not be loaded; their output columns are NaN: "
                + "; ".join(listed[:20])
                + (f"; ... and {len(listed) - 20} more" if len(listed) > 20 else ""),
                BadImageWarning,
            )
        if self.normalize:
            # In place and in chunks: no temporary as large as the output.
            for start in range(0, len(vectors), _CHUNK):
                block = vectors[start : start + _CHUNK]
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                block /= np.where(norms > 0, norms, 1.0)
        return arrange_output(vectors, inverse, len(columns), n_rows, _CHUNK)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output names: ``<column>_<i>`` per image column, or ``<classname><i>`` for one
        unnamed column.
        """
        check_is_fitted(self)
        dim = self.embedding_dim_
        if input_features is None and not hasattr(self, "feature_names_in_") and (self.n_features_in_ == 1):
            prefix = type(self).__name__.lower()
            return np.asarray([f"{prefix}{i}" for i in range(dim)], dtype=object)
        columns = check_feature_names_in(self, input_features)
        return np.asarray([f"{c}_{i}" for c in columns for i in range(dim)], dtype=object)

    # -- persistence --------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        model = state.get("_model")
        for name in RUNTIME_ATTRIBUTES:
            state.pop(name, None)
        if self._bundles() and model is not None:
            state["_bundled_weights"] = to_arrays(model.state_dict())
        elif not self._bundles():
            state.pop("_bundled_weights", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "weights_id_" in self.__dict__:
            # Fitted: the network is rebuilt at its next call, on the device chosen (and said) now.
            loaded_device(self)

    def _bundles(self) -> bool:
        if self.bundle_weights == "auto":
            return self.pretrained is None
        return bool(self.bundle_weights)

    # -- model lifecycle ----------------------------------------------------------------------
    def _check_model_unchanged(self) -> None:
        current = (self.model_name, as_text(self.pretrained))
        if current != tuple(self.model_ref_):
            raise ValueError(
                f"model_name/pretrained changed from {tuple(self.model_ref_)} to {current} "
                "since fit; call fit again."
            )

    def _ensure_model(self, verify: bool = True):
        """The network on its device, built on first use (after fit or after unpickling).

        A changed ``device`` parameter moves the built network instead of rebuilding it; an
        unpickled embedder runs where loading chose (the CPU when this machine lacks the device
        it was saved with) until ``device`` is set again.
        """
        device = current_device(self)
        if self.__dict__.get("_model") is not None:
            if device != self._device:
                self._model.to(device)
                self._device = device
                self._to_memory_format()
            return self._model

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
            model.load_state_dict(to_tensors(bundled))
            self.__dict__.pop("_bundled_weights")
        model.eval().requires_grad_(False).to(device)
        self._model, self._preprocess, self._device = model, preprocess, device
        self._draft_size = _resize_side(preprocess)
        self._tensor_preprocess = TensorPreprocess.from_transform(preprocess)
        self._uint8_preprocess = Uint8Preprocess.from_transform(preprocess)
        self.embedding_dim_ = int(dim)
        self._to_memory_format()
        return model

    def _channels_last(self) -> bool:
        return str(self._device).startswith("cuda") or self._cpu_channels_last

    def _to_memory_format(self) -> None:
        # cuDNN's convolutions are fastest on NHWC, and so are oneDNN's depthwise ones on the CPU.

        if self._channels_last():
            self._model.to(memory_format=torch.channels_last)

    def get_preprocess(self) -> Callable:
        """The evaluation transform ``transform`` applies to each decoded image.

        It maps an RGB PIL image to a normalised ``(3, H, W)`` float32 tensor; stacking such
        tensors gives the network's input batch. Useful to run the network on images
        preprocessed exactly as the embedder does (``benchmarks/embed_throughput.py`` times
        the forward pass alone this way).

        Returns
        -------
        preprocess : callable
            The model's own torchvision transform (timm's or open_clip's evaluation transform).

        Examples
        --------
        >>> import numpy as np
        >>> from PIL import Image
        >>> from skpercept.embed import TimmEmbedder
        >>> emb = TimmEmbedder(device="cpu").fit([np.zeros((8, 8, 3), dtype=np.uint8)])
        >>> emb.get_preprocess()(Image.new("RGB", (300, 400))).shape
        torch.Size([3, 224, 224])
        """
        check_is_fitted(self)
        self._ensure_model()
        return self._preprocess

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
        bar = progress_bar(len(todo), self.progress, type(self).__name__, unit="img")
        decode_device = self._decode_device()
        if decode_device is None:
            batches = self._batches(sources, todo, errors)
        else:
            batches = tensor_batches(
                sources,
                todo,
                read=self._read_one,
                load=self._load_one,
                fail=lambda i, error: self._fail(i, error, errors),
                preprocess=self._tensor_preprocess,
                device=decode_device,
                batch_size=self._batch_size(),
                num_workers=self.num_workers,
            )
        for indices, batch in batches:
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

        with thread_pool(self.num_workers) as pool:
            results = list(pool.map(digest, sources) if pool else map(digest, sources))
        hashes = []
        for i, (value, error) in enumerate(results):
            if error is not None:
                self._fail(i, error, errors)
            hashes.append(value)
        return hashes

    def _decode_device(self) -> str | None:
        """The device JPEGs are decoded on by torchvision, or None for PIL decoding."""
        decode = getattr(self, "decode", "cpu")
        cuda = str(self._device).startswith("cuda")
        tensor_ok = self.__dict__.get("_tensor_preprocess") is not None
        if decode == "gpu":
            if not cuda:
                raise ValueError(f"decode='gpu' needs device='cuda'; the model is on {self._device!r}.")
            if not tensor_ok:
                raise ValueError(
                    "decode='gpu': this model's evaluation transform has steps with no tensor "
                    f"equivalent ({self._preprocess!r}); use decode='cpu'."
                )
            return self._device
        return self._device if decode == "auto" and cuda and tensor_ok else None

    def _read_one(self, source: Any):
        """(JpegFile or None, error): the bytes the tensor decoder takes, read in a thread."""
        try:
            return sniff(source, self.image_root), None
        except ImageLoadError as exc:
            return None, exc

    def _load_one(self, source: Any, finish: Callable | None = None):
        """(tensor or None, error): one image decoded, then ``finish`` (default: the model's
        whole transform; :meth:`Uint8Preprocess.pixels` stops at 8-bit pixels)."""
        try:
            if not is_image_source(source):
                raise ImageLoadError(source, _NOT_AN_IMAGE)
            image = load_image(source, self.image_root, self._draft_size)
            return (finish or self._preprocess)(image), None
        except ImageLoadError as exc:
            return None, exc

    def _batches(self, sources: list, todo: list[int], errors: dict) -> Iterator:
        """Yield (indices, stacked tensor or None) while the next images decode in threads.

        Where the transform allows it (:class:`Uint8Preprocess`) the threads stop at 8-bit
        pixels and the batch is normalised in one step by :meth:`_run_batch`.
        """
        split = self.__dict__.get("_uint8_preprocess")
        load = self._load_one if split is None else partial(self._load_one, finish=split.pixels)

        batch_size = self._batch_size()
        window = max(2 * batch_size, 2 * self.num_workers)
        indices: list[int] = []
        tensors: list = []
        buffers: list = []
        with thread_pool(self.num_workers) as pool:
            pending: deque[tuple[int, Future | tuple]] = deque()
            position = 0
            while position < len(todo) or pending:
                while pool is not None and position < len(todo) and len(pending) < window:
                    i = todo[position]
                    pending.append((i, pool.submit(load, sources[i])))
                    position += 1
                if pool is None:
                    i = todo[position]
                    pending.append((i, load(sources[i])))
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
                        yield indices, self._stack(tensors, buffers)
                    indices, tensors = [], []

    def _stack(self, tensors: list, buffers: list):
        """Stack a batch; for a GPU, into one of two reused pinned buffers (fast async copy)."""
        if not str(self._device).startswith("cuda"):
            return torch.stack(tensors)
        shape = (self._batch_size(), *tensors[0].shape)
        if not buffers or buffers[0].shape != shape:
            buffers[:] = [torch.empty(shape, dtype=tensors[0].dtype).pin_memory() for _ in range(2)]
        # Alternate buffers: the previous batch's copy may still be reading the other one.
        buffers.reverse()
        return torch.stack(tensors, out=buffers[0][: len(tensors)])

    def _run_batch(self, batch) -> np.ndarray:
        forward = self._forward_function()
        batch = batch.to(self._device, non_blocking=True)
        if batch.dtype == torch.uint8 and self.__dict__.get("_uint8_preprocess") is not None:
            # (B, H, W, 3) pixels from Uint8Preprocess.pixels (dlib's uint8 images are its input)
            batch = self._uint8_preprocess.normalize(batch)
        if self._channels_last():
            batch = batch.contiguous(memory_format=torch.channels_last)
        else:
            batch = batch.contiguous()
        with torch.inference_mode(), self._autocast():
            features = forward(batch)
            if self.tta:
                features = (features + forward(torch.flip(batch, dims=[-1]))) / 2
        return features.float().cpu().numpy()

    def _forward_function(self) -> Callable:
        """The forward pass on the built model, through ``torch.compile`` when asked."""
        forward = partial(self._forward, self._model)
        if not getattr(self, "torch_compile", False):
            return forward
        if self.__dict__.get("_compiled") is None:
            self._compiled = torch.compile(forward)
        return self._compiled

    def _autocast(self):
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
            # Decoders differ in rounding: results of one are not hits for the other.
            **({"decoder": "torchvision"} if self._decode_device() is not None else {}),
        }

    def _batch_size(self) -> int:
        """Images per forward pass on the device the model is on."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return self._cpu_batch_size if str(self._device).split(":")[0] == "cpu" else 64

    # -- inputs -------------------------------------------------------------------------------
    def _validate_runtime_params(self) -> None:
        """Check the parameters again at ``transform``: ``set_params`` after ``fit`` (device,
        batch size, ``on_error``, ...) needs no refit, so a bad value must be caught here too."""
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()

    def _as_columns(self, X: Any, reset: bool) -> tuple[list[list], list[str] | None]:
        """Normalise X into image columns (lists of equal length) and their names."""
        if sp.issparse(X):
            raise TypeError(
                f"X is a sparse {type(X).__name__}: sparse input is not supported; image embedders take "
                "images (file paths, PIL images, HxWxC arrays), not sparse feature tables."
            )
        if isinstance(X, (str, os.PathLike, Image.Image)):
            raise ValueError(
                f"X must be a sequence of images, got a single {type(X).__name__}; wrap it in a list."
            )
        # a polars / pyarrow table is iterable too, but yields its columns, not rows of images
        X = as_pandas(X)
        if isinstance(X, pd.DataFrame):
            table: Any = X
            columns = [X.iloc[:, j].tolist() for j in range(X.shape[1])]
        elif isinstance(X, pd.Series):
            table = X.to_numpy(dtype=object).reshape(-1, 1)
            columns = [X.tolist()]
        else:
            table = object_table(X)
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


@estimator_parameters
class NetworkEmbedder(BaseEmbedder):
    """An embedder whose torch network takes its weights from ``pretrained``.

    Adds the network's settings to the base's: the model and its weights, where JPEGs are
    decoded, compilation, precision, how the weights are pickled and the seed of a random
    initialisation. Subclasses give ``model_name`` and ``pretrained`` their defaults.

    Examples
    --------
    A new embedder says how to build its network and preprocessing (``_create_model``) and
    names its weights (``_weights_identity``); batching, devices, the cache, bad images and
    pickling come from the base:

    >>> import numpy as np
    >>> import torch
    >>> from torch import nn
    >>> from skpercept.embed.base import NetworkEmbedder
    >>> def to_tensor(image):  # RGB PIL image -> CHW float tensor
    ...     pixels = np.asarray(image.resize((8, 8)), dtype=np.float32) / 255
    ...     return torch.from_numpy(pixels).permute(2, 0, 1)
    >>> class MeanColourEmbedder(NetworkEmbedder):
    ...     def _create_model(self, load_weights):
    ...         net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # no weights at all
    ...         return net, to_tensor, 3
    ...
    ...     def _weights_identity(self):
    ...         return "mean-colour"
    >>> images = [np.zeros((20, 20, 3), dtype=np.uint8), np.full((20, 20, 3), 255, dtype=np.uint8)]
    >>> emb = MeanColourEmbedder(model_name="mean-colour", device="cpu", normalize=False)
    >>> emb.fit_transform(images)
    array([[0., 0., 0.],
           [1., 1., 1.]], dtype=float32)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseEmbedder._parameter_constraints,
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "decode": [StrOptions({"auto", "cpu", "gpu"})],
        "torch_compile": ["boolean"],
        "precision": [StrOptions({"fp32", "fp16", "bf16"})],
        "bundle_weights": ["boolean", StrOptions({"auto"})],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
    }

    model_name: str
    pretrained: str | os.PathLike | None = None
    decode: str = "auto"
    torch_compile: bool = False
    precision: str = "fp32"
    bundle_weights: bool | str = "auto"
    random_state: int | None = 0


class _FirstError(Exception):
    """Carries the first failure out of the pipeline when ``on_error='raise'``."""

    def __init__(self, index: int, error: ImageLoadError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def as_text(value: Any) -> str | None:
    """A weights source as text (a path as its string), None as None: how it is pickled.

    Examples
    --------
    >>> from pathlib import Path
    >>> from skpercept.embed.base import as_text
    >>> as_text(Path("weights") / "lite0.pt"), as_text("auto"), as_text(None)
    ('weights/lite0.pt', 'auto', None)
    """
    if value is None:
        return None
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _resize_side(preprocess: Callable) -> int | None:
    """The shorter side the preprocessing resizes to (the JPEG draft target), if found."""
    for step in getattr(preprocess, "transforms", []):
        if type(step).__name__ in ("Resize", "ResizeKeepRatio"):
            size = step.size
            return int(size if isinstance(size, int) else min(size))
    return None


def thread_pool(num_workers: int):
    """The decoding threads of ``num_workers`` (none at 0: decode in the calling thread).

    Examples
    --------
    >>> from skpercept.embed.base import thread_pool
    >>> with thread_pool(2) as pool:
    ...     list(pool.map(abs, [-1, -2]))
    [1, 2]
    >>> with thread_pool(0) as pool:  # no threads: a context that gives None
    ...     pool is None
    True
    """
    return ThreadPoolExecutor(num_workers) if num_workers > 0 else nullcontext()
