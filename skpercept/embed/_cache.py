"""A persistent, content-keyed embedding cache: one small ``.npy`` file per image.

Layout: ``<cache_dir>/<model key>/<2 hex>/<content hash>.npy``. The model key hashes everything
that changes the numbers (embedder class, model name, weights identity, preprocessing,
precision, flip averaging); the content hash is of the image file's bytes, so a renamed or
copied file hits and an edited file misses.

One file per entry makes writes atomic without locks: each vector is written to a temporary
file in the same folder and ``os.replace``-d into place, so a process killed at any moment
(even ``kill -9``) leaves either the complete entry or none, and a rerun computes only what is
missing. A killed run may leave ``*.tmp`` files behind; they are never read, and
:meth:`EmbeddingCache.clean_temporary` removes them. Entries are not ``fsync``-ed, so a power
loss (not a process kill) can lose the most recent entries, never corrupt older ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from skpercept._io import atomic_write, write_bytes_atomic


def default_cache_dir() -> Path:
    """Where embeddings are cached.

    ``$SKPERCEPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/skpercept``, else ``~/.cache/skpercept``.

    Examples
    --------
    >>> from skpercept.embed import default_cache_dir
    >>> default_cache_dir().is_absolute()
    True
    """
    if os.environ.get("SKPERCEPT_CACHE_DIR"):
        return Path(os.environ["SKPERCEPT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "skpercept"


def model_key(identity: dict) -> str:
    """A short stable hash of a JSON-able description of the model and preprocessing."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class EmbeddingCache:
    """Read and atomically write per-image embedding vectors under one model key."""

    def __init__(self, cache_dir: str | os.PathLike, identity: dict) -> None:
        self.root = Path(cache_dir).expanduser() / model_key(identity)
        self.identity = identity

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached vector for a content hash, or None (a damaged entry counts as a miss)."""
        try:
            vector = np.load(self._path(key), allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError, EOFError):
            return None
        return vector if vector.ndim == 1 else None

    def put(self, key: str, vector: np.ndarray) -> None:
        """Store one vector; readers never see a partly written file."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.root / "identity.json").exists():
            write_bytes_atomic(
                self.root / "identity.json",
                json.dumps(self.identity, sort_keys=True, indent=1, default=str).encode(),
                together=False,
            )
        with atomic_write(path, together=False) as file:  # at once, even inside an output group
            np.save(file, np.asarray(vector, dtype=np.float32), allow_pickle=False)

    def clean_temporary(self) -> int:
        """Delete temporary files left by killed runs; return how many were removed."""
        removed = 0
        for tmp in self.root.glob("*/*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.npy"))
