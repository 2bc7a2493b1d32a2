"""What the benchmarks share: the named OMI feature sets, the hardware line, the result files.

Every benchmark writes what it prints to ``benchmarks/results/<name>.json`` (:func:`save_result`;
``--no-save``, or ``--results DIR`` for another folder, keeps that file as it is), and the documentation renders
its tables from those files, so a figure in the docs is always the one a run wrote.

The scripts beside this file put their own folder first on ``sys.path`` before importing it, so
they run from any current directory (``python benchmarks/omi.py``, ``python /abs/path/omi.py``,
``python -m benchmarks.omi``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skpercept._io import atomic_write
from skpercept.embed import make_backbones
from skpercept.recipes import embed_blocks
from skpercept.report import markdown_table

HERE = Path(__file__).resolve().parent
#: Where the result files live; the documentation reads them from here.
RESULTS_DIR = HERE / "results"

#: Feature set name -> (backbones, flip averaging).
FEATURE_PLANS = {
    "lite0": (["lite0"], False),
    "lite0 flip": (["lite0"], True),
    "lite2 flip": (["lite2"], True),
    "dlib": (["dlib"], False),
    "landmarks": (["landmarks"], False),
}
#: The feature sets that need the ``[face]`` extra.
FACE_SETS = ("dlib", "landmarks")
#: Feature sets made of others, their blocks side by side.
COMBINED_SETS = {
    "lite0 + lite2 flip": ["lite0 flip", "lite2 flip"],
    "lite0 flip + dlib": ["lite0 flip", "dlib"],
    "lite0 flip + dlib + landmarks": ["lite0 flip", "dlib", "landmarks"],
    "lite2 flip + dlib + landmarks": ["lite2 flip", "dlib", "landmarks"],
    "lite0 + lite2 flip + dlib + landmarks": ["lite0 flip", "lite2 flip", "dlib", "landmarks"],
}


def embed_feature_sets(omi, cache_dir, use_dlib: bool, device: str) -> tuple[dict, dict]:
    """Feature set name -> (Z, block sizes) for every face of ``omi`` (rows as ``omi.means``);
    and the embedding seconds per feature set.

    Sets: those of :data:`FEATURE_PLANS` and :data:`COMBINED_SETS`; the ones that need dlib
    (``'dlib'``, ``'landmarks'``: dlib's 68 landmarks in the eyes' frame) only with ``use_dlib``.
    """
    images = omi.means["image"].to_numpy()
    seconds, blocks = {}, {}
    for name, (backbones, flip) in FEATURE_PLANS.items():
        if name in FACE_SETS and not use_dlib:
            continue
        start = time.perf_counter()
        embedders = make_backbones(backbones, flip=flip, cache_dir=cache_dir, device=device, progress=True)
        blocks[name] = embed_blocks(embedders, images)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"embedded {name}: {seconds[name]} s", flush=True)
    for name, parts in COMBINED_SETS.items():
        if all(part in blocks for part in parts):
            blocks[name] = (
                np.hstack([blocks[part][0] for part in parts]),
                [size for part in parts for size in blocks[part][1]],
            )
    return blocks, seconds


def omi_embeddings(attributes: list[str] | None = None):
    """The shipped OMI faces (``load_omi(attributes)``) and their EfficientNet-Lite0 vectors
    (``TimmEmbedder()``, shipped weights, the default embedding cache), float32, one per face."""
    from skpercept import TimmEmbedder
    from skpercept.datasets import load_omi
    from skpercept.embed import default_cache_dir

    omi = load_omi(attributes)
    images = pd.Series(omi.means["image"].to_numpy(), name="image")
    Z = np.asarray(TimmEmbedder(cache_dir=default_cache_dir()).fit_transform(images), dtype=np.float32)
    return omi, Z


def omi_attributes(omi) -> pd.DataFrame:
    """The mean rating columns of OMI (one per attribute), without the face's ids."""
    return omi.means.drop(columns=["stimulus", "image"], errors="ignore").select_dtypes("number")


def hardware_line() -> str:
    """CPU, torch threads, CUDA and load: the hardware line every benchmark prints."""
    return (
        f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}; load average {os.getloadavg()[0]:.1f}"
    )


