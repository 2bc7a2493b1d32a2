"""The reference labelling system's Excel folder as input of the ``skpercept`` command.

A folder given where a table is expected is read with
:func:`skpercept.datasets.load_perception_xlsx`: ratings (``big_label.xlsx``), comparisons
(``big_compare_label.xlsx``), images (``big_data.xlsx``) and pairs (``big_compares.xlsx``), or the
file names given with ``--ratings-file`` and so on. The attributes are the columns of the label
table that the schema does not reserve (``_id``, ``user_id``, ``item_id``, ``lang``,
``insert_time``), unless named with ``--attributes``. The comparisons' coding of 1 and 2 is
never guessed: ``--one-means first|second`` is required to read them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from skpercept.cli._tables import CLIError, describe_skipped, pick_attributes, read_table
from skpercept.datasets import load_perception_xlsx

#: Option name and default file of each table of the reference schema.
TABLE_OPTIONS = {
    "ratings": ("--ratings-file", "big_label.xlsx"),
    "comparisons": ("--comparisons-file", "big_compare_label.xlsx"),
    "images": ("--images-file", "big_data.xlsx"),
    "pairs": ("--pairs-file", "big_compares.xlsx"),
}
_SCHEMA_COLUMNS = ["item_id"]  # _id, user_id, lang and insert_time are skipped as ids, language, time


def _table_files(folder: Path, files: Mapping[str, str | None]) -> dict[str, Path | None]:
    """Each table's path, or None when its file is absent (a csv of the same name also counts).

    ``files`` holds the file names given with ``--ratings-file`` and the like (None: the default).
    """
    found = {}
    for kind, (option, default) in TABLE_OPTIONS.items():
        given = files.get(kind)
        path = folder / (given or default)
        if given and not path.is_file():
            raise CLIError(f"{option} {given}: no such file in {folder}.")
        if not path.is_file() and path.with_suffix(".csv").is_file():
            path = path.with_suffix(".csv")
        found[kind] = path if path.is_file() else None
    return found


def folder_task(folder: Path, files: Mapping[str, str | None], task: str | None) -> str:
    """``'pairs'`` or ``'rating'`` for a folder: asked for, else comparisons when there are some."""
    files = _table_files(folder, files)
    labels = {"pairs": files["comparisons"], "rating": files["ratings"]}
    if task is not None:
        if labels[task] is None:
            kind = "comparisons" if task == "pairs" else "ratings"
            option, default = TABLE_OPTIONS[kind]
            raise CLIError(
                f"{folder}: a {task} model needs the {kind} table, and there is no {default} "
                f"(name the file with {option})."
            )
        return task
    if labels["pairs"] is not None:
        return "pairs"
    if labels["rating"] is not None:
        return "rating"
    names = ", ".join(default for _, default in TABLE_OPTIONS.values())
    raise CLIError(
        f"{folder} is a folder but holds no table of the reference schema ({names}); pass a table "
        "file, or name the tables with --ratings-file / --comparisons-file."
    )


def load_folder(
    folder: Path,
    files: Mapping[str, str | None],
    one_means: str | None,
    image_root: Path | None,
    task: str | None,
    attributes=None,
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """The judgments of a reference-schema folder as a table the command reads, its task, attributes.

    Ratings come back as ``judgment_id, user_id, image, <attributes>, [lang, insert_time]``,
    comparisons as ``judgment_id, user_id, image_a, image_b, <attributes>, ...`` with 1.0 where
    ``image_a`` (the pair's first image) was chosen, as :func:`load_perception_xlsx` returns them.
    """
    task = folder_task(folder, files, task)
    files = _table_files(folder, files)
    labels = files["comparisons" if task == "pairs" else "ratings"]
    if task == "pairs" and not one_means:
        raise CLIError(
            f"{folder}: reading comparisons needs --one-means first or --one-means second: what the value 1 "
            f"in {labels.name} says (first = the pair's first image, im1, was chosen). The reference "
            "system's own scripts disagree on it, so skpercept never guesses; check a few pairs you can "
            "judge yourself."
        )
    header = read_table(labels)
    chosen, skipped = pick_attributes(header, labels, attributes, exclude=_SCHEMA_COLUMNS)
    # Read every attribute column of the schema: a judgment of another attribute than the chosen
    # ones is a valid row of the folder, not a row "with no value", and is set aside below.
    try:
        every, _ = pick_attributes(header.copy(), labels, None, exclude=_SCHEMA_COLUMNS)
    except CLIError:  # no other attribute-like column
        every = []
    read = list(dict.fromkeys([*chosen, *every]))
    if skipped and log is not None:
        log(f"Columns of {labels.name} not used as attributes: {describe_skipped(skipped)}.")
    # comparisons without an image table must name their files in the pair table (im1_path, im2_path)
    for kind in ("pairs",) if task == "pairs" else ("images",):
        if files[kind] is None:
            option, default = TABLE_OPTIONS[kind]
            raise CLIError(f"{folder}: the {kind} table {default} is missing (name it with {option}).")
    try:
        data = load_perception_xlsx(
            folder,
            one_means=one_means or "first",  # unused without comparisons
            image_root=image_root,
            # relative to the folder as found, so a file given as ../x.xlsx is the file read
            ratings=os.path.relpath(labels, folder) if task == "rating" else None,
            comparisons=os.path.relpath(labels, folder) if task == "pairs" else None,
            images=os.path.relpath(files["images"], folder) if files["images"] is not None else None,
            pairs=os.path.relpath(files["pairs"], folder) if task == "pairs" else None,
            attributes=read,
            pair_key="path" if task == "pairs" and files["images"] is None else "auto",
        )
    except (ValueError, FileNotFoundError, IsADirectoryError) as exc:
        raise CLIError(f"{folder}: {exc}") from exc
    table = data.comparisons if task == "pairs" else data.ratings
    if table is None or table.empty:
        raise CLIError(f"{folder}: {labels.name} has no judgments.")
    other = table[chosen].isna().all(axis=1).to_numpy()
    if other.any():
        if other.all():
            raise CLIError(f"{folder}: {labels.name} has no judgment of {', '.join(chosen)}.")
        if log is not None:
            log(
                f"{int(other.sum())} judgment(s) of {labels.name} rate only other attributes than "
                f"{', '.join(chosen)}; not used."
            )
        table = table.loc[~other].reset_index(drop=True)
    table = table.drop(columns=[c for c in read if c not in chosen])
    return table, task, chosen
