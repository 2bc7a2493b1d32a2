"""Files in and out: nothing the user gave is replaced by accident, nothing is left half-written.

Writing
-------
:func:`atomic_write` sends a regular file's data to a temporary file in the destination's
folder, ``os.replace``-d over the destination only once it is completely written: a failed write
(disk full, a file-size limit, Ctrl-C, a kill) removes the temporary file and leaves the
previous file as it was. The new file gets the permissions a plain ``open(path, 'w')`` would
give it (the old file's mode when it replaces one, else ``0o666`` less the umask), not the
private mode of a temporary file. A symbolic link is written *through*: its target is written,
the link stays. A character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is
written to directly, never replaced by a file; anything else that is not a regular file (a
folder, a socket, a block device) is refused with :class:`OutputError`.

:func:`replace_together` makes every :func:`atomic_write` inside it one change: all the files
are written first, and only when every one of them is complete are they moved into place, so a
report folder or a CSV with its contact sheet is replaced together or not at all.

Reading
-------
:func:`check_input_file` admits only regular files (after following links) and caps their size,
so a FIFO cannot hang a read and a link to ``/dev/zero`` cannot exhaust the memory.
"""

from __future__ import annotations

import contextvars
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = [
    "MAX_INPUT_BYTES",
    "InputFileError",
    "OutputError",
    "atomic_write",
    "check_input_file",
    "file_kind",
    "new_file_mode",
    "replace_together",
    "write_bytes_atomic",
]

#: The largest file one read may load (2 GiB): an image or a table this large is a mistake, and
#: reading it whole would exhaust the memory.
MAX_INPUT_BYTES = 2 << 30

_UMASK_LOCK = threading.Lock()
# the temporary files of the enclosing replace_together block: [(tmp, destination), ...]
_GROUP: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "skpercept_replace_together", default=None
)


class OutputError(OSError):
    """An output path that skpercept will not write (a folder, a socket, ...)."""


class InputFileError(OSError):
    """An input path that is not a regular file, or one too large to read."""


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: 'a regular file', 'a FIFO (named pipe)', ..."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def new_file_mode() -> int:
    """The permissions a newly created file gets: ``0o666`` less the process's umask."""
    with _UMASK_LOCK:  # reading the umask means setting it; no other thread may see the change
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _destination(path: Path) -> tuple[Path, os.stat_result | None]:
    """Where a write to ``path`` lands (a link's target) and what is there now (None: nothing)."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        return target, os.stat(target)
    except FileNotFoundError:
        return target, None


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, together: bool = True, **open_kwargs
) -> Iterator[IO]:
    """Open ``path`` for a write that is all or nothing (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist. A link is written through to its target; a
        character device or a FIFO is written directly.
    mode : {'wb', 'w'}, default='wb'
        Binary or text.
    together : bool, default=True
        Inside :func:`replace_together`, wait for the group. False replaces the file as soon as
        it is written, group or not: for cache entries, which later work in the same group
        reads and which are not part of any output.
    **open_kwargs
        Passed to :func:`open` for text mode (``encoding``, ``newline``).

    Yields
    ------
    file : file object
        Write to it; ``path`` is untouched until the block succeeds (and, inside
        :func:`replace_together`, until the whole group succeeds).

    Raises
    ------
    OutputError
        ``path`` is a folder, a socket or a block device.

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
    target, current = _destination(Path(path))
    if current is not None and not stat.S_ISREG(current.st_mode):
        if stat.S_ISCHR(current.st_mode) or stat.S_ISFIFO(current.st_mode):
            with open(target, mode, **open_kwargs) as stream:  # a stream: written, never replaced
                yield stream
            return
        raise OutputError(
            f"{path} is {file_kind(current.st_mode)}; skpercept writes regular files, devices and FIFOs."
        )
    permissions = stat.S_IMODE(current.st_mode) if current is not None else new_file_mode()
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    group = _GROUP.get() if together else None
    try:
        with os.fdopen(handle, mode, **open_kwargs) as file:
            yield file
            file.flush()
        os.chmod(tmp, permissions)
        if group is None:
            os.replace(tmp, target)
        else:
            group.append((tmp, target))
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def replace_together() -> Iterator[None]:
    """Every :func:`atomic_write` in the block replaces its file only when the block succeeds.

    The files are complete on disk before the first one moves into place; a failure anywhere
    in the block (a full disk on the third file, Ctrl-C) removes them all and keeps every
    previous file. Blocks nest: an inner block joins the outer one.
    """
    if _GROUP.get() is not None:
        yield
        return
    pending: list[tuple[str, Path]] = []
    token = _GROUP.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _GROUP.reset(token)
    try:
        for tmp, target in pending:
            os.replace(tmp, target)
    finally:  # a rename that failed leaves the rest as temporary files: remove them
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, together: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb", together=together) as file:
        file.write(data)


def check_input_file(path: str | os.PathLike, max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """``path`` if it is a regular file (links followed) of at most ``max_bytes``.

    Raises
    ------
    FileNotFoundError
        Nothing is there.
    InputFileError
        A FIFO, a device, a socket or a folder (reading them would hang, never end or fail
        later), or a file larger than ``max_bytes``.
    """
    path = Path(path)
    info = os.stat(path)  # follows links; FileNotFoundError when nothing is there
    if not stat.S_ISREG(info.st_mode):
        via = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise InputFileError(f"{path} is {file_kind(info.st_mode)}{via}, not a regular file")
    if info.st_size > max_bytes:
        raise InputFileError(f"{path} is {info.st_size:,} bytes, more than the {max_bytes:,} read at once")
    return path
