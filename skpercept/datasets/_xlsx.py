"""Loader for the Excel schema of the reference face-perception labelling system."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from skpercept._utils import id_text

_PAIR_KEYS = ("id", "name", "path")
# For each way a pair row can name its images: the pair-table columns, and the image-table
# column they refer to (None: the pair table holds file paths directly).
_PAIR_LINKS = {
    "id": (("_id1", "_id2"), "_id"),
    "path": (("im1_path", "im2_path"), None),
    "name": (("im1", "im2"), "name"),
}
_MAX_LISTED = 20


class BadRowsWarning(UserWarning):
    """Rows of an input table were dropped because they failed validation (``errors='drop'``).

    Examples
    --------
    >>> import tempfile, warnings
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from skpercept.datasets import BadRowsWarning, load_perception_xlsx
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"_id": ["p"], "im1_path": ["a.jpg"], "im2_path": ["b.jpg"]}).to_csv(
    ...     d / "pairs.csv", index=False)
    >>> pd.DataFrame({"_id": ["j1", "j2"], "user_id": ["u", "u"], "item_id": ["p", "p"],
    ...               "smart": [1, 7]}).to_csv(d / "votes.csv", index=False)  # 7: not 1 or 2
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     data = load_perception_xlsx(d, one_means="first", ratings=None, images=None,
    ...                                 comparisons="votes.csv", pairs="pairs.csv",
    ...                                 attributes=["smart"], pair_key="path",
    ...                                 check_files=False, errors="drop")
    >>> [w.category.__name__ for w in caught if issubclass(w.category, BadRowsWarning)]
    ['BadRowsWarning']
    >>> len(data.comparisons), data.dropped[["row", "column"]].values.tolist()
    (1, [[3, 'smart']])
    """


def _key(value) -> str | None:
    """Normalise an id read from Excel/CSV: 12, 12.0 and ' 12 ' are the same id."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return id_text(value) or None


def _read_table(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a table file.")
    if not path.is_file():
        raise FileNotFoundError(f"Table not found: {path}")
    if path.suffix.lower() in (".csv", ".txt"):
        # blank lines are read (then dropped) so that every row keeps its line's number
        frame = pd.read_csv(path, dtype=object, keep_default_na=True, skip_blank_lines=False)
    else:
        frame = pd.read_excel(path, engine="openpyxl", dtype=object)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all")


def _require(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path.name} is missing column(s) {missing}; its columns are {list(frame.columns)}."
        )


