"""Atomic file writes: a reader (or the next run) sees the old file or the new one, never a part.

The data goes to a temporary file in the destination's folder, which is ``os.replace``-d over
the destination only once it is completely written. A failed write (disk full, a file-size
limit, Ctrl-C, a kill) removes the temporary file and leaves the previous file as it was. The
temporary file lives in the same folder because a rename is only atomic within one file system.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "write_bytes_atomic"]


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    mode : {'wb', 'w'}, default='wb'
        Binary or text.
    **open_kwargs
        Passed to :func:`open` for text mode (``encoding``, ``newline``).

    Yields
    ------
    file : file object
        Write to it; ``path`` is untouched until the block succeeds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept._io import atomic_write
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(path, "w", encoding="utf-8") as f:
    ...     _ = f.write("done")
    >>> path.read_text()
    'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **open_kwargs) as file:
            yield file
            file.flush()
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as file:
        file.write(data)
