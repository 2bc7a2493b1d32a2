"""Every file a command writes, in one place, checked against every file it reads before any work.

Each command names its outputs here (:func:`fit_outputs`, :func:`report_outputs`, ...);
:func:`check_outputs` then refuses, before any image is embedded or any model trained, an output
that is one of the run's inputs (the table, an image it lists or finds, a file of a reference
folder, a weights file, the model) or that another output of the same run would replace, and
an output that cannot be written (a folder where a file goes, a file where a folder goes, a
socket). Writing itself is :func:`skpercept._io.atomic_write`: regular files atomically with
the usual permissions, links through to their targets, devices and FIFOs directly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skpercept._io import atomic_write, file_kind, replace_together
from skpercept.cli._tables import CLIError
from skpercept.persistence import save_model
from skpercept.photos import collection_files

#: The files of a report folder (``evaluate``, ``compare``, ``demo``): the page and its plots.
REPORT_FILES = ("report.md", "scatter.png", "calibration.png")
#: The models ``skpercept demo`` saves beside its report.
DEMO_MODELS = ("ranker_model.joblib", "rating_model.joblib")


def fit_outputs(model: Path) -> dict[Path, str]:
    return {model: "--model"}


def predict_outputs(output: Path) -> dict[Path, str]:
    return {output: "--output"}


def report_outputs(
    folder: Path | None, attributes: Sequence[str] = (), *, people: bool = False
) -> dict[Path, str]:
    """``evaluate --output``: the report, its plots, the confusion matrices and the people's table."""
    if folder is None:
        return {}
    names = [*REPORT_FILES, *(f"confusion_{a}.png" for a in attributes)]
    if people:
        names += ["per_person.csv", "per_person.png"]
    return {folder / name: f"--output {folder}" for name in names}


def compare_outputs(folder: Path | None) -> dict[Path, str]:
    if folder is None:
        return {}
    return {folder / name: f"--output {folder}" for name in ("report.md", "compare.csv")}


def rank_outputs(folder: Path) -> dict[Path, str]:
    return dict.fromkeys(collection_files(folder).values(), f"--output {folder}")


def demo_outputs(folder: Path) -> dict[Path, str]:
    return {folder / name: f"--output {folder}" for name in (*DEMO_MODELS, *REPORT_FILES)}


def _key(path: Path) -> str:
    """One spelling per file: links followed, ``..`` and ``.`` resolved."""
    return os.path.realpath(path)


def check_outputs(outputs: Mapping[Path, str], inputs: Iterable[tuple[Path, str]]) -> None:
    """Refuse, before any work, an output that would destroy an input or another output.

    Parameters
    ----------
    outputs : mapping of Path to str
        Each file the run writes and the option that named it.
    inputs : iterable of (Path, str)
        Each file the run reads and what it is (``'the table'``, ``"an image of the table"``).
    """
    read = {}
    for path, what in inputs:
        read.setdefault(_key(Path(path)), (Path(path), what))
    written: dict[str, Path] = {}
    for path, option in outputs.items():
        key = _key(path)
        if key in read:
            source, what = read[key]
            raise CLIError(
                f"{option}: {path} is also an input of this command ({what}: {source}); writing there "
                "would destroy it. Choose another name or folder."
            )
        if key in written and written[key] != path:
            raise CLIError(
                f"{option}: {path} and {written[key]} are the same file; the second would replace the first."
            )
        written[key] = path
        _check_writable(path, option)


def _check_writable(path: Path, option: str) -> None:
    """An output file's place: its folder is (or can be) a folder, and it is not a folder itself."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        info = None
    if info is not None and not (
        stat.S_ISREG(info.st_mode) or stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)
    ):
        raise CLIError(f"{option}: {path} is {file_kind(info.st_mode)}; give the name of a file to write.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{option}: {parent} is a file, so {path} cannot be written inside it.")
            break


def table_inputs(loaded, columns: Sequence[str]) -> list[tuple[Path, str]]:
    """The table (or the reference folder's tables) and every image it names."""
    source = loaded.source
    found: list[tuple[Path, str]] = []
    if source.is_folder:
        found += [
            (path, "a table of the reference folder")
            for path in sorted(source.path.iterdir())
            if path.is_file()
        ]
    else:
        found.append((source.path, "the table"))
    for column in columns:
        if column in loaded.table.columns:
            found += [
                (Path(p), f"an image of column {column!r}") for p in loaded.table[column].astype(str).unique()
            ]
    return found


def weights_inputs(pretrained: Iterable[str], backbone: str = "") -> list[tuple[Path, str]]:
    """The weights files of ``--pretrained`` and the open_clip configs of ``--backbone``."""
    found = [(Path(value), "a weights file of --pretrained") for value in pretrained if Path(value).is_file()]
    for part in backbone.split("+"):
        library, _, model = part.strip().partition(":")
        if library == "open_clip" and model.lower().endswith(".json"):
            found.append((Path(model), "an open_clip config of --backbone"))
    return found


# -- writing ------------------------------------------------------------------------------------
@contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    """An output that fails to be written becomes one line saying what was kept."""
    try:
        yield
    except OSError as exc:
        kept = "the previous file was kept unchanged" if Path(path).exists() else "nothing was written"
        raise CLIError(f"cannot write the {what} {path}: {exc.strerror or exc}; {kept}.") from exc


def write_file(path, what: str, write: Callable[[Any], Any], mode: str = "wb", **open_kwargs) -> None:
    """Write one output atomically (:func:`skpercept._io.atomic_write`)."""
    path = Path(path)
    with writing(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, mode, **open_kwargs) as file:
            write(file)


def write_model(path, model) -> None:
    """Save a fitted model: ``*.skops`` in the safe format, else a checked pickle."""
    path = Path(path)
    with writing(path, "model"):
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, path)


@contextmanager
def written_together(folder: Path, what: str) -> Iterator[None]:
    """The files of one output folder (a report, a ranking and its contact sheet) replaced
    together or not at all; a failure says the files already there were kept whole."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with replace_together():
            yield
    except OSError as exc:
        raise CLIError(
            f"cannot write the {what} to {folder}: {exc.strerror or exc}; files already there were kept whole."
        ) from exc
