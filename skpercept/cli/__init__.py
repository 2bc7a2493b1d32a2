"""The ``skpercept`` command: ``demo``, ``fit``, ``evaluate``, ``predict``, ``compare``, ``rank`` and
``label``.

``skpercept demo`` runs the main job on the shipped OMI faces, offline. ``fit`` / ``evaluate`` /
``predict`` do the same on your own data: a table (csv or xlsx) of ratings (columns ``image`` [+
``user_id``] + one column per attribute) or pairwise comparisons (``image_a``, ``image_b`` [+
``user_id``] + one column per attribute, 1 where ``image_a`` was preferred, 0 where ``image_b``
was, values between for shares of raters, empty = not judged), or a folder of the reference
labelling system's Excel tables (read by :func:`skpercept.datasets.load_perception_xlsx`, which
needs ``--one-means`` for comparisons). ``compare`` cross-validates several backbones and heads on
one table. ``label`` serves a local web app in which people label a folder of images, the next
question chosen by their model as it learns. With a user column, ``fit`` trains a per-person model;
``evaluate`` then reports accuracy per person and ``predict --user ID`` predicts for one person.

Each command is a module of this package with ``add_parser(subparsers)`` and ``run(options)``;
shared options and table reading are in ``_common``, every file a command writes in
``_outputs``. A saved model is a plain scikit-learn ``Pipeline`` (read it with
:func:`skpercept.persistence.load_model`): image paths (or a pairs table) in, predictions out. Its
``skpercept_info_`` dict records the task, the attribute names, the rating levels, the people and
any decision threshold, which ``evaluate`` and ``predict`` read. ``fit --model NAME.skops``
saves the safe format; any other name a pickle with a checksum (only load pickles you made or
trust: unpickling runs code from the file).

``predict`` writes every input column unchanged plus prediction columns that cannot pass for
labels: ``pred_<attribute>`` (and ``pred_<attribute>_expected``, ``p_<attribute>_<level>`` for a
classifier), ``p_<attribute>_a`` (P(image_a preferred)) for pairs, ``pred_<attribute>_score``
for single images scored by a pair model. No output may be an input of the run (checked before
any work); every output (model, predictions, report) is written to a temporary file and renamed
into place, so a failure or Ctrl-C never leaves half a file.
Errors in the input name the file, the row (as the spreadsheet numbers it: header = row 1) and
the column, and exit with status 2; ``--debug`` adds the traceback. Nothing is downloaded: a
backbone's weights must be on the machine (shipped, a local file, or an open_clip tag already in
open_clip's cache).

Run ``skpercept <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from skpercept.cli import compare, demo, evaluate, fit, label, predict, rank
from skpercept.cli._tables import CLIError
from skpercept.embed import ImageLoadError
from skpercept.personal import UserIdWarning

__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]

#: The command modules, in the order ``skpercept --help`` lists them.
COMMANDS = (demo, fit, evaluate, predict, compare, rank, label)


def build_parser() -> argparse.ArgumentParser:
    """The ``skpercept`` argument parser: one subcommand per module of :data:`COMMANDS`.

    Examples
    --------
    >>> from skpercept.cli import build_parser
    >>> options = build_parser().parse_args(["rank", "photos", "--output", "best", "--min-similarity", "0.6"])
    >>> options.command, options.folder, options.output, options.min_similarity
    ('rank', 'photos', 'best', 0.6)
    >>> options.run  # doctest: +ELLIPSIS
    <function run at 0x...>
    """
    parser = argparse.ArgumentParser(
        prog="skpercept",
        description="Learn how people perceive images: `skpercept demo` runs the whole job on the shipped "
        "OMI faces; fit / evaluate / predict / compare do it on your own csv or xlsx tables, or on a folder "
        "of the reference labelling system's Excel tables; rank keeps the best photo of each group; label collects "
        "judgments in a browser.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library warning during a command: one line, ``warning: <message>``, not a source line."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def _user_error(exc: BaseException) -> str | None:
    """The one-line message for an error in the user's input or setup, or None for a bug."""
    if isinstance(exc, (CLIError, ImageLoadError)):
        return str(exc)
    if isinstance(exc, ImportError) and "pip install" in str(exc):  # a missing optional extra
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:  # a file the input names: say which
        return f"{exc.filename}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skpercept`` console script; returns the exit status.

    Errors in the input (a file, row, column, id or model file) print one line naming it and
    return 2; ``--debug`` adds the traceback. Anything else is a bug and keeps its traceback.
    Ctrl-C prints one line and returns 130; outputs are written atomically, so none is left
    half-written. The command never downloads: the Hugging Face hub, where open_clip keeps
    some tags' weights, is read from its local cache only (unless ``HF_HUB_OFFLINE`` is set).

    Parameters
    ----------
    argv : sequence of str or None, default=None
        The arguments after ``skpercept``; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success (and for ``--help``), 2 for an error in the input or the options, 130
        when interrupted.

    Examples
    --------
    ``--help`` prints the usage and returns 0 instead of exiting:

    >>> import contextlib, io
    >>> from skpercept.cli import main
    >>> text = io.StringIO()
    >>> with contextlib.redirect_stdout(text):
    ...     status = main(["--help"])
    >>> status, text.getvalue().split()[:2]
    (0, ['usage:', 'skpercept'])

    An error in the input is one line on stderr and status 2:

    >>> errors = io.StringIO()
    >>> with contextlib.redirect_stderr(errors):
    ...     status = main(["rank", "no-such-folder"])
    >>> status, errors.getvalue().strip()
    (2, 'skpercept rank: error: no-such-folder is not a folder.')
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        options = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or an option argparse refused (2, its message printed)
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # the command names its ids' oddities itself, with the file and the column
            warnings.simplefilter("ignore", UserIdWarning)
            return int(options.run(options) or 0)
    except KeyboardInterrupt:
        print(f"skpercept {options.command}: interrupted (Ctrl-C).", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        if options.debug:
            traceback.print_exception(exc)
        print(f"skpercept {options.command}: error: {message}", file=sys.stderr)
        return 2
