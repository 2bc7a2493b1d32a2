"""Exports read back by ``skpercept fit`` and ``load_perception_xlsx``; imports that give the same
judgments, are idempotent, and name the file, row and column of what they refuse."""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import pytest

from skpercept import cli
from skpercept.datasets import load_perception_xlsx
from skpercept.label import (
    REFERENCE_FILES,
    Judgment,
    JudgmentError,
    LabelStore,
    export_reference,
    export_tables,
    import_judgments,
)
from tests.label.conftest import make_images

COLUMNS = ["labeller", "attribute", "item_a", "item_b", "value"]


def judgments_of(store) -> list[list]:
    frame = store.judgments()[COLUMNS]
    rows = [[None if pd.isna(v) else v for v in row] for row in frame.values.tolist()]
    return sorted(rows, key=lambda r: [str(v) for v in r])


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    make_images(folder, 8)
    return folder


def new_store(path, kind="pairs", levels=2, attributes=("smart", "warm"), items=None) -> LabelStore:
    store = LabelStore(path)
    store.configure(
        attributes=list(attributes),
        kind=kind,
        levels=levels,
        items=items or [f"im{k:02d}.jpg" for k in range(8)],
    )
    return store


@pytest.fixture
def pairs_store(tmp_path):
    """Two labellers' comparisons of 8 images on two attributes, and one undone click."""
    store = new_store(tmp_path / "a.sqlite")
    for who in ("ann", "bo"):
        store.add_labeller(who)
    clicks = []
    for k in range(12):
        i, j = k % 8, (3 * k + 1) % 8
        if i == j:
            continue
        who = "ann" if k % 3 else "bo"
        attribute = "smart" if k % 2 else "warm"
        clicks.append(
            Judgment(
                f"click-{k:04d}",
                who,
                attribute,
                "pairs",
                f"im{i:02d}.jpg",
                f"im{j:02d}.jpg",
                1 if i > j else 2,
            )
        )
    store.record_many(clicks, created_at=[1.7e9 + 60 * k for k in range(len(clicks))])
    store.record(Judgment("click-undone", "ann", "smart", "pairs", "im00.jpg", "im07.jpg", 1))
    store.undo("ann")
    yield store
    store.close()


@pytest.fixture
def rating_store(tmp_path):
    store = new_store(tmp_path / "r.sqlite", kind="rating", levels=3, attributes=["keep"])
    store.add_labeller("ann")
    store.add_labeller("bo")
    store.record_many(
        [
            Judgment(
                f"rate-{k:04d}",
                "ann" if k < 6 else "bo",
                "keep",
                "rating",
                f"im{k % 8:02d}.jpg",
                None,
                1 + k % 3,
            )
            for k in range(10)
        ]
    )
    yield store
    store.close()


# -- export ----------------------------------------------------------------------------------
def test_export_tables_writes_what_fit_reads(pairs_store, folder, tmp_path):
    files = export_tables(pairs_store, folder, tmp_path / "export")
    assert list(files) == ["pairs"] and files["pairs"] == tmp_path / "export" / "pairs.csv"
    table = pd.read_csv(files["pairs"])
    assert list(table.columns) == [
        "judgment_id",
        "user_id",
        "image_a",
        "image_b",
        "smart",
        "warm",
        "insert_time",
    ]
    assert "click-undone" not in set(table["judgment_id"])
    assert len(table) == len(pairs_store.judgments())
    for _, row in table.iterrows():
        assert (files["pairs"].parent / row["image_a"]).resolve().parent == folder.resolve()
        assert row[["smart", "warm"]].notna().sum() == 1
    stored = pairs_store.judgments().set_index("client_id")
    for _, row in table.iterrows():
        j = stored.loc[row["judgment_id"]]
        assert row[j["attribute"]] == (1.0 if j["value"] == 1 else 0.0)
        assert Path(row["image_a"]).name == j["item_a"] and Path(row["image_b"]).name == j["item_b"]
    assert pd.to_datetime(table["insert_time"]).iloc[0] == pd.Timestamp(1.7e9, unit="s")


