"""Progress bars for long calls: shown where a person is watching, silent everywhere else.

Every public call that can run for minutes takes ``progress`` with one meaning: ``'auto'``
(the default) shows a tqdm bar when standard error is a terminal or the call runs in a
Jupyter kernel, and nothing in pipes, log files, CI jobs and tests; ``True`` always shows it,
``False`` never does. A silent call that runs for minutes cannot be told from a hung one,
while a bar written into a log file is only noise; 'auto' gives each audience what it needs.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

from skpercept._compat import StrOptions

__all__ = ["PROGRESS_CONSTRAINT", "person_watching", "progress_bar", "show_progress"]

#: The ``_parameter_constraints`` entry of every ``progress`` parameter.
PROGRESS_CONSTRAINT: list = ["boolean", StrOptions({"auto"})]


def person_watching(stream: TextIO | None = None) -> bool:
    """Whether a person is likely to see ``stream`` (default ``sys.stderr``) as it is written.

    True in a Jupyter (IPython kernel) session and when the stream is a terminal; False when it
    is redirected to a file or a pipe, or captured (pytest, subprocess).
    """
    if _in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def show_progress(progress: Any) -> bool:
    """``progress`` (``'auto'``, True or False) resolved to whether to show a bar now."""
    if isinstance(progress, str) and progress == "auto":
        return person_watching()
    return bool(progress)


def progress_bar(total: int, progress: Any, desc: str, unit: str):
    """A tqdm bar over ``total`` units, disabled unless :func:`show_progress` says to show it."""
    return tqdm(total=total, disable=not show_progress(progress), desc=desc, unit=unit)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (never imports IPython: only looks for a running one)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
