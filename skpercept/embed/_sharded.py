"""Sharded embedding of large collections across Dask workers, resumable and in input order.

:func:`embed_sharded` cuts the input into shards of ``shard_size`` rows; each shard is embedded
by a Dask worker with its own copy of the embedder (built once per worker thread) and written by
that worker, atomically, as ``shard-NNNNNN.npy`` beside a small ``shard-NNNNNN.json`` record of
the shard's rows and a digest of its input *contents* and of the embedder's parameters. The
client only receives those records, never the embeddings, and finally writes ``manifest.json``.
:class:`ShardedEmbeddings` reads the shards back, memory-mapped, in input order.

Why these guarantees hold:

- **Order and completeness.** Shard ``k`` always holds input rows ``[k * shard_size, ...)``,
  whichever worker computed it and however often, so the shards concatenated by index are the
  input order, with one row per input row and no row twice.
- **Killed workers.** Dask's scheduler reschedules the tasks of a worker that dies (up to
  ``distributed.scheduler.allowed-failures`` times); a shard's files are written with
  write-then-rename, so a killed worker leaves the complete shard or none, and a shard computed
  twice is written twice with the same content.
- **Resuming.** A shard is skipped when its record matches the digest of its current inputs
  (every image file's bytes, hashed on the worker) and its ``.npy`` has the recorded shape; an
  edited, added or removed image, other parameters or a damaged shard file mean a recompute.

Dask was chosen over Ray because it is the engine scikit-learn users already have: joblib's
``"dask"`` backend runs scikit-learn's own parallel loops (``GridSearchCV(n_jobs=-1)``,
``cross_validate``) on the same cluster, and the same ``Client`` addresses a laptop's
``LocalCluster``, a ``dask-scheduler`` on a few machines, or Kubernetes / SLURM / cloud clusters.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.base import clone

from skpercept._dataframes import as_pandas
from skpercept._io import atomic_write, check_input_file, write_bytes_atomic
from skpercept._progress import progress_bar
from skpercept._utils import optional_import
from skpercept.embed._decode import ImageLoadError

__all__ = ["ShardedEmbeddings", "embed_sharded"]

_FORMAT = 1
#: Parameters that change how fast or where embeddings are computed, not their values (the
#: same choice as the embedding cache's key, so a rerun on other hardware reuses the shards).
_RUNTIME_PARAMS = frozenset(
    {
        "device",
        "batch_size",
        "num_workers",
        "progress",
        "cache_dir",
        "on_error",
        "bundle_weights",
        "torch_compile",
    }
)


def embed_sharded(
    embedder: Any,
    images: Any,
    out_dir: str | os.PathLike,
    *,
    client: Any = None,
    shard_size: int = 1024,
    resources: dict | None = None,
    retries: int = 0,
    progress: bool | str = "auto",
) -> ShardedEmbeddings:
    """Embed a large collection across Dask workers into ``.npy`` shards, in input order.

    Each worker embeds whole shards with its own copy of ``embedder`` and writes them itself,
    so the client's memory holds the inputs and one small record per shard, never the
    embeddings. Rerunning with the same ``out_dir`` skips every shard whose inputs (by content)
    and embedder parameters are unchanged; a worker that dies mid-shard has its shards
    recomputed elsewhere.

    Parameters
    ----------
    embedder : transformer
        An image embedder (:class:`~skpercept.embed.TimmEmbedder`,
        :class:`~skpercept.embed.CLIPEmbedder`, ...) or any transformer of images; fitted or
        not. It is cloned and each worker builds its own model from the parameters (embedders
        learn nothing from data), so weights named by ``pretrained`` must be readable on every
        worker, and randomly initialised weights need a fixed ``random_state``. Its
        ``cache_dir`` is used by every worker (entries are written atomically, so workers may
        share one folder); its ``on_error`` decides whether a bad image fails the run or gives
        a NaN row in place.
    images : sequence, Series, DataFrame or ndarray of images
        What ``embedder.transform`` takes; split into row ranges. File paths are best: a path
        costs the scheduler a few bytes, an in-memory image its pixels.
    out_dir : str or path-like
        Folder of the shards and ``manifest.json``, created if needed; it must be the same
        folder for the client and every worker (a local path on one machine, a shared file
        system across machines). It holds one collection: shards of a previous run of another
        collection are overwritten.
    client : distributed.Client, str or None, default=None
        The Dask client, or a scheduler address (``'tcp://host:8786'``) to connect to for this
        call. ``None`` uses the current default client if there is one, else embeds the shards
        one after the other in this process (same files, same resuming; no Dask needed).
    shard_size : int, default=1024
        Input rows per shard: large enough to amortise a task's overhead (a few ms), small
        enough that a lost worker costs little and each worker gets several shards.
    resources : dict or None, default=None
        Dask worker resources each shard needs, e.g. ``{"GPU": 1}`` for workers started with
        ``dask worker ADDRESS --resources GPU=1`` (one worker per GPU, each seeing its GPU
        through ``CUDA_VISIBLE_DEVICES``, as ``dask_cuda.LocalCUDACluster`` does).
    retries : int, default=0
        Times Dask retries a shard whose task *raised* (a flaky network file system). A worker
        that dies is handled by the scheduler whatever this is.
    progress : {'auto', True, False}, default='auto'
        A tqdm progress bar over the shards: ``'auto'`` shows it when a person is watching
        (standard error is a terminal, or a Jupyter notebook), ``True`` always, ``False``
        never. The workers' embedders show no bar of their own unless theirs is ``True``.

    Returns
    -------
    embeddings : ShardedEmbeddings
        Reads the shards back in input order (memory-mapped); ``computed_shards`` and
        ``reused_shards`` say what this call did.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.embed import embed_sharded
    >>> images = [np.full((32, 32, 3), i * 40, dtype=np.uint8) for i in range(5)]
    >>> emb = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu")
    >>> out = embed_sharded(emb, images, tempfile.mkdtemp(), shard_size=2)
    >>> out.shape, out.n_shards, out.computed_shards
    ((5, 256), 3, (0, 1, 2))
    >>> np.allclose(out[:], emb.fit(images).transform(images), atol=1e-6)
    True
    """
    if not isinstance(shard_size, (int, np.integer)) or isinstance(shard_size, bool) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}.")
    images = _as_rows(images)
    n_rows = len(images)
    if n_rows == 0:
        raise ValueError("images is empty: there is nothing to embed.")
    payload = clone(embedder)
    if payload.get_params(deep=False).get("progress") == "auto":
        # The shards' bar says how far the call is; each worker's bars would garble it.
        payload.set_params(progress=False)
    identity = _identity(payload)
    token = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=12).hexdigest()
    # Workers keep their model for the shards of this call only: a later call may differ in
    # parameters the identity leaves out (device, batch size, on_error) or in input columns.
    instance = uuid.uuid4().hex
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Shards are about to change: until this run ends, the folder reads as unfinished.
    (out_dir / "manifest.json").unlink(missing_ok=True)
    bounds = [(start, min(start + shard_size, n_rows)) for start in range(0, n_rows, shard_size)]
    jobs = [
        (payload, instance, token, k, start, _take(images, start, stop), str(out_dir))
        for k, (start, stop) in enumerate(bounds)
    ]
    # A task rerun after its worker died may report twice; its files are the same either way.
    by_shard = {record["shard"]: record for record in _run(jobs, client, resources, retries, progress)}
    if sorted(by_shard) != list(range(len(jobs))):
        raise RuntimeError(f"Shards {sorted(set(range(len(jobs))) - set(by_shard))} were not reported.")
    records = [by_shard[k] for k in range(len(jobs))]
    widths = {record["width"] for record in records}
    if len(widths) != 1:
        raise RuntimeError(
            f"The shards have different widths {sorted(widths)}: the embedder's output width varies."
        )
    manifest = {
        "format": _FORMAT,
        "n_rows": n_rows,
        "width": widths.pop(),
        "dtype": "float32",
        "shard_size": int(shard_size),
        "identity": identity,
        "shards": [
            {key: record[key] for key in ("file", "start", "stop", "digest", "nan_rows")}
            for record in records
        ],
    }
    write_bytes_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1).encode(), together=False)
    _remove_leftovers(out_dir, len(records))
    result = ShardedEmbeddings(out_dir)
    result.computed_shards = tuple(r["shard"] for r in records if not r["reused"])
    result.reused_shards = tuple(r["shard"] for r in records if r["reused"])
    return result


class ShardedEmbeddings:
    """The embeddings that :func:`embed_sharded` wrote, read back in input order.

    Indexing reads only the shards it needs, memory-mapped; ``np.asarray(embeddings)`` (or
    ``embeddings[:]``) loads everything. The manifest and every shard's shape are checked
    when the folder is opened.

    Parameters
    ----------
    out_dir : str or path-like
        A folder written by :func:`embed_sharded`.

    Attributes
    ----------
    shape : tuple of int
        ``(n_rows, width)``.
    n_shards : int
        Number of shard files.
    shard_paths : list of Path
        The ``.npy`` files, in input order.
    computed_shards, reused_shards : tuple of int or None
        Set by :func:`embed_sharded`: shards computed in that call and shards it found
        complete; ``None`` for a folder opened directly.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skpercept.embed import ShardedEmbeddings, TimmEmbedder, embed_sharded
    >>> images = [np.full((32, 32, 3), i * 40, dtype=np.uint8) for i in range(5)]
    >>> emb = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu")
    >>> folder = tempfile.mkdtemp()
    >>> _ = embed_sharded(emb, images, folder, shard_size=2)
    >>> out = ShardedEmbeddings(folder)  # reopen the finished folder
    >>> len(out), out.shape, out.n_shards, out.computed_shards
    (5, (5, 256), 3, None)
    >>> out[[0, 4]].shape, np.asarray(out).dtype
    ((2, 256), dtype('float32'))
    >>> [start for start, shard in out.iter_shards()]
    [0, 2, 4]
    """

    dtype = np.dtype(np.float32)

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir).expanduser()
        manifest_path = self.out_dir / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"{manifest_path} does not exist: the sharded run has not finished.")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != _FORMAT:
            raise ValueError(f"{manifest_path} has an unknown format {self.manifest.get('format')!r}.")
        shards = self.manifest["shards"]
        self.shard_paths = [self.out_dir / shard["file"] for shard in shards]
        self._starts = np.array([shard["start"] for shard in shards] + [self.manifest["n_rows"]])
        self.shape = (int(self.manifest["n_rows"]), int(self.manifest["width"]))
        stops = [0] + [shard["stop"] for shard in shards]
        if [shard["start"] for shard in shards] != stops[:-1] or stops[-1] != self.shape[0]:
            raise ValueError(
                f"{manifest_path}: the shards do not cover rows 0..{self.shape[0] - 1} once each."
            )
        for shard, path in zip(shards, self.shard_paths):
            found = np.load(path, mmap_mode="r").shape
            if found != (shard["stop"] - shard["start"], self.shape[1]):
                raise ValueError(f"{path} has shape {found}, not the manifest's; rerun embed_sharded.")
        self.computed_shards: tuple[int, ...] | None = None
        self.reused_shards: tuple[int, ...] | None = None

    @property
    def n_shards(self) -> int:
        return len(self.shard_paths)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ShardedEmbeddings({str(self.out_dir)!r}, shape={self.shape}, n_shards={self.n_shards})"

    def iter_shards(self) -> Iterator[tuple[int, np.memmap]]:
        """Yield ``(first input row, memory-mapped shard)`` in input order.

        Returns
        -------
        shards : iterator of (int, np.memmap)
        """
        for start, path in zip(self._starts, self.shard_paths):
            yield int(start), np.load(path, mmap_mode="r")

    def __getitem__(self, key: Any) -> np.ndarray:
        """Rows by int, slice, boolean mask or index array; ``[rows, columns]`` also works."""
        columns = slice(None)
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"at most two indices (rows, columns), got {len(key)}.")
            key, columns = key
        if isinstance(key, (int, np.integer)):
            row = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"row {key} is out of range for {self.shape[0]} rows.")
            shard = int(np.searchsorted(self._starts, row, side="right")) - 1
            return np.array(
                np.load(self.shard_paths[shard], mmap_mode="r")[row - self._starts[shard]][columns]
            )
        rows = np.arange(self.shape[0])[key]
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        owner = np.searchsorted(self._starts, rows, side="right") - 1
        for shard in np.unique(owner):
            mask = owner == shard
            data = np.load(self.shard_paths[shard], mmap_mode="r")
            out[mask] = data[rows[mask] - self._starts[shard]]
        return out[:, columns]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


# -- the shard task (runs on the workers) -------------------------------------------------------
#: One fitted embedder per (call, thread): workers reuse the model across shards, and
#: threads never share a model (a worker may run several threads).
_LOADED: dict[tuple[str, int], Any] = {}
_LOADED_LOCK = threading.Lock()


def _embed_shard(
    payload: Any, instance: str, token: str, k: int, start: int, chunk: Any, out_dir: str
) -> dict:
    """Embed one shard and write it, or find it already written; return its record."""
    out = Path(out_dir)
    name = f"shard-{k:06d}"
    digest = _shard_digest(token, chunk, getattr(payload, "image_root", None))
    stop = start + len(chunk)
    previous = _read_record(out / f"{name}.json")
    if previous is not None and (previous["digest"], previous["start"], previous["stop"]) == (
        digest,
        start,
        stop,
    ):
        try:
            shape = np.load(out / previous["file"], mmap_mode="r").shape
        except (OSError, ValueError):
            shape = None
        if shape == (stop - start, previous["width"]):
            return {**previous, "reused": True}
    embedder = _fitted(payload, instance, chunk)
    try:
        vectors = np.asarray(embedder.transform(chunk), dtype=np.float32)
    except ImageLoadError as exc:
        raise _ShardImageError(str(exc.source), exc.reason, start) from None
    with atomic_write(out / f"{name}.npy", together=False) as file:  # resumable: each shard at once
        np.save(file, vectors, allow_pickle=False)
    record = {
        "shard": k,
        "file": f"{name}.npy",
        "start": start,
        "stop": stop,
        "width": int(vectors.shape[1]),
        "digest": digest,
        "nan_rows": int(np.isnan(vectors).any(axis=1).sum()),
    }
    # The record is written last: it is what marks the shard complete.
    write_bytes_atomic(out / f"{name}.json", json.dumps(record).encode(), together=False)
    return {**record, "reused": False}


def _fitted(payload: Any, instance: str, chunk: Any) -> Any:
    key = (instance, threading.get_ident())
    with _LOADED_LOCK:
        embedder = _LOADED.get(key)
        if embedder is None:
            # One model per thread: a new call's embedder replaces this thread's old one.
            for old in [old for old in _LOADED if old[1] == key[1]]:
                del _LOADED[old]
    if embedder is None:
        embedder = clone(payload).fit(chunk)
        with _LOADED_LOCK:
            _LOADED[key] = embedder
    return embedder


class _ShardImageError(Exception):
    """A bad image under ``on_error='raise'``, in a form that pickles back to the client."""


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- the client side ----------------------------------------------------------------------------
def _run(jobs: list, client: Any, resources: dict | None, retries: int, progress: bool | str) -> list[dict]:
    bar = progress_bar(len(jobs), progress, "shards", unit="shard")
    records = []
    try:
        client, own = _client(client)
        if client is None:
            try:
                for job in jobs:
                    records.append(_checked(lambda job=job: _embed_shard(*job)))
                    bar.update()
            finally:
                with _LOADED_LOCK:  # this process is the client: free the model now
                    _LOADED.pop((jobs[0][1], threading.get_ident()), None)
            return records
        distributed = optional_import("distributed", "dask")
        futures = [
            client.submit(
                _embed_shard,
                *job,
                key=f"skpercept-shard-{job[1][:12]}-{job[3]}",
                pure=False,
                resources=resources,
                retries=retries,
            )
            for job in jobs
        ]
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                records.append(_checked(future.result))
                future.release()
                bar.update()
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            if own:
                client.close()
    finally:
        bar.close()
    return records


def _checked(compute) -> dict:
    try:
        return compute()
    except _ShardImageError as exc:
        source, reason, start = exc.args
        # The embedder numbers rows within the shard; report the row of the whole input.
        reason = re.sub(r"\(row (\d+)", lambda m: f"(row {int(m[1]) + start}", reason, count=1)
        raise ImageLoadError(source, reason) from None


def _client(client: Any) -> tuple[Any, bool]:
    """(client or None, whether this call opened it and must close it)."""
    if isinstance(client, str):
        return optional_import("distributed", "dask").Client(client), True
    if client is not None:
        return client, False
    try:
        from distributed import default_client
    except ImportError:
        return None, False
    try:
        return default_client(), False
    except ValueError:
        return None, False


def _remove_leftovers(out_dir: Path, n_shards: int) -> None:
    """Delete temporary files of killed writers and shards of an earlier, longer collection."""
    for tmp in out_dir.glob(".shard-*.tmp"):
        tmp.unlink(missing_ok=True)
    for path in [*out_dir.glob("shard-*.npy"), *out_dir.glob("shard-*.json")]:
        match = re.fullmatch(r"shard-(\d+)", path.stem)
        if match and int(match[1]) >= n_shards:
            path.unlink(missing_ok=True)


# -- inputs, identity and digests ---------------------------------------------------------------
def _as_rows(images: Any) -> Any:
    if isinstance(images, (str, os.PathLike, Image.Image)):
        raise ValueError(f"images must be a sequence of images, got a single {type(images).__name__}.")
    images = as_pandas(images)  # polars / pyarrow: sliced by rows like pandas, not by columns
    if isinstance(images, (pd.DataFrame, pd.Series, np.ndarray, list)):
        return images
    return list(images)


def _take(images: Any, start: int, stop: int) -> Any:
    return images.iloc[start:stop] if isinstance(images, (pd.DataFrame, pd.Series)) else images[start:stop]


def _identity(embedder: Any) -> dict:
    """What determines the embeddings' values: the class and every non-runtime parameter."""
    params = embedder.get_params(deep=True)
    if "pretrained" in params and params["pretrained"] is None and params.get("random_state", 0) is None:
        raise ValueError(
            "A randomly initialised embedder (pretrained=None) needs a fixed random_state to be "
            "embedded on several workers: with random_state=None each would draw other weights."
        )
    described = {}
    for name, value in sorted(params.items()):
        if name in _RUNTIME_PARAMS:
            continue
        if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().is_file():
            # A weights file: a replaced file must not reuse the old shards.
            stat = Path(value).expanduser().stat()
            value = f"{os.fspath(value)} ({stat.st_size} bytes, mtime {stat.st_mtime_ns})"
        described[name] = value if isinstance(value, (int, float, bool, type(None))) else repr(value)
    return {"class": f"{type(embedder).__module__}.{type(embedder).__qualname__}", "params": described}