def test_exported_pairs_are_fitted_by_the_command(pairs_store, folder, tmp_path, tiny_lite0):
    files = export_tables(pairs_store, folder, tmp_path / "export")
    model = tmp_path / "m.joblib"
    argv = [
        "fit",
        files["pairs"],
        "--model",
        model,
        "--epochs",
        "2",
        "--no-progress",
        "--cache-dir",
        tmp_path / "cache",
    ]
    assert cli.main([str(a) for a in argv]) == 0
    info = joblib.load(model).skpercept_info_
    assert info["task"] == "pairs" and set(info["attributes"]) == {"smart", "warm"}


def test_export_reference_reads_back_with_one_means_first(pairs_store, folder, tmp_path):
    files = export_reference(pairs_store, folder, tmp_path / "reference")
    assert {k: p.name for k, p in files.items()} == REFERENCE_FILES
    data = load_perception_xlsx(tmp_path / "reference", one_means="first", attributes=["smart", "warm"])
    back = []
    for _, row in data.comparisons.iterrows():
        attribute = "smart" if pd.notna(row["smart"]) else "warm"
        a, b = (
            Path(row[c]).resolve().relative_to(folder.resolve()).as_posix() for c in ("image_a", "image_b")
        )
        back.append([row["user_id"], attribute, a, b, 1 if row[attribute] == 1.0 else 2])
    assert sorted(back, key=str) == judgments_of(pairs_store)
    assert set(data.comparisons["judgment_id"]) == set(pairs_store.judgments()["client_id"])
    # 'second' reads every choice the other way round: the export's 1 is the first image.
    flipped = load_perception_xlsx(tmp_path / "reference", one_means="second", attributes=["smart", "warm"])
    assert (flipped.comparisons["smart"].dropna() == 1 - data.comparisons["smart"].dropna()).all()


def test_export_reference_of_ratings(rating_store, folder, tmp_path):
    export_reference(rating_store, folder, tmp_path / "reference")
    data = load_perception_xlsx(
        tmp_path / "reference", one_means="first", attributes=["keep"], comparisons=None
    )
    back = sorted(
        [row["user_id"], Path(row["image"]).name, int(row["keep"])] for _, row in data.ratings.iterrows()
    )
    expected = sorted(r[:1] + [r[2], r[4]] for r in judgments_of(rating_store))
    assert back == expected
    assert pd.read_excel(tmp_path / "reference" / "big_compares.xlsx").empty


def test_empty_exports_have_their_columns(tmp_path, folder):
    store = new_store(tmp_path / "e.sqlite")
    try:
        pairs = pd.read_csv(export_tables(store, folder, tmp_path / "export")["pairs"])
        assert pairs.empty and "smart" in pairs.columns
        files = export_reference(store, folder, tmp_path / "reference")
        assert all(p.exists() for p in files.values())
        assert "smart" in pd.read_excel(files["comparisons"]).columns
    finally:
        store.close()


# -- import ----------------------------------------------------------------------------------
def test_import_of_an_export_gives_the_same_judgments_once(pairs_store, folder, tmp_path):
    files = export_tables(pairs_store, folder, tmp_path / "export")
    fresh = new_store(tmp_path / "fresh.sqlite")
    try:
        n = len(pairs_store.judgments())
        assert import_judgments(fresh, folder, files["pairs"]) == n
        assert judgments_of(fresh) == judgments_of(pairs_store)
        assert set(fresh.labellers()) == {"ann", "bo"}
        assert (fresh.judgments()["source"] == "import").all()
        assert sorted(fresh.judgments()["created_at"]) == pytest.approx(
            sorted(pairs_store.judgments()["created_at"])
        )
        assert import_judgments(fresh, folder, files["pairs"]) == 0, "importing again stores nothing"
        assert len(fresh.judgments()) == n
    finally:
        fresh.close()


def test_import_of_a_rating_export(rating_store, folder, tmp_path):
    files = export_tables(rating_store, folder, tmp_path / "export")
    fresh = new_store(tmp_path / "fresh.sqlite", kind="rating", levels=3, attributes=["keep"])
    try:
        assert import_judgments(fresh, folder, files["ratings"]) == 10
        assert judgments_of(fresh) == judgments_of(rating_store)
        assert import_judgments(fresh, folder, files["ratings"]) == 0
    finally:
        fresh.close()