# -- result files ---------------------------------------------------------------------------------
def add_result_options(parser: argparse.ArgumentParser) -> None:
    """``--no-save`` and ``--results DIR``: whether, and where, the run writes its result files."""
    group = parser.add_argument_group("result file")
    group.add_argument(
        "--no-save", action="store_true", help="write no result file (the committed one stays as it is)"
    )
    group.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="write the result files (<name>.json) into DIR instead of benchmarks/results",
    )


def result_name(stem: str, *tags: str | None) -> str:
    """``stem`` plus one suffix per mode whose tables differ: ``result_name('omi', 'lora')`` is
    ``'omi-lora'``; empty tags are skipped."""
    parts = [re.sub(r"[^A-Za-z0-9.]+", "-", str(tag)).strip("-") for tag in tags if tag]
    return "-".join([stem, *parts])


def frame_table(
    table_id: str,
    title: str,
    frame: pd.DataFrame,
    *,
    note: str = "",
    floatfmt: str = ".3f",
    index: bool = True,
    strong: tuple[str, ...] = (),
) -> dict:
    """A table of the result file, its cells exactly as :func:`~skpercept.report.markdown_table`
    prints ``frame`` (so the printed table and the documented one cannot differ).

    ``strong``: cells whose rows are set in bold (the defaults), e.g. their first-column labels.
    """
    lines = markdown_table(frame, floatfmt=floatfmt, index=index).splitlines()
    rows = [_markdown_cells(line) for line in lines[2:]]
    if index and isinstance(frame.index, pd.MultiIndex):  # as markdown_table: one column per level
        frame, index = frame.reset_index(), False
    header = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    return table_record(table_id, title, header, rows, note=note, strong=strong)


def table_record(
    table_id: str, title: str, columns: list, rows: list, *, note: str = "", strong: tuple[str, ...] = ()
) -> dict:
    """A table of the result file from its header and rows of display strings."""
    record = {
        "id": table_id,
        "title": title,
        "columns": [str(c) for c in columns],
        "rows": [["—" if c is None else str(c) for c in row] for row in rows],
        "note": note,
    }
    if strong:
        record["strong"] = [k for k, row in enumerate(record["rows"]) if set(row) & set(strong)]
    return record


def _markdown_cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]  # the row without its outer pipes
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _uncommitted() -> bool:
    """Whether the code that makes the figures (the package, the benchmarks) differs from HEAD."""
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ":/skpercept", ":/benchmarks")
    return any(not line.endswith(".json") for line in changed.splitlines())


def save_result(
    args: argparse.Namespace, name: str, tables: list[dict], figures: dict, hardware: str | None = None
) -> Path | None:
    """Write ``benchmarks/results/<name>.json``: how it was run, its tables and its figures.

    The record: ``benchmark`` (name), ``command`` (the argv as run), ``commit`` (``git rev-parse
    HEAD``; ``uncommitted_changes``: the package or the benchmarks differ from it), ``date`` (UTC),
    ``hardware`` (:func:`hardware_line`, load average included), ``load_average`` (1, 5 and 15
    minutes, at the end of the run), ``tables`` and ``figures`` (the script's JSON line). Written
    to a temporary file and renamed into place. Nothing is written with ``--no-save``.
    """
    if getattr(args, "no_save", False):
        return None
    path = Path(getattr(args, "results", None) or RESULTS_DIR) / f"{name}.json"
    commit = _git("rev-parse", "HEAD")
    record = {
        "benchmark": name,
        "command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "commit": commit or None,
        "uncommitted_changes": _uncommitted() if commit else None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hardware": (hardware or hardware_line()).removeprefix("hardware: "),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "tables": tables,
        "figures": figures,
    }
    ids = [t["id"] for t in tables]
    if len(set(ids)) != len(ids):
        raise ValueError(f"table ids repeat: {ids}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as file:
        json.dump(record, file, indent=1, ensure_ascii=False, default=_plain)
        file.write("\n")
    print(f"result file: {path}", flush=True)
    return path


def _plain(value):
    """JSON for NumPy scalars and arrays, and for anything else its text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def slashed(values, fmt: str = ".3f") -> str:
    """``'0.810 / 0.774 / 0.741'``: one figure per attribute, as the tables show them."""
    return " / ".join(format(v, fmt) for v in values)
