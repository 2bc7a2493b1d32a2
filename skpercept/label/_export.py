"""Judgments out and in: the reference system's four Excel tables, the plain tables ``skpercept
fit`` reads, and import of either into a labelling project.

Exports hold the judgments standing (undone clicks are left out) with image paths relative to
the export folder, so ``skpercept fit EXPORT/pairs.csv`` and ``skpercept fit EXPORT/reference
--one-means first`` read them back as they are. Imports are idempotent: each imported row gets a
client id made from the file and the row, so importing the same file twice stores it once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from skpercept._io import atomic_write
from skpercept.label._store import Judgment, JudgmentError, LabelStore

#: The reference schema's file names, as ``load_perception_xlsx`` reads them by default.
REFERENCE_FILES = {
    "ratings": "big_label.xlsx",
    "comparisons": "big_compare_label.xlsx",
    "images": "big_data.xlsx",
    "pairs": "big_compares.xlsx",
}
_THUMB = 160


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive (Windows): an absolute path still reads back
        return str(path)


def _iso(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds, unit="s", utc=True).dt.tz_localize(None)


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".xlsx":
        buffer = io.BytesIO()
        frame.to_excel(buffer, index=False, engine="openpyxl")
        with atomic_write(path) as f:
            f.write(buffer.getvalue())
    else:
        with atomic_write(path, "w", encoding="utf-8", newline="") as f:
            frame.to_csv(f, index=False)


def export_tables(store: LabelStore, folder, out) -> dict[str, Path]:
    """Write the judgments as the plain tables ``skpercept fit`` reads.

    ``pairs.csv`` (``judgment_id, user_id, image_a, image_b, <attributes>, insert_time``; 1 where
    ``image_a`` was chosen, 0 where ``image_b`` was, empty for the attributes a row does not
    judge) for a pairs project, ``ratings.csv`` (``judgment_id, user_id, image, <attributes>,
    insert_time``) for a rating one. Image paths are relative to ``out``.

    Parameters
    ----------
    store : LabelStore
    folder : path
        The project's image folder.
    out : path
        The export folder (created).

    Returns
    -------
    files : dict
        ``{'pairs': path}`` or ``{'ratings': path}``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.label import Judgment, LabelStore, export_tables
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> store = LabelStore(root / "labels.sqlite")
    >>> store.configure(attributes=["smart"], kind="pairs", levels=2, items=["a.jpg", "b.jpg"])
    >>> _ = store.add_labeller("ann")
    >>> _ = store.record(Judgment("click-0001", "ann", "smart", "pairs", "a.jpg", "b.jpg", 2))
    >>> files = export_tables(store, root / "photos", root / "export")
    >>> print(files["pairs"].read_text().splitlines()[1].rsplit(",", 1)[0])
    click-0001,ann,../photos/a.jpg,../photos/b.jpg,0.0
    """
    settings = store.settings()
    folder, out = Path(folder).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    frame = store.judgments()
    to_path = {item: _relative(folder / item, out) for item in settings["items"]}
    table = pd.DataFrame({"judgment_id": frame["client_id"], "user_id": frame["labeller"]})
    if settings["kind"] == "pairs":
        table["image_a"] = frame["item_a"].map(to_path)
        table["image_b"] = frame["item_b"].map(to_path)
        value = (frame["value"] == 1).astype(float)
    else:
        table["image"] = frame["item_a"].map(to_path)
        value = frame["value"].astype(float)
    for attribute in settings["attributes"]:
        table[attribute] = np.where(frame["attribute"] == attribute, value, np.nan) if len(frame) else []
    table["insert_time"] = _iso(frame["created_at"]) if len(frame) else []
    name = "pairs" if settings["kind"] == "pairs" else "ratings"
    path = out / f"{name}.csv"
    _write_table(table, path)
    return {name: path}


def export_reference(store: LabelStore, folder, out) -> dict[str, Path]:
    """Write the judgments as the reference labelling system's four Excel tables.

    ``big_data.xlsx`` (images: ``_id, name, data_image_part, update_date``; paths relative to
    ``out``), ``big_compares.xlsx`` (pairs: ``_id, im1, im2, db1, _id1, db2, _id2, name``),
    ``big_label.xlsx`` (ratings 1–N) and ``big_compare_label.xlsx`` (comparisons, **1 = the
    pair's first image was chosen**: read with ``--one-means first``), both with ``_id,
    user_id, item_id, <attributes>, lang, insert_time``; the table a project does not collect
    is written with its columns and no rows, so the folder is always complete.

    Returns the four paths by table (``ratings``, ``comparisons``, ``images``, ``pairs``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.datasets import load_perception_xlsx
    >>> from skpercept.label import Judgment, LabelStore, export_reference
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "photos").mkdir()
    >>> for name in ("a.jpg", "b.jpg"):
    ...     _ = (root / "photos" / name).write_bytes(b"")
    >>> store = LabelStore(root / "labels.sqlite")
    >>> store.configure(attributes=["smart"], kind="pairs", levels=2, items=["a.jpg", "b.jpg"])
    >>> _ = store.add_labeller("ann")
    >>> _ = store.record(Judgment("click-0001", "ann", "smart", "pairs", "a.jpg", "b.jpg", 2))
    >>> files = export_reference(store, root / "photos", root / "reference")
    >>> data = load_perception_xlsx(root / "reference", one_means="first", attributes=["smart"])
    >>> data.comparisons[["user_id", "smart"]].values.tolist()  # b.jpg (second) was chosen
    [['ann', 0.0]]
    """
    settings = store.settings()
    attributes = list(settings["attributes"])
    folder, out = Path(folder).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    frame = store.judgments()
    used = sorted(set(frame["item_a"]) | set(frame["item_b"].dropna())) if len(frame) else []
    image_id = {item: f"img{k + 1:06d}" for k, item in enumerate(used)}
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    images = pd.DataFrame(
        {
            "_id": [image_id[i] for i in used],
            "name": used,
            "data_image_part": [_relative(folder / i, out) for i in used],
            "update_date": [now] * len(used),
        }
    )
    label_columns = ["_id", "user_id", "item_id", *attributes, "lang", "insert_time"]

    def labels(rows: pd.DataFrame, item_id: pd.Series) -> pd.DataFrame:
        table = pd.DataFrame({"_id": rows["client_id"], "user_id": rows["labeller"], "item_id": item_id})
        for attribute in attributes:
            values = pd.Series(rows["value"].to_numpy(), dtype="Int64")
            table[attribute] = values.where(rows["attribute"].to_numpy() == attribute).to_numpy()
        table["lang"] = "en"
        table["insert_time"] = _iso(rows["created_at"]) if len(rows) else []
        return table.reindex(columns=label_columns)

    pair_columns = ["_id", "im1", "im2", "db1", "_id1", "db2", "_id2", "name"]
    if settings["kind"] == "pairs" and len(frame):
        keys = frame[["item_a", "item_b"]].drop_duplicates()
        pair_id = {(a, b): f"pair{k + 1:06d}" for k, (a, b) in enumerate(keys.itertuples(index=False))}
        pairs = pd.DataFrame(
            {
                "_id": list(pair_id.values()),
                "im1": keys["item_a"].to_numpy(),
                "im2": keys["item_b"].to_numpy(),
                "db1": "skpercept",
                "_id1": [image_id[a] for a in keys["item_a"]],
                "db2": "skpercept",
                "_id2": [image_id[b] for b in keys["item_b"]],
                "name": [f"{a} | {b}" for a, b in keys.itertuples(index=False)],
            }
        )
        comparisons = labels(
            frame, pd.Series([pair_id[(a, b)] for a, b in zip(frame["item_a"], frame["item_b"])])
        )
        ratings = pd.DataFrame(columns=label_columns)
    else:
        pairs = pd.DataFrame(columns=pair_columns)
        comparisons = pd.DataFrame(columns=label_columns)
        ratings = (
            labels(frame, frame["item_a"].map(image_id))
            if len(frame)
            else pd.DataFrame(columns=label_columns)
        )
    tables = {"ratings": ratings, "comparisons": comparisons, "images": images, "pairs": pairs}
    written = {}
    for kind, table in tables.items():
        path = out / REFERENCE_FILES[kind]
        _write_table(table, path)
        written[kind] = path
    return written


def _client_id(source: str, row: int, attribute: str) -> str:
    digest = hashlib.sha256(f"{source}\0{row}\0{attribute}".encode()).hexdigest()[:32]
    return f"import-{digest}"


def import_judgments(
    store: LabelStore,
    folder,
    source,
    *,
    one_means: str | None = None,
    image_root=None,
) -> int:
    """Add existing judgments to a project; returns how many were new.

    ``source`` is a plain table (csv / xlsx with ``user_id`` and ``image_a, image_b`` or
    ``image`` plus attribute columns, as :func:`export_tables` writes and ``skpercept fit``
    reads) or a folder of the reference system's tables (read by
    :func:`~skpercept.datasets.load_perception_xlsx`, which needs ``one_means``). Only the
    project's attributes are read. Image paths (relative to ``image_root``, default the
    table's folder) must be images of the project. A pair judged 0.5 or any share between 0
    and 1 is not one click and is refused, as is a rating outside the project's levels;
    the error names the file, the row (as the spreadsheet numbers it) and the column, and
    nothing is stored unless every row is good. People who are not labellers yet are added
    (without a link: the admin gives them one when they should label).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from skpercept.label import LabelStore, import_judgments
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> store = LabelStore(root / "labels.sqlite")
    >>> store.configure(attributes=["smart"], kind="pairs", levels=2, items=["a.jpg", "b.jpg"])
    >>> pd.DataFrame({"user_id": ["bo"], "image_a": ["photos/a.jpg"], "image_b": ["photos/b.jpg"],
    ...               "smart": [1]}).to_csv(root / "old.csv", index=False)
    >>> import_judgments(store, root / "photos", root / "old.csv"), import_judgments(store, root / "photos", root / "old.csv")
    (1, 0)
    """
    settings = store.settings()
    folder, source = Path(folder).resolve(), Path(source)
    attributes = list(settings["attributes"])
    if source.is_dir():
        table, root, label = _reference_rows(source, settings, one_means, image_root)
    else:
        table = _read(source)
        root = Path(image_root) if image_root is not None else source.resolve().parent
        label = str(source)
    pairs = settings["kind"] == "pairs"
    needed = ["user_id", *(("image_a", "image_b") if pairs else ("image",))]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise JudgmentError(f"{source}: column(s) {missing} missing; the table has {list(table.columns)}.")
    present = [a for a in attributes if a in table.columns]
    if not present:
        raise JudgmentError(f"{source}: none of the project's attributes {attributes} is a column.")
    items = set(settings["items"])

    def item(path_text, row: int, column: str) -> str:
        path = Path(str(path_text))
        path = (path if path.is_absolute() else root / path).resolve()
        try:
            name = path.relative_to(folder).as_posix()
        except ValueError:
            name = None
        if name not in items:
            raise JudgmentError(
                f"{label}, row {row}, column {column}: {path_text!r} is not an image of {folder}."
            )
        return name

    judgments, times = [], []
    for position, (_, record) in enumerate(table.iterrows()):
        row = int(record["_row"]) if "_row" in table.columns else position + 2
        for attribute in present:
            value = record[attribute]
            if pd.isna(value):
                continue
            value = float(value)
            if pairs:
                if value not in (0.0, 1.0):
                    raise JudgmentError(
                        f"{label}, row {row}, column {attribute}: {value:g} is not one click (1: image_a "
                        "chosen, 0: image_b); shares of several raters cannot be imported as judgments."
                    )
                a, b = item(record["image_a"], row, "image_a"), item(record["image_b"], row, "image_b")
                j = Judgment(
                    _client_id(label, row, attribute),
                    str(record["user_id"]),
                    attribute,
                    "pairs",
                    a,
                    b,
                    1 if value == 1.0 else 2,
                )
            else:
                if value != int(value) or not 1 <= value <= settings["levels"]:
                    raise JudgmentError(
                        f"{label}, row {row}, column {attribute}: {value:g} is not a level 1-{settings['levels']}."
                    )
                a = item(record["image"], row, "image")
                j = Judgment(
                    _client_id(label, row, attribute),
                    str(record["user_id"]),
                    attribute,
                    "rating",
                    a,
                    None,
                    int(value),
                )
            judgments.append(j)
            when = record.get("insert_time")
            times.append(None if when is None or pd.isna(when) else pd.Timestamp(when).timestamp())
    known = set(store.labellers())
    for labeller in sorted({j.labeller for j in judgments} - known):
        store.add_labeller(labeller)
    return sum(store.record_many(judgments, source="import", created_at=times))


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return pd.read_excel(path, engine="openpyxl")
    return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")


def _reference_rows(source: Path, settings: dict, one_means, image_root):
    from skpercept.datasets import load_perception_xlsx

    if settings["kind"] == "pairs" and one_means is None:
        raise JudgmentError(
            f"{source}: reading the reference system's comparisons needs one_means ('first' or 'second'), "
            "which is never guessed."
        )
    data = load_perception_xlsx(
        source,
        one_means=one_means or "first",
        image_root=image_root,
        attributes=settings["attributes"],
        ratings=None if settings["kind"] == "pairs" else REFERENCE_FILES["ratings"],
        comparisons=REFERENCE_FILES["comparisons"] if settings["kind"] == "pairs" else None,
        pairs=REFERENCE_FILES["pairs"] if settings["kind"] == "pairs" else None,
    )
    table = data.comparisons if settings["kind"] == "pairs" else data.ratings
    table = table.rename(columns={"left": "image_a", "right": "image_b"})
    return table, Path.cwd(), str(source)  # the loader joins relative paths as given


# -- the contact sheet of a labeller's results ------------------------------------------------
def _thumbnail(path: Path) -> str:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((_THUMB, _THUMB))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except (OSError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def contact_sheet(table: pd.DataFrame, project, title: str) -> str:
    """A self-contained HTML page of a labeller's ranking (thumbnails embedded), best first;
    for keep/delete the keepers and the rest in two sections."""

    def figure(row) -> str:
        src = _thumbnail(project.image_path(row["item"]))
        note = f"score {row['score']:.3f}"
        if "predicted" in row:
            name = project.level_names[int(row["predicted"]) - 1]
            note += f" · {html.escape(name)} ({row['confidence']:.0%} sure)"
        image = f'<img src="{src}" alt="">' if src else '<div class="unreadable">unreadable</div>'
        return (
            f'<figure class="photo" data-rank="{int(row["rank"])}" data-score="{row["score"]:.6f}">{image}'
            f"<figcaption>#{int(row['rank'])} {html.escape(row['item'])}<br>{note}</figcaption></figure>"
        )

    sections = []
    if "keep" in table:
        for flag, heading in ((True, project.level_names[1]), (False, project.level_names[0])):
            part = table[table["keep"] == flag]
            figures = "".join(figure(r) for _, r in part.iterrows())
            sections.append(
                f'<section class="{"keep" if flag else "other"}"><h2>{html.escape(heading)} ({len(part)})</h2>{figures}</section>'
            )
    else:
        sections.append("<section>" + "".join(figure(r) for _, r in table.iterrows()) + "</section>")
    style = (
        "body{font-family:sans-serif;margin:1.5em}figure{display:inline-block;width:170px;margin:6px;"
        "vertical-align:top;font-size:12px}img{max-width:160px;max-height:160px}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{len(table)} photos from {html.escape(str(project.folder))}. No photo was moved or deleted.</p>"
        + "".join(sections)
        + "</body></html>"
    )
