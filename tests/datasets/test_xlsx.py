"""load_perception_xlsx on small tables in the reference system's Excel schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skpercept.datasets import BadRowsWarning, load_perception_xlsx
from skpercept.model_selection import ImageDisjointSplit

ATTRS = ["attractive", "smart", "trustworthy"]


def _write(path: Path, frame: pd.DataFrame) -> None:
    frame.to_excel(path, index=False, engine="openpyxl")


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    (root / "imgs").mkdir()
    for n in range(1, 7):
        Image.new("RGB", (4, 4), (n * 30, 0, 0)).save(root / "imgs" / f"{n}.jpg")
    images = pd.DataFrame(
        {
            "_id": [f"img{n}" for n in range(1, 7)],
            "name": list(range(1, 7)),
            "data_image_part": [f"imgs/{n}.jpg" for n in range(1, 7)],
            "update_date": pd.Timestamp("2024-01-01"),
        }
    )
    pairs = pd.DataFrame(
        {
            "im1": [1, 3, 5],
            "im2": [2, 4, 6],
            "db1": "big",
            "_id1": ["img1", "img3", "img5"],
            "db2": "big",
            "_id2": ["img2", "img4", "img6"],
            "name": [10, 11, 12],
        }
    )
    ratings = pd.DataFrame(
        {
            "_id": ["r1", "r2", "r3", "r4"],
            "user_id": ["u1", "u1", "u2", "u2"],
            "item_id": ["img1", "img2", "img3", "img6"],
            "attractive": [1, 2, 3, 4],
            "smart": [4, 3, 2, 1],
            "trustworthy": [2, 2, np.nan, 3],
            "lang": ["en", "en", "fa", "fa"],
            "insert_time": pd.to_datetime([f"2024-01-0{d}" for d in range(1, 5)]),
        }
    )
    comparisons = pd.DataFrame(
        {
            "_id": ["c1", "c2", "c3"],
            "user_id": ["u1", "u2", "u2"],
            "item_id": [10, 11, 12],
            "attractive": [1, 2, 1],
            "smart": [2, 2, 1],
            "trustworthy": [1, 1, 2],
            "lang": ["en", "fa", "fa"],
            "insert_time": pd.to_datetime(["2024-02-01", "2024-02-02", "2024-02-03"]),
        }
    )
    return {
        "big_data.xlsx": images,
        "big_compares.xlsx": pairs,
        "big_label.xlsx": ratings,
        "big_compare_label.xlsx": comparisons,
    }


@pytest.fixture
def data_dir(tmp_path):
    for name, frame in _tables(tmp_path).items():
        _write(tmp_path / name, frame)
    return tmp_path


def _edit(directory: Path, name: str, edit) -> None:
    frame = pd.read_excel(directory / name, engine="openpyxl")
    _write(directory / name, edit(frame))


def test_load_ratings_and_comparisons(data_dir):
    data = load_perception_xlsx(data_dir, one_means="first")
    r = data.ratings
    assert list(r.columns) == ["judgment_id", "user_id", "image", *ATTRS, "lang", "insert_time"]
    assert r.judgment_id.tolist() == ["r1", "r2", "r3", "r4"]
    assert [Path(p).name for p in r.image] == ["1.jpg", "2.jpg", "3.jpg", "6.jpg"]
    assert all(Path(p).is_file() for p in r.image)
    assert r.smart.tolist() == [4, 3, 2, 1] and np.isnan(r.trustworthy[2])
    assert pd.api.types.is_datetime64_any_dtype(r.insert_time)
    c = data.comparisons
    assert list(c.columns) == ["judgment_id", "user_id", "image_a", "image_b", *ATTRS, "lang", "insert_time"]
    assert [Path(p).name for p in c.image_a] == ["1.jpg", "3.jpg", "5.jpg"]
    assert [Path(p).name for p in c.image_b] == ["2.jpg", "4.jpg", "6.jpg"]
    assert c.attractive.tolist() == [1.0, 0.0, 1.0]
    assert c.smart.tolist() == [0.0, 0.0, 1.0]
    assert data.dropped.empty


def test_one_means_is_required_and_flips_labels(data_dir):
    with pytest.raises(TypeError):
        load_perception_xlsx(data_dir)
    with pytest.raises(ValueError, match="one_means"):
        load_perception_xlsx(data_dir, one_means=1)
    first = load_perception_xlsx(data_dir, one_means="first").comparisons
    second = load_perception_xlsx(data_dir, one_means="second").comparisons
    np.testing.assert_array_equal(first[ATTRS].to_numpy(), 1 - second[ATTRS].to_numpy())


@pytest.mark.parametrize("pair_key", ["id", "name", "auto"])
def test_pair_keys_agree(data_dir, pair_key):
    c = load_perception_xlsx(data_dir, one_means="first", pair_key=pair_key, ratings=None)
    assert [Path(p).name for p in c.comparisons.image_a] == ["1.jpg", "3.jpg", "5.jpg"]
    assert c.ratings is None


def test_path_columns_without_image_table(data_dir):
    _edit(
        data_dir,
        "big_compares.xlsx",
        lambda f: f.drop(columns=["im1", "im2", "_id1", "_id2"]).assign(
            im1_path=["imgs/1.jpg", "imgs/3.jpg", "imgs/5.jpg"],
            im2_path=["imgs/2.jpg", "imgs/4.jpg", "imgs/6.jpg"],
        ),
    )
    data = load_perception_xlsx(data_dir, one_means="first", ratings=None, images=None, pair_key="path")
    assert [Path(p).name for p in data.comparisons.image_b] == ["2.jpg", "4.jpg", "6.jpg"]
    auto = load_perception_xlsx(data_dir, one_means="first", ratings=None)
    assert auto.comparisons.image_b.tolist() == data.comparisons.image_b.tolist()


def test_auto_pair_key_refuses_to_guess_when_links_disagree(data_dir):
    _edit(data_dir, "big_compares.xlsx", lambda f: f.assign(im1=[3, 1, 5]))
    with pytest.raises(ValueError, match=r"big_compares.xlsx row 2.*disagree.*pair_key"):
        load_perception_xlsx(data_dir, one_means="first", ratings=None)
    by_id = load_perception_xlsx(data_dir, one_means="first", ratings=None, pair_key="id")
    assert Path(by_id.comparisons.image_a[0]).name == "1.jpg"


def test_cannot_tell_how_pairs_link(data_dir):
    _edit(data_dir, "big_compares.xlsx", lambda f: f[["name", "db1", "db2"]])
    with pytest.raises(ValueError, match="Cannot tell how big_compares.xlsx names its images"):
        load_perception_xlsx(data_dir, one_means="first", ratings=None)


def test_bad_values_are_listed_with_file_row_and_column(data_dir):
    _edit(data_dir, "big_label.xlsx", lambda f: f.assign(smart=[4, 7, 2, "x"]))
    _edit(data_dir, "big_compare_label.xlsx", lambda f: f.assign(trustworthy=[1, 3, 2]))
    with pytest.raises(ValueError) as info:
        load_perception_xlsx(data_dir, one_means="first")
    message = str(info.value)
    assert "big_label.xlsx: 2 bad row(s)" in message
    assert "big_label.xlsx row 3, column 'smart': value 7 is not one of 1, 2, 3, 4" in message
    assert "big_label.xlsx row 5, column 'smart': not a number: 'x'" in message
    assert "big_compare_label.xlsx row 3, column 'trustworthy': value 3 is not one of 1, 2" in message
    assert "errors='drop'" in message


def test_missing_images_and_unknown_ids(data_dir):
    (data_dir / "imgs" / "4.jpg").unlink()
    _edit(data_dir, "big_label.xlsx", lambda f: f.assign(item_id=["img1", "nope", "img3", None]))
    _edit(data_dir, "big_compare_label.xlsx", lambda f: f.assign(item_id=[10, 11, 99]))
    with pytest.raises(ValueError) as info:
        load_perception_xlsx(data_dir, one_means="first")
    message = str(info.value)
    assert "big_label.xlsx row 3, column 'item_id': image _id 'nope' not found in big_data.xlsx" in message
    assert "big_label.xlsx row 5, column 'item_id': missing image reference" in message
    assert "big_compare_label.xlsx row 3, column 'item_id'" in message and "4.jpg" in message
    assert "image file not found" in message
    assert "pair _id 99" not in message and "pair name '99' not found in big_compares.xlsx" in message


def test_errors_drop_warns_and_keeps_good_rows(data_dir):
    (data_dir / "imgs" / "6.jpg").unlink()
    _edit(data_dir, "big_label.xlsx", lambda f: f.assign(attractive=[1, 5, 3, 4]))
    with pytest.warns(BadRowsWarning, match=r"big_label.xlsx: 2 bad row\(s\)") as record:
        data = load_perception_xlsx(data_dir, one_means="first", errors="drop")
    assert "big_compare_label.xlsx: 1 bad row(s)" in str(record[0].message)
    assert data.ratings.judgment_id.tolist() == ["r1", "r3"]
    assert data.comparisons.judgment_id.tolist() == ["c1", "c2"]
    assert sorted(data.dropped.row.tolist()) == [3, 4, 5]
    assert set(data.dropped.file) == {"big_label.xlsx", "big_compare_label.xlsx"}


def test_missing_columns_always_raise(data_dir):
    _edit(data_dir, "big_label.xlsx", lambda f: f.drop(columns=["smart"]))
    with pytest.raises(ValueError, match=r"big_label.xlsx is missing column\(s\) \['smart'\]"):
        load_perception_xlsx(data_dir, one_means="first", errors="drop")
    with pytest.raises(FileNotFoundError, match="nothere.xlsx"):
        load_perception_xlsx(data_dir, one_means="first", comparisons="nothere.xlsx")


def test_csv_tables_numeric_ids_and_image_root(tmp_path):
    tables = _tables(tmp_path)
    tables["big_data.xlsx"]["_id"] = [101, 102, 103, 104, 105, 106]
    tables["big_data.xlsx"]["data_image_part"] = [f"{n}.jpg" for n in range(1, 7)]
    tables["big_label.xlsx"]["item_id"] = ["101", "102.0", 103, 106.0]
    for name, frame in tables.items():
        frame.to_csv(tmp_path / name.replace(".xlsx", ".csv"), index=False)
    data = load_perception_xlsx(
        tmp_path,
        one_means="second",
        image_root=tmp_path / "imgs",
        ratings="big_label.csv",
        comparisons="big_compare_label.csv",
        images="big_data.csv",
        pairs="big_compares.csv",
        pair_key="name",
    )
    assert [Path(p).name for p in data.ratings.image] == ["1.jpg", "2.jpg", "3.jpg", "6.jpg"]
    assert data.comparisons.attractive.tolist() == [0.0, 1.0, 0.0]


def test_loaded_ratings_feed_the_image_disjoint_splitter(data_dir):
    ratings = load_perception_xlsx(data_dir, one_means="first", comparisons=None).ratings
    for train, test in ImageDisjointSplit(2, random_state=0).split(ratings):
        assert not set(ratings.image.iloc[train]) & set(ratings.image.iloc[test])


def test_row_numbers_are_the_files_own_after_blank_lines(tmp_path):
    """Header = row 1 and blank lines count, in csv as in Excel: the row a user would open."""
    tables = _tables(tmp_path)
    _write(tmp_path / "big_data.xlsx", tables["big_data.xlsx"])
    ratings = tables["big_label.xlsx"]
    ratings.loc[3, "smart"] = 9  # data row 3: row 5, or row 6 after a blank line above it
    text = ratings.to_csv(index=False).splitlines()
    text.insert(2, "")
    (tmp_path / "big_label.csv").write_text("\n".join(text) + "\n")
    blank = pd.concat([ratings.iloc[:1], ratings.iloc[:1].map(lambda v: None), ratings.iloc[1:]])
    _write(tmp_path / "big_label.xlsx", blank)
    for name in ("big_label.csv", "big_label.xlsx"):
        with pytest.raises(ValueError, match=rf"{name} row 6, column 'smart': value 9"):
            load_perception_xlsx(tmp_path, one_means="first", ratings=name, comparisons=None, pairs=None)


def test_a_folder_is_not_reported_as_missing(tmp_path):
    _write(tmp_path / "big_data.xlsx", _tables(tmp_path)["big_data.xlsx"])
    (tmp_path / "folder.xlsx").mkdir()
    with pytest.raises(IsADirectoryError, match="folder.xlsx is a folder"):
        load_perception_xlsx(tmp_path, one_means="first", ratings="folder.xlsx", comparisons=None, pairs=None)