class _Problems:
    """Bad rows found while loading, as (file, Excel row, column, message)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, str, str]] = []
        self.bad_index: dict[str, set] = {}

    def add(self, table: str, path: Path, index, column: str, message: str) -> None:
        # Excel and CSV show the header on row 1, so data row i (0-based) is row i + 2.
        self.rows.append((path.name, int(index) + 2, column, message))
        self.bad_index.setdefault(table, set()).add(index)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["file", "row", "column", "problem"])

    def report(self) -> str:
        counts = self.frame().groupby("file", sort=False)["row"].nunique()
        head = "; ".join(f"{f}: {n} bad row(s)" for f, n in counts.items())
        lines = [f"  {f} row {r}, column {c!r}: {m}" for f, r, c, m in self.rows[:_MAX_LISTED]]
        if len(self.rows) > _MAX_LISTED:
            lines.append(f"  ... and {len(self.rows) - _MAX_LISTED} more problem(s)")
        return head + "\n" + "\n".join(lines)


class _ImageIndex:
    """Maps image-table keys to resolved file paths, and explains keys that do not resolve."""

    def __init__(self, frame: pd.DataFrame | None, path: Path | None, root: Path, check_files):
        self.frame, self.path, self.root, self.check_files = frame, path, root, check_files
        self._exists: dict[str, bool] = {}
        self._maps: dict[str, tuple[dict, dict]] = {}

    def resolve_path(self, raw) -> tuple[str | None, str | None]:
        text = _key(raw)
        if text is None:
            return None, "no image path"
        full = Path(text).expanduser()
        full = str(full if full.is_absolute() else self.root / full)
        if self.check_files:
            if full not in self._exists:
                self._exists[full] = os.path.isfile(full)
            if not self._exists[full]:
                return None, f"image file not found: {full}"
        return full, None

    def _map(self, column: str) -> tuple[dict, dict]:
        if column not in self._maps:
            rows: dict[str, list] = {}
            for index, value in self.frame[column].items():
                key = _key(value)
                if key is not None:
                    rows.setdefault(key, []).append(index)
            self._maps[column] = (rows, {})
        return self._maps[column]

    def lookup(self, column: str, raw) -> tuple[str | None, str | None]:
        """Path for the image whose ``column`` equals ``raw``, or (None, reason)."""
        key = _key(raw)
        if key is None:
            return None, "missing image reference"
        rows, cache = self._map(column)
        if key in cache:
            return cache[key]
        found = rows.get(key, [])
        if not found:
            result = (None, f"image {column} {key!r} not found in {self.path.name}")
        elif len(found) > 1:
            where = ", ".join(str(i + 2) for i in found[:5])
            result = (None, f"image {column} {key!r} is ambiguous: {self.path.name} rows {where}")
        else:
            path, reason = self.resolve_path(self.frame.at[found[0], "data_image_part"])
            if reason is not None:
                reason = f"image {column} {key!r} ({self.path.name} row {found[0] + 2}): {reason}"
            result = (path, reason)
        cache[key] = result
        return result


def _check_values(frame, path, table, attributes, allowed, problems) -> pd.DataFrame:
    values = pd.DataFrame(index=frame.index)
    allowed_text = ", ".join(str(v) for v in allowed)
    for attribute in attributes:
        raw = frame[attribute]
        numeric = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        for index in raw.index[raw.notna() & numeric.isna()]:
            problems.add(table, path, index, attribute, f"not a number: {raw[index]!r}")
        for index in numeric.index[numeric.notna() & ~numeric.isin(allowed)]:
            problems.add(
                table, path, index, attribute, f"value {numeric[index]:g} is not one of {allowed_text}"
            )
        values[attribute] = numeric.where(numeric.isin(allowed))
    for index in frame.index[frame[list(attributes)].isna().all(axis=1)]:
        problems.add(table, path, index, ",".join(attributes), "no value in any attribute column")
    for column in ("_id", "user_id"):
        for index in frame.index[frame[column].map(_key).isna()]:
            problems.add(table, path, index, column, f"missing {column}")
    return values


def _judgment_frame(frame, values, problems, table, columns) -> pd.DataFrame:
    out = pd.DataFrame({"judgment_id": frame["_id"].map(_key), "user_id": frame["user_id"].map(_key)})
    for name, column in columns.items():
        out[name] = column
    for attribute in values.columns:
        out[attribute] = values[attribute]
    for extra in ("lang", "insert_time"):
        if extra in frame.columns:
            out[extra] = frame[extra]
    if "insert_time" in out.columns:
        try:
            out["insert_time"] = pd.to_datetime(out["insert_time"])
        except (ValueError, TypeError):
            pass  # keep the raw values rather than turning unparseable ones into NaT
    bad = problems.bad_index.get(table, set())
    if bad:
        out = out.drop(index=sorted(bad))
    return out.reset_index(drop=True)


def _choose_pair_key(pair_key, pairs, pairs_path, used, images, resolve) -> str:
    if pair_key != "auto":
        if pair_key not in _PAIR_KEYS:
            raise ValueError(f"pair_key must be 'auto' or one of {_PAIR_KEYS}, got {pair_key!r}.")
        return pair_key
    candidates = []
    for mode, (cols, image_col) in _PAIR_LINKS.items():
        if all(c in pairs.columns for c in cols) and (
            image_col is None or (images.frame is not None and image_col in images.frame.columns)
        ):
            candidates.append(mode)
    if not candidates:
        raise ValueError(
            f"Cannot tell how {pairs_path.name} names its images: it needs _id1/_id2 (with an "
            "image table that has _id), im1/im2 (with an image table that has name) or "
            f"im1_path/im2_path; its columns are {list(pairs.columns)}."
        )
    if len(candidates) == 1:
        return candidates[0]
    resolved = {mode: resolve(mode) for mode in candidates}
    for index in used:
        seen = {m: r[index] for m, r in resolved.items() if r[index][0] is not None}
        if len(set(seen.values())) > 1:
            detail = "; ".join(f"{m} -> {v[0]} | {v[1]}" for m, v in seen.items())
            raise ValueError(
                f"{pairs_path.name} row {index + 2}: the ways of linking pairs to images "
                f"disagree ({detail}); pass pair_key= one of {candidates} to choose."
            )
    n_ok = {m: sum(r[i][0] is not None for i in used) for m, r in resolved.items()}
    return max(candidates, key=lambda m: n_ok[m])  # ties keep preference order id > path > name


def _pair_resolver(pairs: pd.DataFrame, images: _ImageIndex):
    def resolve(mode: str) -> dict:
        cols, image_col = _PAIR_LINKS[mode]
        missing = [c for c in cols if c not in pairs.columns]
        if missing or (
            image_col is not None and (images.frame is None or image_col not in images.frame.columns)
        ):
            raise ValueError(
                f"pair_key={mode!r} needs pair-table columns {list(cols)}"
                + ("" if image_col is None else f" and an image table with column {image_col!r}")
                + "."
            )
        result = {}
        for index, row in pairs.iterrows():
            found, reasons = [], []
            for col in cols:
                path, reason = (
                    images.resolve_path(row[col]) if image_col is None else images.lookup(image_col, row[col])
                )
                found.append(path)
                if reason:
                    reasons.append(f"{col}: {reason}")
            result[index] = (None, "; ".join(reasons)) if reasons else (tuple(found), None)
        return result

    return resolve


def load_perception_xlsx(
    data_dir: str | os.PathLike,
    *,
    one_means: str,
    image_root: str | os.PathLike | None = None,
    ratings: str | None = "big_label.xlsx",
    comparisons: str | None = "big_compare_label.xlsx",
    images: str | None = "big_data.xlsx",
    pairs: str | None = "big_compares.xlsx",
    attributes: Sequence[str] = ("attractive", "smart", "trustworthy"),
    pair_key: str = "auto",
    pair_id_column: str = "auto",
    check_files: bool = True,
    errors: str = "raise",
) -> Bunch:
    """Load ratings and pairwise comparisons stored in the reference system's Excel schema.

    Four tables (``.xlsx`` read with openpyxl, or ``.csv``) are joined:

    - ratings: ``_id, user_id, item_id, <attributes>, lang, insert_time``, values 1–4,
      ``item_id`` = an image table ``_id``;
    - comparisons: the same columns with values 1 or 2, ``item_id`` = a pair table id;
    - images: ``_id, name, data_image_part, update_date`` (``data_image_part`` = file path);
    - pairs: ``im1, im2, db1, _id1, db2, _id2, name`` (later versions add ``im1_path,
      im2_path``). ``db1``/``db2`` are ignored.

    Parameters
    ----------
    data_dir : path
        Folder holding the tables (table names may also be absolute paths).
    one_means : {'first', 'second'}
        Required. What the value 1 in a comparison column says: ``'first'`` = the pair's
        first image (``im1``) was chosen, i.e. is higher on that attribute; ``'second'`` =
        the second image was. The source project's scripts disagree on this, so it is never
        guessed. Check it on a few pairs you can judge yourself.
    image_root : path or None, default=None
        Folder that relative image paths are resolved against; None means ``data_dir``.
    ratings, comparisons, images, pairs : str or None
        File names of the four tables; None skips a table (ratings need ``images``;
        comparisons need ``pairs``, and ``images`` unless ``pair_key='path'``).
    attributes : sequence of str, default=('attractive', 'smart', 'trustworthy')
        Attribute columns to read from the rating and comparison tables.
    pair_key : {'auto', 'id', 'name', 'path'}, default='auto'
        How a pair row names its images: ``'id'``: ``_id1``/``_id2`` are image ``_id``s;
        ``'name'``: ``im1``/``im2`` are image ``name``s; ``'path'``: ``im1_path``/``im2_path``
        are file paths under ``image_root``. ``'auto'`` uses the only one whose columns exist;
        when several exist it checks they agree on every used pair (a ``ValueError`` names the
        first row where they do not) and uses the one that resolves the most pairs.
    pair_id_column : str, default='auto'
        Pair-table column matched by the comparisons' ``item_id``: ``'auto'`` uses ``_id`` if
        present, else ``name``.
    check_files : bool, default=True
        Check that every image file used exists.
    errors : {'raise', 'drop'}, default='raise'
        Bad rows — a missing or unknown image or pair id, a missing image file, a value
        outside 1–4 (ratings) or 1–2 (comparisons), a row with no value at all, a missing
        ``_id`` or ``user_id`` — raise one ``ValueError`` listing file, Excel row number
        (the header is row 1), column and problem. ``'drop'`` drops those rows and warns
        (:class:`BadRowsWarning`) with the count and the list; the full list is returned as
        ``dropped``. A missing column always raises.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields below.

        ratings : DataFrame or None
            Columns ``judgment_id, user_id, image, <attributes>, [lang, insert_time]``
            (ratings 1–4 as float, NaN = not rated).
        comparisons : DataFrame or None
            Columns ``judgment_id, user_id, image_a, image_b, <attributes>, [lang,
            insert_time]``; ``image_a`` is the pair's first image and each attribute is 1.0
            where ``image_a`` was chosen, 0.0 where ``image_b`` was, NaN = not judged.
        dropped : DataFrame
            Columns ``file, row, column, problem``: the dropped rows (empty if none).
        attributes : list of str
            The attribute names.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> from PIL import Image
    >>> from skpercept.datasets import load_perception_xlsx
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in (1, 2):
    ...     Image.new("RGB", (8, 8)).save(d / f"{n}.jpg")
    >>> pd.DataFrame({"_id": ["a", "b"], "name": [1, 2], "data_image_part": ["1.jpg", "2.jpg"]}
    ...              ).to_excel(d / "big_data.xlsx", index=False)
    >>> pd.DataFrame({"_id": ["p"], "im1": [1], "im2": [2]}).to_excel(d / "big_compares.xlsx",
    ...                                                             index=False)
    >>> pd.DataFrame({"_id": ["j"], "user_id": ["u"], "item_id": ["p"], "smart": [2]}
    ...              ).to_excel(d / "big_compare_label.xlsx", index=False)
    >>> data = load_perception_xlsx(d, one_means="first", ratings=None, attributes=["smart"])
    >>> data.comparisons.smart.tolist()  # value 2: the second image (im2) was chosen
    [0.0]
    """
    if one_means not in ("first", "second"):
        raise ValueError(
            f"one_means must be 'first' or 'second' (what value 1 in a comparison says), got {one_means!r}."
        )
    if errors not in ("raise", "drop"):
        raise ValueError(f"errors must be 'raise' or 'drop', got {errors!r}.")
    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    if not attributes:
        raise ValueError("attributes must name at least one column.")
    data_dir = Path(data_dir)
    root = Path(image_root) if image_root is not None else data_dir
    paths = {
        name: (data_dir / f if f is not None else None)
        for name, f in dict(ratings=ratings, comparisons=comparisons, images=images, pairs=pairs).items()
    }
    if paths["ratings"] is None and paths["comparisons"] is None:
        raise ValueError("Nothing to load: ratings and comparisons are both None.")
    if paths["ratings"] is not None and paths["images"] is None:
        raise ValueError("The ratings table needs the image table (images=...) to find files.")
    if paths["comparisons"] is not None and paths["pairs"] is None:
        raise ValueError("The comparisons table needs the pair table (pairs=...).")
    if paths["comparisons"] is not None and paths["images"] is None and pair_key != "path":
        raise ValueError("Without an image table, comparisons need pair_key='path'.")

    tables = {name: _read_table(p) for name, p in paths.items() if p is not None}
    if "images" in tables:
        _require(tables["images"], paths["images"], ["_id", "data_image_part"])
    image_index = _ImageIndex(tables.get("images"), paths["images"], root, check_files)
    problems = _Problems()
    out = Bunch(ratings=None, comparisons=None, attributes=attributes)

    if "ratings" in tables:
        frame, path = tables["ratings"], paths["ratings"]
        _require(frame, path, ["_id", "user_id", "item_id", *attributes])
        values = _check_values(frame, path, "ratings", attributes, (1, 2, 3, 4), problems)
        image = pd.Series(None, index=frame.index, dtype=object)
        for index, raw in frame["item_id"].items():
            found, reason = image_index.lookup("_id", raw)
            if reason:
                problems.add("ratings", path, index, "item_id", reason)
            image[index] = found
        out.ratings = _judgment_frame(frame, values, problems, "ratings", {"image": image})

    if "comparisons" in tables:
        frame, path = tables["comparisons"], paths["comparisons"]
        pair_frame, pair_path = tables["pairs"], paths["pairs"]
        _require(frame, path, ["_id", "user_id", "item_id", *attributes])
        values = _check_values(frame, path, "comparisons", attributes, (1, 2), problems)
        first_value = 1.0 if one_means == "first" else 2.0
        values = values.apply(lambda c: (c == first_value).astype(np.float64).where(c.notna()))

        id_column = pair_id_column
        if id_column == "auto":
            id_column = "_id" if "_id" in pair_frame.columns else "name"
        _require(pair_frame, pair_path, [id_column])
        pair_rows: dict[str, list] = {}
        for index, value in pair_frame[id_column].items():
            if _key(value) is not None:
                pair_rows.setdefault(_key(value), []).append(index)
        # Only pairs that some comparison uses are resolved (and can be reported as bad).
        used_keys = set(frame["item_id"].map(_key)) & set(pair_rows)
        used = sorted(pair_rows[k][0] for k in used_keys if len(pair_rows[k]) == 1)
        resolver = _pair_resolver(pair_frame.loc[used], image_index)
        mode = _choose_pair_key(pair_key, pair_frame, pair_path, used, image_index, resolver)
        resolved = resolver(mode)

        image_a = pd.Series(None, index=frame.index, dtype=object)
        image_b = pd.Series(None, index=frame.index, dtype=object)
        for index, raw in frame["item_id"].items():
            key = _key(raw)
            rows = pair_rows.get(key, []) if key is not None else []
            if key is None:
                reason = "missing pair id"
            elif not rows:
                reason = f"pair {id_column} {key!r} not found in {pair_path.name}"
            elif len(rows) > 1:
                where = ", ".join(str(i + 2) for i in rows[:5])
                reason = f"pair {id_column} {key!r} is ambiguous: {pair_path.name} rows {where}"
            else:
                found, why = resolved[rows[0]]
                reason = None if why is None else f"pair {key!r} ({pair_path.name} row {rows[0] + 2}): {why}"
                if found is not None:
                    image_a[index], image_b[index] = found
            if reason:
                problems.add("comparisons", path, index, "item_id", reason)
        out.comparisons = _judgment_frame(
            frame, values, problems, "comparisons", {"image_a": image_a, "image_b": image_b}
        )

    out.dropped = problems.frame()
    if problems.rows:
        if errors == "raise":
            raise ValueError(
                "Bad rows in the input tables.\n"
                + problems.report()
                + "\nFix these rows, or pass errors='drop' to drop them with a warning."
            )
        warnings.warn("Dropped bad rows (errors='drop'). " + problems.report(), BadRowsWarning, stacklevel=2)
    return out
