"""Reading and checking the user's tables for the ``skpercept`` command.

Everything here turns a bad table into a :class:`CLIError` that names the file, the row(s),
the column and what to do. Rows are numbered as the spreadsheet shows them: the header is
row 1, so the first data row is row 2 (the line number in a csv file, the row number in Excel),
the same convention as :func:`skpercept.datasets.load_perception_xlsx`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from skpercept.personal import id_text, leading_zero_twins

PAIR_COLUMNS = ("image_a", "image_b")
KNOWN_NON_ATTRIBUTES = {"image", "image_a", "image_b", "user_id"}
PREDICTION_PREFIXES = ("pred_", "p_")
MAX_LISTED = 5
_INDEX_NAME = re.compile(r"^Unnamed: \d+$")
_ID_NAMES = {"id", "_id", "index", "idx", "row", "lang", "language", "locale"}
_TIME_WORDS = {"time", "date", "timestamp", "datetime", "created", "updated"}
_INTEGER_TEXT = re.compile(r"^-?\d+$")


class CLIError(Exception):
    """A problem with the user's input; printed as one line without a traceback.

    A command raises it naming the file, row and column at fault; :func:`~skpercept.cli.main`
    prints ``skpercept <command>: error: <message>`` and returns 2 (``--debug`` adds the
    traceback).

    Examples
    --------
    >>> import contextlib, io
    >>> from skpercept.cli import CLIError, main
    >>> try:
    ...     raise CLIError("ratings.csv row 3, column 'smart': 'high' is not a number.")
    ... except CLIError as error:
    ...     print(f"skpercept fit: error: {error}")
    skpercept fit: error: ratings.csv row 3, column 'smart': 'high' is not a number.
    >>> errors = io.StringIO()
    >>> with contextlib.redirect_stderr(errors):
    ...     status = main(["evaluate", "--model", "missing.skops", "ratings.csv"])
    >>> status, errors.getvalue().strip()
    (2, 'skpercept evaluate: error: Model file not found: missing.skops')
    """


def row_numbers(index: Iterable) -> list[int]:
    """Spreadsheet row numbers (header = row 1) of table index labels."""
    return [int(i) + 2 for i in index]


def rows_text(index: Iterable, limit: int = MAX_LISTED) -> str:
    """``'row 7'`` or ``'rows 3, 8, 9 (and 4 more)'`` for table index labels."""
    rows = row_numbers(index)
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows[:limit])) + more


# -- reading ------------------------------------------------------------------------------------
def _decode_error(path: Path, encoding: str) -> CLIError | None:
    """Where the file stops being ``encoding`` text, as a row number, or None if it decodes."""
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        row = raw.count(b"\n", 0, exc.start) + 1
        return CLIError(
            f"{path} row {row}: byte 0x{raw[exc.start]:02x} is not {encoding} text (the file is "
            "probably latin-1 / Windows-1252 or UTF-16). Save it as UTF-8, or pass its encoding "
            "with --encoding (e.g. --encoding latin-1)."
        )
    except LookupError:
        return CLIError(f"--encoding {encoding!r} is not an encoding Python knows.")
    return None


def read_table(
    path: str | Path, sheet: str | None = None, *, sep: str | None = None, encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read a csv / tsv / xlsx table; errors name the file.

    The index keeps each row's position in the file (blank rows are dropped, not renumbered),
    so ``index + 2`` is the row number the user sees.
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{path} is a folder, not a table file; pass the csv/tsv/xlsx file itself.")
    if not path.is_file():
        raise CLIError(f"Table file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            sheets = _check_workbook(path, sheet) if suffix != ".xls" else {}
            kwargs = dict(sheet_name=sheet or 0, engine="openpyxl" if suffix != ".xls" else None)
            table = pd.read_excel(path, dtype=object, **kwargs)
            header = pd.read_excel(path, header=None, nrows=1, **kwargs)
            table.attrs["sheets"] = sheets
        elif suffix in (".csv", ".tsv", ".txt"):
            kwargs = dict(sep=sep or ("\t" if suffix == ".tsv" else ","), encoding=encoding)
            # as text: ids keep their leading zeros (007 is not 7); numbers are parsed per column
            table = pd.read_csv(path, skip_blank_lines=False, dtype=object, **kwargs)
            header = pd.read_csv(path, header=None, nrows=1, **kwargs)
        else:
            raise CLIError(f"{path}: unsupported table format {suffix!r}; use .csv, .tsv or .xlsx.")
    except CLIError:
        raise
    except (UnicodeError, LookupError):
        raise _decode_error(path, encoding) or CLIError(
            f"Cannot read table {path}: not {encoding} text."
        ) from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path}: the file is empty (no header row).") from None
    except Exception as exc:  # pandas/openpyxl raise many kinds; the user needs the file name
        raise CLIError(f"Cannot read table {path}: {exc}") from exc
    names = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        if name and name != "nan":
            seen.setdefault(name, []).append(position)
    duplicated = {n: p for n, p in seen.items() if len(p) > 1}
    if duplicated:
        name, positions = next(iter(duplicated.items()))
        raise CLIError(
            f"{path}: column {name!r} appears {len(positions)} times in the header (columns "
            f"{', '.join(map(str, positions))}); rename or remove the copies."
        )
    table.columns = [str(c).strip() for c in table.columns]
    if len(table.columns) == 1 and suffix != ".tsv" and (sep or ",") == ",":
        for other, name in ((";", "semicolon"), ("\t", "tab")):
            if other in table.columns[0]:
                raise CLIError(
                    f"{path}: the header {table.columns[0]!r} is one column: the file looks "
                    f"{name}-separated. Pass --sep {other!r} or save it comma-separated."
                )
    table = table.dropna(how="all")
    if table.empty:
        raise CLIError(f"{path}: the table has no rows.")
    return table


def _check_workbook(path: Path, sheet: str | None) -> dict[str, list[str]]:
    """Each sheet's header row by sheet name, once the sheet read has been checked for what
    reads as empty but is not: merged cells (only a range's first cell holds the value) and
    formulas without a saved value (written by a program that does not compute them)."""
    formulas = openpyxl.load_workbook(path, data_only=False)
    names = formulas.sheetnames
    if sheet is not None and sheet not in names:
        raise CLIError(f"{path}: no sheet named {sheet!r}; its sheets are {names}.")
    sheet = sheet or names[0]
    merged = list(formulas[sheet].merged_cells.ranges)
    if merged:
        raise CLIError(
            f"{path}: sheet {sheet!r} has merged cells ({merged[0].coord}{' and more' if len(merged) > 1 else ''}); "
            "only the first cell of a merged range holds its value, so the others would read as empty. "
            "Unmerge them and fill the values in."
        )
    values = openpyxl.load_workbook(path, data_only=True)[sheet]
    for row in formulas[sheet].iter_rows():
        for cell in row:
            if cell.data_type == "f" and values[cell.coordinate].value is None:
                raise CLIError(
                    f"{path}: cell {cell.coordinate} of sheet {sheet!r} holds a formula ({cell.value}) with no saved "
                    "value (the program that wrote the file does not compute formulas); open and save it in a "
                    "spreadsheet program, or write the values."
                )
    return {
        name: [
            str(cell.value)
            for cell in next(formulas[name].iter_rows(max_row=1), ())
            if cell.value is not None
        ]
        for name in names
    }


def _other_sheets(table: pd.DataFrame, *needed: Sequence[str]) -> str:
    """A hint when the workbook has more sheets than the one read: the first sheet with one of
    the ``needed`` sets of columns, if one has them."""
    sheets = table.attrs.get("sheets") or {}
    if len(sheets) < 2:
        return ""
    for columns in needed:
        for name, header in sheets.items():
            if all(c in header for c in columns):
                return f" Sheet {name!r} has {', '.join(map(repr, columns))}: pass --sheet {name}."
    return f" The workbook has sheets {list(sheets)}; pick one with --sheet."


def infer_task(table: pd.DataFrame, path, task: str | None, *, model_task: bool = False) -> str:
    """``'pairs'`` or ``'rating'``: asked for (``--task`` or the model's task) or from the columns."""
    has_pairs = all(c in table.columns for c in PAIR_COLUMNS)
    if task is None:
        if has_pairs:
            return "pairs"
        if "image" in table.columns:
            return "rating"
        raise CLIError(
            f"{path}: cannot tell the task: the table needs an 'image' column (ratings) or "
            f"'image_a' and 'image_b' columns (pairs); its columns are {list(table.columns)}."
            + _other_sheets(table, PAIR_COLUMNS, ("image",))
        )
    needed = PAIR_COLUMNS if task == "pairs" else ("image",)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        asked = f"the model is a {task} model, so the table" if model_task else f"--task {task}"
        raise CLIError(
            f"{path}: {asked} needs column(s) {missing}; the table has {list(table.columns)}."
            + _other_sheets(table, needed)
        )
    return task


# -- attributes ---------------------------------------------------------------------------------
def _why_not_attribute(name: str, cells: pd.Series) -> str | None:
    """Why an unlisted column is not an attribute, or None if it looks like one."""
    lower = name.lower()
    if cells.isna().all():
        return "empty (a trailing separator?)" if _INDEX_NAME.match(name) else "empty"
    if _INDEX_NAME.match(name):
        return "an index column written by pandas"
    if lower in _ID_NAMES or lower.endswith("_id"):
        return "an id / language column"
    if _TIME_WORDS & set(re.split(r"[\W_]+", lower)) or lower.endswith("_at"):
        return "a time column"
    if lower.startswith(PREDICTION_PREFIXES):
        return "a prediction column"
    if pd.to_numeric(cells, errors="coerce").isna().all():
        return "text, not numbers"
    return None


def pick_attributes(
    table: pd.DataFrame, path, attributes: Sequence[str] | None, exclude: Sequence[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """The attribute columns, converted to numbers in place, and the columns skipped (and why).

    Without ``attributes``, every column but the image and user columns is a candidate;
    index, id, language, time, prediction, empty and all-text columns are skipped (and
    reported), never learned.
    """
    skipped: dict[str, str] = {}
    if attributes:
        missing = [a for a in attributes if a not in table.columns]
        if missing:
            raise CLIError(
                f"{path}: attribute column(s) {missing} not found; the table has {list(table.columns)}."
            )
        chosen = list(attributes)
    else:
        chosen = []
        for column in table.columns:
            if column in KNOWN_NON_ATTRIBUTES or column in exclude:
                continue
            reason = _why_not_attribute(column, table[column])
            if reason is None:
                chosen.append(column)
            else:
                skipped[column] = reason
        if not chosen:
            raise CLIError(
                f"{path}: no attribute column found; the table has {list(table.columns)}"
                + (f" (skipped: {describe_skipped(skipped)})" if skipped else "")
                + ". Name them with --attributes."
            )
    for column in chosen:
        if table[column].isna().all():
            raise CLIError(f"{path}: column {column!r} has no values (every cell is empty).")
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            index = table.index[bad.to_numpy()]
            raise CLIError(
                f"{path}: column {column!r} has non-numeric values at {rows_text(index)} "
                f"(e.g. {table.at[index[0], column]!r}); use numbers, or leave the cell empty for "
                "'not rated'."
            )
        infinite = np.isinf(values.to_numpy(np.float64))
        if infinite.any():
            index = table.index[infinite]
            raise CLIError(
                f"{path}: column {column!r} has an infinite value at {rows_text(index)} "
                f"({table.at[index[0], column]!r}); judgments are finite numbers (leave the cell empty for "
                "'not judged')."
            )
        table[column] = values.astype(np.float64)
    return chosen, skipped


def check_training_attributes(
    table: pd.DataFrame, attributes: Sequence[str], path, task: str, inferred: bool
) -> None:
    """Attributes a model can learn from: none constant, and (found rather than named, on a
    rating table) none of another kind than the rest, such as a stray score beside ratings."""
    for column in attributes:
        values = table[column].dropna().unique()
        if len(values) == 1 and len(attributes) > 1:
            rest = " ".join(c for c in attributes if c != column)
            raise CLIError(
                f"{path}: column {column!r} has the same value ({values[0]:g}) in every row; a model learns "
                f"nothing from it. Drop the column, or name the attributes to learn (--attributes {rest})."
            )
    if not inferred or task != "rating" or len(attributes) < 2:
        return
    # a column with a stray fraction or two is a typo the rating scale's check names by row
    fractions = {c: int((np.mod(table[c].dropna(), 1) != 0).sum()) for c in attributes}
    ratings = [c for c, n in fractions.items() if n == 0]
    other = [c for c, n in fractions.items() if n > max(1, 0.05 * table[c].notna().sum())]
    if ratings and other:
        example = table[other[0]].dropna()
        example = example[np.mod(example, 1) != 0].iloc[0]
        raise CLIError(
            f"{path}: the columns found as attributes hold different kinds of values: {ratings} whole-number "
            f"ratings, {other} other numbers (e.g. {example:g}); name the attributes to learn, e.g. "
            f"--attributes {' '.join(ratings)} (the other columns are then ignored)."
        )


def describe_skipped(skipped: dict[str, str]) -> str:
    return "; ".join(f"{c!r}: {why}" for c, why in skipped.items())


# -- images -------------------------------------------------------------------------------------
def resolve_images(table: pd.DataFrame, columns: Sequence[str], root: Path, path) -> pd.DataFrame:
    """Absolute image paths (relative ones joined onto ``root``); every file must exist."""
    table = table.copy()
    for column in columns:
        cells = table[column]
        empty = cells.isna() | (cells.astype(str).str.strip() == "")
        if empty.any():
            raise CLIError(
                f"{path}: column {column!r} is empty at {rows_text(table.index[empty.to_numpy()])}."
            )
        # one spelling per file ('a.png', './a.png' and a link to it): an image judged against
        # itself is recognised, and image-disjoint folds never split one file in two
        resolved = [os.path.realpath(root / p) for p in cells.astype(str).str.strip()]
        folders = [i for i, r in zip(table.index, resolved) if Path(r).is_dir()]
        if folders:
            raise CLIError(
                f"{path}: column {column!r} names a folder, not an image file, at {rows_text(folders)} "
                f"({cells[folders[0]]!r})."
            )
        missing = [(i, r) for i, r in zip(table.index, resolved) if not Path(r).is_file()]
        if missing:
            i, full = missing[0]
            raise CLIError(
                f"{path}: {len(missing)} image file(s) of column {column!r} not found, e.g. "
                f"row {i + 2}: {cells[i]!r} (looked for {full}). Pass --image-root to the folder the "
                "paths are relative to."
            )
        table[column] = resolved
    return table


def refuse_self_comparisons(table: pd.DataFrame, path) -> None:
    """A comparison of an image with itself says nothing about either; name those rows."""
    same = (table["image_a"] == table["image_b"]).to_numpy()
    if same.any():
        raise CLIError(
            f"{path}: {int(same.sum())} comparison(s) of an image with itself at "
            f"{rows_text(table.index[same])} (column 'image_b' equals 'image_a'); they carry no "
            "information about either image. Remove those rows."
        )


def image_rows(table: pd.DataFrame, columns: Sequence[str], source) -> tuple[list, str | None]:
    """The index labels and column where ``source`` (a resolved image path) appears."""
    for column in columns:
        hits = table.index[(table[column].astype(str) == str(source)).to_numpy()]
        if len(hits):
            return list(hits), column
    return [], None


# -- user ids -----------------------------------------------------------------------------------
def user_ids(table: pd.DataFrame, path) -> tuple[pd.Series, str]:
    """User ids as canonical text (``12``, ``12.0`` and ``'12'`` are one id) and their kind.

    The kind is ``'int'`` when every id is a whole number, else ``'str'``; a model remembers it,
    so that a table whose ids read differently (one ``'P7'`` among numbers) is noticed.
    """
    cells = table["user_id"]
    empty = cells.isna() | (cells.astype(str).str.strip() == "")
    if empty.any():
        raise CLIError(
            f"{path}: column 'user_id' is empty at {rows_text(table.index[empty.to_numpy()])}. Give "
            "those rows an id, or drop them (an unknown id counts as the average person)."
        )
    ids = cells.map(id_text).astype(object)
    return ids, "int" if bool(ids.str.match(_INTEGER_TEXT.pattern).all()) else "str"


def leading_zero_notes(ids: pd.Series, path) -> list[str]:
    """A note for each pair of ids that differ only by leading zeros (two people here)."""
    return [
        f"{path}: user ids {a!r} and {b!r} differ only by leading zeros; they are two people here (ids "
        "are read as written). Give them one spelling if they are one person."
        for a, b in leading_zero_twins(ids.unique())
    ]


def match_user_ids(ids: pd.Series, kind: str, info: dict, path, locate=rows_text) -> list[str]:
    """Warnings (as text) about ids typed unlike the model's and about people it never saw.

    ``locate`` names rows from index labels (default: spreadsheet row numbers).
    """
    notes = []
    model_kind, known = info.get("user_id_kind"), set(info.get("user_ids", ()))
    if model_kind is not None and kind != model_kind:
        if model_kind == "int":
            integral = ids.str.match(_INTEGER_TEXT.pattern)
            example = ids[~integral]
            notes.append(
                f"{path}: the model was trained on integer user ids but this table's 'user_id' "
                f"column holds text (e.g. {example.iloc[0]!r} at {locate(example.index[:1])}); "
                f"{int(integral.sum())} row(s) whose id is a whole number were matched to the model's "
                f"integer ids, {int((~integral).sum())} row(s) are not whole numbers."
            )
        else:
            notes.append(
                f"{path}: the model was trained on text user ids but this table's 'user_id' column "
                f"holds integers; all {len(ids)} row(s) were converted to text (1 -> '1') to match them."
            )
    if known:
        unseen = ~ids.isin(known)
        if unseen.any():
            notes.append(
                f"{path}: {int(unseen.sum())} row(s) from {ids[unseen].nunique()} user(s) the model "
                f"never saw (e.g. {ids[unseen].iloc[0]!r} at {locate(ids.index[unseen][:1])}) are "
                "predicted for the average person."
            )
    return notes


# -- rating scale -------------------------------------------------------------------------------
def levels_text(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def values_at(table: pd.DataFrame, attributes: Sequence[str], bad) -> str:
    """``"column 'warm': 7 at row 9"`` for the cells where ``bad(values)`` is true."""
    parts = []
    for column in attributes:
        values = table[column]
        mask = (values.notna() & bad(values)).to_numpy()
        if mask.any():
            found = levels_text(np.unique(values[mask])[:MAX_LISTED])
            parts.append(f"column {column!r}: {found} at {rows_text(table.index[mask])}")
    return "; ".join(parts)


def check_trained_range(table: pd.DataFrame, attributes: Sequence[str], info: dict, path) -> None:
    """Ratings the model cannot have been trained to predict are an error naming the rows."""
    if info.get("levels") is not None and info.get("output") == "classes":
        levels = np.asarray(info["levels"], dtype=np.float64)
        outside = values_at(table, attributes, lambda v: ~v.isin(levels))
        scale = f"its levels {levels_text(levels)}"
    elif info.get("range") is not None:
        low, high = info["range"]
        outside = values_at(table, attributes, lambda v: (v < low) | (v > high))
        scale = f"its training range {low:g} to {high:g}"
    else:
        return
    if outside:
        raise CLIError(f"{path}: ratings outside what the model was trained on ({scale}): {outside}.")