def test_import_of_a_reference_folder_needs_one_means(pairs_store, folder, tmp_path):
    export_reference(pairs_store, folder, tmp_path / "reference")
    fresh = new_store(tmp_path / "fresh.sqlite")
    try:
        with pytest.raises(JudgmentError, match="one_means"):
            import_judgments(fresh, folder, tmp_path / "reference")
        assert len(fresh.judgments()) == 0
        n = import_judgments(fresh, folder, tmp_path / "reference", one_means="first")
        assert n == len(pairs_store.judgments())
        assert judgments_of(fresh) == judgments_of(pairs_store)
        assert import_judgments(fresh, folder, tmp_path / "reference", one_means="first") == 0
    finally:
        fresh.close()


def _table(tmp_path, rows, name="old.csv") -> Path:
    path = tmp_path / "tables" / name
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "bad, column, message",
    [
        ({"smart": 0.5}, "smart", "0.5 is not one click"),
        ({"warm": 2.0}, "warm", "2 is not one click"),
        ({"image_b": "../outside/im00.jpg"}, "image_b", "is not an image of"),
        ({"image_a": "/etc/passwd"}, "image_a", "is not an image of"),
        ({"image_a": "../photos/missing.jpg"}, "image_a", "is not an image of"),
    ],
)
def test_import_errors_name_file_row_and_column(folder, tmp_path, bad, column, message):
    good = {
        "user_id": "ann",
        "image_a": "../photos/im00.jpg",
        "image_b": "../photos/im01.jpg",
        "smart": 1.0,
        "warm": None,
    }
    path = _table(tmp_path, [good, good | {"image_b": "../photos/im02.jpg"}, good | bad])
    store = new_store(tmp_path / "s.sqlite")
    try:
        with pytest.raises(JudgmentError) as info:
            import_judgments(store, folder, path)
        text = str(info.value)
        assert str(path) in text and "row 4" in text and f"column {column}" in text and message in text
        assert len(store.judgments(withdrawn=True)) == 0, "nothing is stored unless every row is good"
    finally:
        store.close()


@pytest.mark.parametrize("value", [0, 4, 2.5])
def test_import_refuses_a_rating_outside_the_levels(folder, tmp_path, value):
    path = _table(
        tmp_path,
        [
            {"user_id": "ann", "image": "../photos/im00.jpg", "keep": 1},
            {"user_id": "ann", "image": "../photos/im01.jpg", "keep": value},
        ],
    )
    store = new_store(tmp_path / "s.sqlite", kind="rating", levels=3, attributes=["keep"])
    try:
        with pytest.raises(JudgmentError, match=r"row 3, column keep: .* is not a level 1-3") as info:
            import_judgments(store, folder, path)
        assert str(path) in str(info.value)
        assert len(store.judgments(withdrawn=True)) == 0
    finally:
        store.close()


def test_import_refuses_tables_without_the_columns(folder, tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    try:
        no_user = _table(
            tmp_path, [{"image_a": "../photos/im00.jpg", "image_b": "../photos/im01.jpg", "smart": 1}]
        )
        with pytest.raises(JudgmentError, match="user_id"):
            import_judgments(store, folder, no_user)
        other = _table(
            tmp_path,
            [{"user_id": "a", "image_a": "../photos/im00.jpg", "image_b": "../photos/im01.jpg", "tall": 1}],
            "other.csv",
        )
        with pytest.raises(JudgmentError, match="none of the project's attributes"):
            import_judgments(store, folder, other)
    finally:
        store.close()


def test_import_with_an_image_root(folder, tmp_path):
    path = _table(tmp_path, [{"user_id": "cy", "image_a": "im00.jpg", "image_b": "im03.jpg", "warm": 0}])
    store = new_store(tmp_path / "s.sqlite")
    try:
        assert import_judgments(store, folder, path, image_root=folder) == 1
        assert judgments_of(store) == [["cy", "warm", "im00.jpg", "im03.jpg", 2]]
        assert store.labellers() == ["cy"]
        assert store.labeller_for("") is None
    finally:
        store.close()