def _shard_digest(token: str, chunk: Any, image_root: Any) -> str:
    """A digest of the embedder's identity and of every input image's content, in order."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(token.encode())
    cells = list(_cells(chunk))
    digest.update(f"|{len(chunk)}x{len(cells)}|".encode())
    for cell in cells:
        digest.update(_cell_digest(cell, image_root))
    return digest.hexdigest()


def _cells(chunk: Any) -> Iterator[Any]:
    if isinstance(chunk, pd.DataFrame):
        yield from chunk.to_numpy(dtype=object).ravel()
    elif isinstance(chunk, pd.Series):
        yield from chunk.tolist()
    elif isinstance(chunk, np.ndarray) and chunk.dtype != object and chunk.dtype.kind not in "US":
        yield from chunk  # a stack of images: one cell per image
    else:
        for row in chunk:
            yield from row if isinstance(row, (list, tuple)) else [row]


def _cell_digest(cell: Any, image_root: Any) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    if isinstance(cell, (str, os.PathLike)):
        path = Path(cell).expanduser()
        if image_root is not None and not path.is_absolute():
            path = Path(image_root).expanduser() / path
        try:
            with open(check_input_file(path), "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    hasher.update(block)
        except OSError as exc:
            # Unreadable now, maybe readable on a rerun: the digest must then differ.
            hasher.update(f"unreadable:{path}:{type(exc).__name__}".encode())
    elif isinstance(cell, Image.Image):
        hasher.update(f"PIL:{cell.mode}:{cell.size}".encode())
        hasher.update(cell.tobytes())
    elif isinstance(cell, np.ndarray):
        hasher.update(f"ndarray:{cell.dtype.str}:{cell.shape}".encode())
        hasher.update(np.ascontiguousarray(cell).tobytes())
    else:
        hasher.update(f"{type(cell).__name__}:{cell!r}".encode())
    return hasher.digest()
