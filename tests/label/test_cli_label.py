"""``skpercept label``: --export, --import and --apply exit without serving; the photo folder is
never written; --copy-keepers never overwrites; clear errors for bad folders and options.

The embeddings come from the default backbone (the shipped lite0 weights, offline) on a few
tiny images, cached in the test's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from skpercept import cli
from tests.label.conftest import make_images

N_IMAGES = 12


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` with its size and modification time."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            stat = path.lstat()
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    make_images(folder, N_IMAGES, size=24)
    return folder


@pytest.fixture
def common(tmp_path) -> list:
    return ["--no-progress", "--cache-dir", tmp_path / "cache", "--workspace", tmp_path / "workspace"]


def pairs_table(tmp_path, who=("ann", "bo")) -> Path:
    """Comparisons of the 12 images by brightness (the brighter chosen), paths relative to the table."""
    rows = []
    for k in range(N_IMAGES):
        for step in (1, 5):
            i, j = k, (k + step) % N_IMAGES
            rows.append(
                {
                    "user_id": who[k % len(who)],
                    "image_a": f"../photos/im{i:02d}.jpg",
                    "image_b": f"../photos/im{j:02d}.jpg",
                    "warm": float(i > j),
                }
            )
    path = tmp_path / "tables" / "pairs.csv"
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def keep_table(tmp_path) -> Path:
    """Ratings of the 12 images: the brighter two thirds kept (2), the rest deleted (1)."""
    rows = [
        {"user_id": "ann", "image": f"../photos/im{k:02d}.jpg", "keep": 2 if k >= 4 else 1}
        for k in range(N_IMAGES)
    ]
    path = tmp_path / "tables" / "keep.csv"
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_import_export_and_apply_never_write_into_the_folder(folder, tmp_path, common, capsys):
    before = snapshot(folder)
    table = pairs_table(tmp_path)
    assert run("label", folder, "--attributes", "warm", "--import", table, *common) == 0
    assert "Imported 24 new judgments" in capsys.readouterr().err
    assert run("label", folder, "--attributes", "warm", "--import", table, *common) == 0
    assert "Imported 0 new judgments" in capsys.readouterr().err
    assert (tmp_path / "workspace" / "labels.sqlite").exists()

    export = tmp_path / "export"
    assert run("label", folder, "--attributes", "warm", "--export", export, *common) == 0
    exported = pd.read_csv(export / "pairs.csv")
    assert len(exported) == 24 and set(exported["user_id"]) == {"ann", "bo"}
    assert all((export / "reference" / name).exists() for name in ("big_data.xlsx", "big_compare_label.xlsx"))
    assert "pairs.csv" in capsys.readouterr().err

    out = tmp_path / "results"
    assert run("label", folder, "--attributes", "warm", "--apply", "ann", "--output", out, *common) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ann-warm.csv", "ann-warm.html"]
    ranking = pd.read_csv(out / "ann-warm.csv")
    assert list(ranking.columns[:4]) == ["path", "item", "rank", "score"]
    assert sorted(ranking["item"]) == [f"im{k:02d}.jpg" for k in range(N_IMAGES)]
    assert all(Path(p) == folder.resolve() / i for p, i in zip(ranking["path"], ranking["item"]))
    html = (out / "ann-warm.html").read_text()
    assert html.count("<figure") == N_IMAGES and "data:image/jpeg;base64," in html
    assert "No photo was moved or deleted" in capsys.readouterr().err

    assert snapshot(folder) == before, "the photo folder was written to"


def test_apply_of_an_unknown_labeller_is_an_error(folder, tmp_path, common, capsys):
    assert run("label", folder, "--attributes", "warm", "--import", pairs_table(tmp_path), *common) == 0
    capsys.readouterr()
    assert run("label", folder, "--attributes", "warm", "--apply", "eve", *common) == 2
    assert "--apply eve: no such labeller" in capsys.readouterr().err


def test_keep_delete_apply_copies_keepers_and_never_overwrites(folder, tmp_path, common, capsys):
    before = snapshot(folder)
    assert run("label", folder, "--keep-delete", "--import", keep_table(tmp_path), *common) == 0
    keepers = tmp_path / "keepers"
    out = tmp_path / "results"
    assert (
        run(
            "label",
            folder,
            "--keep-delete",
            "--apply",
            "ann",
            "--output",
            out,
            "--copy-keepers",
            keepers,
            *common,
        )
        == 0
    )
    ranking = pd.read_csv(out / "ann-keep.csv")
    assert {"predicted", "confidence", "keep", "p_1", "p_2"} <= set(ranking.columns)
    assert (ranking["keep"] == (ranking["predicted"] == 2)).all()
    kept = sorted(ranking.loc[ranking["keep"], "item"])
    assert kept, "some photos are predicted keep"
    assert sorted(p.name for p in keepers.iterdir()) == kept
    for name in kept:
        assert (keepers / name).read_bytes() == (folder / name).read_bytes()
    html = (out / "ann-keep.html").read_text()
    assert 'class="keep"' in html and "keep (" in html

    # Again into a folder that already has a file of a keeper's name: it is left alone.
    again = tmp_path / "keepers2"
    again.mkdir()
    (again / kept[0]).write_bytes(b"mine")
    capsys.readouterr()
    assert (
        run(
            "label",
            folder,
            "--keep-delete",
            "--apply",
            "ann",
            "--output",
            out,
            "--copy-keepers",
            again,
            *common,
        )
        == 0
    )
    assert (again / kept[0]).read_bytes() == b"mine"
    assert sorted(p.name for p in again.iterdir()) == kept
    assert "already there, not overwritten" in capsys.readouterr().err
    assert snapshot(folder) == before, "the photo folder was written to"


def test_copy_keepers_inside_the_folder_is_an_error(folder, tmp_path, common, capsys):
    assert run("label", folder, "--keep-delete", "--import", keep_table(tmp_path), *common) == 0
    before = snapshot(folder)
    capsys.readouterr()
    status = run(
        "label",
        folder,
        "--keep-delete",
        "--apply",
        "ann",
        "--output",
        tmp_path / "results",
        "--copy-keepers",
        folder / "keepers",
        *common,
    )
    assert status == 2
    assert "inside the photo folder" in capsys.readouterr().err
    assert snapshot(folder) == before
    assert not (tmp_path / "results").exists(), "refused before anything is written"


def test_workspace_inside_the_folder_is_an_error(folder, tmp_path, capsys):
    before = snapshot(folder)
    status = run(
        "label",
        folder,
        "--attributes",
        "warm",
        "--export",
        tmp_path / "export",
        "--workspace",
        folder / "labels",
        "--no-progress",
    )
    assert status == 2
    assert "inside the photo folder" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_output_inside_the_folder_is_an_error(folder, tmp_path, common, capsys):
    assert run("label", folder, "--attributes", "warm", "--import", pairs_table(tmp_path), *common) == 0
    before = snapshot(folder)
    capsys.readouterr()
    assert (
        run("label", folder, "--attributes", "warm", "--apply", "ann", "--output", folder / "out", *common)
        == 2
    )
    assert "inside the photo folder" in capsys.readouterr().err
    assert snapshot(folder) == before


@pytest.mark.parametrize("n_images", [0, 1])
def test_a_folder_with_fewer_than_two_images_is_an_error(tmp_path, n_images, capsys):
    folder = tmp_path / "few"
    make_images(folder, n_images)
    (folder / "notes.txt").write_text("not an image")
    status = run("label", folder, "--attributes", "warm", "--export", tmp_path / "export", "--no-progress")
    assert status == 2
    assert f"{n_images} image(s)" in capsys.readouterr().err
    assert not (tmp_path / "few-labels").exists()


def test_a_missing_folder_is_an_error(tmp_path, capsys):
    assert run("label", tmp_path / "nope", "--attributes", "warm", "--export", tmp_path / "x") == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--kind", "rating", "--levels", "3", "--level-names", "bad,good"],
            "--level-names: 2 names for 3 levels",
        ),
        (["--keep-delete", "--level-names", "no,maybe,yes"], "--level-names: 3 names for 2 levels"),
        ([], "--attributes"),
    ],
)
def test_bad_project_options_are_errors(folder, tmp_path, common, options, message, capsys):
    attributes = ["--attributes", "warm"] if options else []
    status = run("label", folder, *attributes, *options, "--export", tmp_path / "export", *common)
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "workspace").exists()


def test_another_kind_on_an_existing_database_is_an_error(folder, tmp_path, common, capsys):
    assert run("label", folder, "--attributes", "warm", "--export", tmp_path / "export", *common) == 0
    capsys.readouterr()
    assert run("label", folder, "--keep-delete", "--export", tmp_path / "export", *common) == 2
    err = capsys.readouterr().err
    assert "['warm']" in err and "['keep']" in err


def test_import_errors_name_the_row(folder, tmp_path, common, capsys):
    path = tmp_path / "half.csv"
    pd.DataFrame(
        {"user_id": ["ann"], "image_a": ["photos/im00.jpg"], "image_b": ["photos/im01.jpg"], "warm": [0.5]}
    ).to_csv(path, index=False)
    assert run("label", folder, "--attributes", "warm", "--import", path, *common) == 2
    err = capsys.readouterr().err
    assert "row 2, column warm" in err and "0.5 is not one click" in err


def test_export_never_lands_on_an_input(tmp_path, capsys):
    photos = tmp_path / "photos"
    make_images(photos, 4)
    table = tmp_path / "old" / "pairs.csv"
    table.parent.mkdir()
    pd.DataFrame(
        {"user_id": ["ann"], "image_a": ["../photos/im00.jpg"], "image_b": ["../photos/im01.jpg"], "x": [1]}
    ).to_csv(table, index=False)
    before = table.read_bytes()
    base = [
        "label",
        photos,
        "--attributes",
        "x",
        "--workspace",
        tmp_path / "ws",
        "--no-progress",
        "--cache-dir",
        tmp_path / "cache",
    ]
    assert run(*base, "--import", str(table), "--export", str(tmp_path / "old")) == 2
    assert "pairs.csv" in capsys.readouterr().err and table.read_bytes() == before
    assert run(*base, "--export", photos / "labels") == 2
    assert "inside the photo folder" in capsys.readouterr().err
    assert not (photos / "labels").exists()


@pytest.mark.parametrize(
    "db, message",
    [
        ("nosuchdialect://x", "--db nosuchdialect://x: SQLAlchemy knows no database 'nosuchdialect'"),
        ("://x", "--db ://x is not a database URL"),
        (
            "postgresql+psycopg://me:s3cret@localhost:port/x",
            "--db postgresql+psycopg://me:***@localhost:port/x",
        ),
        (
            "postgresql+psycopg://me:s3cret@127.0.0.1:1/x",
            "--db postgresql+psycopg://me:***@127.0.0.1:1/x: cannot open",
        ),
        ("FILE/labels.sqlite", "cannot create the database's folder"),
        ("FOLDER", "cannot open the database"),
    ],
    ids=["dialect", "not a URL", "bad port", "no server", "under a file", "a folder"],
)
def test_a_bad_db_is_one_error_line(folder, tmp_path, common, capsys, db, message):
    if "127.0.0.1:1" in db:
        pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install skpercept[postgres]")
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    db = db.replace("FILE", str(tmp_path / "file.txt")).replace("FOLDER", str(tmp_path / "a-folder"))
    status = run(
        "label", folder, "--attributes", "warm", "--db", db, "--export", tmp_path / "export", *common
    )
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "--db " in err
    assert len(err.strip().splitlines()) == 1, err  # no traceback
    assert "s3cret" not in err and "Traceback" not in err
    assert not (tmp_path / "export").exists() and not (tmp_path / "workspace").exists()
