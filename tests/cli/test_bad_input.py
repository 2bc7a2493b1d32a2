"""The ``skpercept`` command under a zoo of bad input: never silently wrong, nothing ever lost.

Each case is run the way a user runs it (``cli.main([...])`` in-process; a subprocess where a
signal or a file-size limit is part of the case) and checks the exit status, that the message
names the file / row / column, and that no file was lost or half-written. Rows are numbered as
the spreadsheet shows them: header = row 1, so data row ``i`` (0-based) is row ``i + 2``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skpercept import cli
from skpercept.datasets import load_perception_xlsx
from skpercept.persistence import save_model
from tests.cli._data import N_IMAGES, common, pairs_frame, ratings_frame, run, snapshot, zoo_world

pytestmark = pytest.mark.usefixtures("tiny_lite0_for_module")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_lite0_for_module):
    """Images, an embedding cache and two fitted models (integer and text user ids)."""
    return zoo_world(tmp_path_factory.mktemp("zoo"))


# -- the zoo: one row per case ------------------------------------------------------------------
def _write(world, name: str, frame: pd.DataFrame, **kwargs) -> Path:
    path = world["root"] / name
    frame.to_csv(path, index=False, **kwargs)
    return path


def case_predict_onto_input(world):
    table = world["table_int"]
    return ["predict", table, "--model", world["model_int"], "--output", table], ["is also an input"]


def case_fit_onto_input(world):
    table = world["table_int"]
    return ["fit", table, "--model", table], ["is also an input"]


def case_rating_outside_scale(world):
    frame = ratings_frame()
    frame.loc[4, "warm"] = 7
    frame.loc[9, "calm"] = -1
    path = _write(world, "seven.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], [
        "scale with gaps",
        "column 'warm': 7 at row 6",
        "column 'calm': -1 at row 11",
        "--levels -1 0 1 2 3 4 5 6 7",
    ]


def case_one_fraction(world):
    frame = ratings_frame().astype({"warm": float})
    frame.loc[5, "warm"] = 2.5
    path = _write(world, "half.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], [
        "not whole numbers",
        "column 'warm': 2.5 at row 7",
        "--head regressor",
    ]


def case_outside_declared_levels(world):
    frame = ratings_frame()
    frame.loc[2, "warm"] = 5
    path = _write(world, "five.csv", frame)
    argv = ["fit", path, "--model", world["root"] / "new.joblib", "--levels", "1", "2", "3", "4"]
    return argv, ["outside the declared --levels 1, 2, 3, 4", "column 'warm': 5 at row 4"]


def case_evaluate_outside_training(world):
    frame = ratings_frame()
    frame.loc[3, "calm"] = 6
    path = _write(world, "six.csv", frame)
    return ["evaluate", path, "--model", world["model_int"]], [
        "outside what the model was trained on",
        "levels 1, 2, 3, 4",
        "column 'calm': 6 at row 5",
    ]


def case_corrupt_image(world):
    (world["root"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    frame = ratings_frame()
    frame.loc[7, "image"] = "broken.png"
    path = _write(world, "corrupt.csv", frame)
    argv = ["fit", path, "--model", world["root"] / "new.joblib"]
    return argv, [
        "corrupt.csv row 9, column 'image'",
        "broken.png: not a recognised image format (corrupt file?).",
    ]


def case_empty_image(world):
    (world["root"] / "empty.png").write_bytes(b"")
    frame = ratings_frame(("u1", "u2", "u3"))
    frame.loc[[3, 20], "image"] = "empty.png"
    path = _write(world, "emptyimg.csv", frame)
    return ["predict", path, "--model", world["model_str"], "--output", world["root"] / "o.csv"], [
        "cannot load image",
        "rows 5, 22",
        "empty.png",
    ]


def case_truncated_model(world):
    good = world["model_int"].read_bytes()
    model = world["root"] / "truncated.joblib"
    model.write_bytes(good[: len(good) // 3])
    return ["predict", world["table_int"], "--model", model, "--output", world["root"] / "o.csv"], [
        "truncated.joblib has no skpercept checksum",
        "cut short",
    ]


def case_table_as_model(world):
    model = world["root"] / "table.joblib"
    model.write_bytes(world["table_int"].read_bytes())
    return ["evaluate", world["table_int"], "--model", model], [
        "table.joblib is not a model file",
        "image,user_id",
    ]


def case_empty_pair_column(world):
    frame = pairs_frame().assign(warm=np.nan)
    path = _write(world, "emptypairs.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib", "--attributes", "warm"], [
        "column 'warm' has no values"
    ]


def case_empty_pair_column_auto(world):
    frame = pairs_frame().assign(warm=np.nan)
    path = _write(world, "emptypairs2.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], [
        "no attribute column found",
        "'warm': empty",
    ]


def case_empty_rating_column(world):
    frame = ratings_frame().assign(warm=np.nan)[["image", "warm"]]
    path = _write(world, "emptyrating.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib", "--attributes", "warm"], [
        "column 'warm' has no values"
    ]


def case_latin1(world):
    path = world["root"] / "latin1.csv"
    path.write_bytes("image,warm\nim0.png,1\nim1.png,2\nfacé.png,3\n".encode("latin-1"))
    return ["fit", path, "--model", world["root"] / "new.joblib"], [
        "row 4",
        "byte 0xe9",
        "--encoding",
    ]


def case_evaluate_wrong_task(world):
    path = _write(world, "pairs_for_rating.csv", pairs_frame())
    return ["evaluate", path, "--model", world["model_int"]], ["the model is a rating model", "'image'"]


def case_folder_as_table(world):
    return ["fit", world["root"], "--model", world["root"] / "new.joblib"], ["is a folder"]


def case_folder_as_image(world):
    (world["root"] / "sub").mkdir(exist_ok=True)
    frame = ratings_frame()
    frame.loc[0, "image"] = "sub"
    path = _write(world, "folderimage.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], ["names a folder", "row 2", "'image'"]


def case_semicolons(world):
    path = _write(world, "semi.csv", ratings_frame(), sep=";")
    return ["fit", path, "--model", world["root"] / "new.joblib"], ["semicolon-separated", "--sep ';'"]


def case_self_comparison(world):
    frame = pairs_frame()
    frame.loc[0, "image_b"] = frame.loc[0, "image_a"]
    frame.loc[12, "image_b"] = "./" + frame.loc[12, "image_a"]  # the same file, spelled otherwise
    path = _write(world, "self.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], [
        "2 comparison(s) of an image with itself",
        "rows 2, 14",
    ]


def case_levels_for_pairs(world):
    path = _write(world, "pairlevels.csv", pairs_frame())
    argv = ["fit", path, "--model", world["root"] / "new.joblib", "--levels", "0", "1"]
    return argv, ["--levels are for rating tables"]


def case_nan_user_id(world):
    frame = ratings_frame()
    frame.loc[10, "user_id"] = np.nan
    path = _write(world, "nanuser.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], ["'user_id' is empty at row 12"]


def case_duplicate_header(world):
    path = world["root"] / "dup.csv"
    path.write_text("image,warm,warm\nim0.png,1,2\nim1.png,2,3\n")
    return ["fit", path, "--model", world["root"] / "new.joblib"], ["'warm' appears 2 times"]


def case_one_two_pairs(world):
    frame = pairs_frame().assign(warm=1.0)
    frame.loc[6, "warm"] = 2
    path = _write(world, "onetwo.csv", frame)
    return ["fit", path, "--model", world["root"] / "new.joblib"], ["row 8", "convert it first"]


ZOO = {name[5:]: case for name, case in sorted(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo(world, capsys, name):
    argv, fragments = ZOO[name](world)
    before = snapshot(world["root"])
    code, _, err = run(capsys, *argv, *common(world, argv[0]))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("skpercept ")]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err
    assert any(str(a) in lines[0] for a in argv if isinstance(a, Path))  # the file is named
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    after = snapshot(world["root"])
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost or changed
    assert not [k for k in after if k not in before and (k.endswith(".tmp") or k.endswith(".joblib"))]


# -- cases that succeed, but must say what they did ---------------------------------------------
def test_predictions_never_pass_for_labels(world, tmp_path, capsys):
    """Before: predictions reused the label's name and dropped the labels; evaluate on the output
    graded the model against itself."""
    out = world["root"] / "predicted.csv"  # next to the images its paths are relative to
    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", out]
    assert run(capsys, *argv, *common(world, "predict"))[0] == 0
    pred = pd.read_csv(out)
    table = pd.read_csv(world["table_int"])
    pd.testing.assert_frame_equal(pred[table.columns], table)  # input kept as read
    new = [c for c in pred.columns if c not in table.columns]
    assert new and all(c.startswith(("pred_", "p_")) for c in new)
    graded = [
        run(capsys, "evaluate", t, "--model", world["model_int"], *common(world, "evaluate"))[1]
        for t in (world["table_int"], out)
    ]
    assert "| warm" in graded[0]
    assert graded[0] == graded[1]  # the predictions file still grades against the real labels


def test_text_ids_against_integer_model(world, tmp_path, capsys):
    """Before: one id 'P7' made pandas read every id as text, so all 36 known people became
    'the average person' (every prediction changed) with exit 0."""
    frame = ratings_frame()
    frame["user_id"] = frame["user_id"].astype(object)
    frame.loc[[0, 1], "user_id"] = "P7"
    table = _write(world, "p7.csv", frame)
    code, _, err = run(
        capsys,
        "predict",
        table,
        "--model",
        world["model_int"],
        "--output",
        tmp_path / "a.csv",
        *common(world, "p"),
    )
    assert code == 0
    assert "integer user ids but this table's 'user_id' column holds text" in err
    assert "34 row(s) whose id is a whole number were matched" in err and "2 row(s) are not" in err
    assert "2 row(s) from 1 user(s) the model never saw (e.g. 'P7' at row 2)" in err
    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", tmp_path / "b.csv"]
    assert run(capsys, *argv, *common(world, "predict"))[0] == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    np.testing.assert_allclose(a["pred_warm_expected"][2:], b["pred_warm_expected"][2:])
    assert not np.allclose(a["pred_warm_expected"][:2], b["pred_warm_expected"][:2])


def test_integer_ids_against_text_model(world, tmp_path, capsys):
    """Before: a model trained on text ids crashed with a numpy traceback on integer ids."""
    code, _, err = run(
        capsys,
        "predict",
        world["table_int"],
        "--model",
        world["model_str"],
        "--output",
        tmp_path / "o.csv",
        *common(world, "predict"),
    )
    assert code == 0 and "Traceback" not in err
    assert "trained on text user ids but this table's 'user_id' column holds integers" in err
    assert "36 row(s) from 3 user(s) the model never saw" in err


def test_index_column_is_not_an_attribute(world, tmp_path, capsys):
    """Before: 'Unnamed: 0' was learned as an attribute and turned the head into a regressor."""
    table = world["root"] / "indexed.csv"
    frame = ratings_frame().assign(lang="en", insert_time="2024-01-01", judgment_id=range(36))
    frame.to_csv(table)  # pandas writes its index as an unnamed first column
    model = tmp_path / "m.joblib"
    code, _, err = run(capsys, "fit", table, "--model", model, *common(world))
    assert code == 0
    assert "'Unnamed: 0': an index column" in err and "'lang'" in err and "'insert_time'" in err
    assert "Head: classifier (whole-number ratings on 4 levels)" in err
    info = joblib.load(model).skpercept_info_
    assert info["attributes"] == ["warm", "calm"] and info["head"] == "classifier"


def test_trailing_comma_and_declared_levels(world, tmp_path, capsys):
    """A trailing separator adds an empty column; --levels keeps unobserved levels as classes."""
    table = world["root"] / "trailing.csv"
    text = ratings_frame()[["image", "warm"]].to_csv(index=False)
    table.write_text("\n".join(line + "," for line in text.splitlines()) + "\n")
    model = tmp_path / "m.joblib"
    argv = ["fit", table, "--model", model, "--levels", "1", "2", "3", "4", "5", *common(world)]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert "'Unnamed: 2': empty" in err and "Head: classifier (--levels 1, 2, 3, 4, 5)" in err
    assert joblib.load(model).skpercept_info_["levels"] == [1, 2, 3, 4, 5]


def test_regressor_choice_is_printed_and_range_kept(world, tmp_path, capsys):
    frame = pd.DataFrame(
        {"image": [f"im{i}.png" for i in range(N_IMAGES)], "score": np.linspace(0.3, 9.7, 12)}
    )
    table = _write(world, "means.csv", frame)
    model = tmp_path / "r.joblib"
    code, _, err = run(capsys, "fit", table, "--model", model, *common(world))
    assert code == 0 and "Head: regressor (ratings are not whole numbers (e.g. 0.3))" in err
    assert joblib.load(model).skpercept_info_["range"] == pytest.approx([0.3, 9.7])


def test_debug_shows_traceback_and_bugs_keep_theirs(world, tmp_path, capsys, monkeypatch):
    argv = ["fit", world["root"] / "absent.csv", "--model", tmp_path / "m.joblib"]
    code, _, err = run(capsys, *argv, "--debug")
    assert code == 2 and "Traceback" in err and "Table file not found" in err

    predict = ["predict", world["table_int"], "--model", world["model_int"], "--output", tmp_path / "x.csv"]
    for error in (ZeroDivisionError("a bug"), ValueError("a bug"), ImportError("No module named 'x'")):

        def bug(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(cli.predict, "predict_table", bug)
        with pytest.raises(type(error), match=str(error)):  # a bug keeps its traceback
            cli.main([str(a) for a in predict])

    def missing_extra(*args, **kwargs):
        raise ImportError("'dlib' is required; install it with `pip install 'skpercept[face]'`.")

    monkeypatch.setattr(cli.predict, "predict_table", missing_extra)
    code, _, err = run(capsys, *predict)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        "skpercept predict: error: 'dlib' is required; install it with `pip install 'skpercept[face]'`."
    )

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.predict, "predict_table", ctrl_c)
    code, _, err = run(capsys, *predict)
    assert (code, err.splitlines()[-1]) == (130, "skpercept predict: interrupted (Ctrl-C).")
    assert "is a pickle, which runs code when it is loaded" in err  # said before the model is read
    assert not (tmp_path / "x.csv").exists()


def test_failed_write_keeps_the_previous_file(world, tmp_path, capsys, monkeypatch):
    """Writes that fail midway (disk full) leave the old model / predictions whole, no temp file."""
    model, out = tmp_path / "m.joblib", tmp_path / "pred.csv"
    model.write_bytes(world["model_int"].read_bytes())
    out.write_text("previous predictions\n")

    def full_disk(value, file, *args, **kwargs):
        file.write(b"\x80" + b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(joblib, "dump", full_disk)
    code, _, err = run(capsys, "fit", world["table_int"], "--model", model, *common(world))
    assert code == 2 and "No space left on device" in err and "previous file was kept" in err
    assert model.read_bytes() == world["model_int"].read_bytes()

    def full_csv(self, file, *args, **kwargs):
        file.write("image,pred_wa")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_csv)
    code, _, err = run(capsys, "predict", world["table_int"], "--model", model, "--output", out)
    assert code == 2 and str(out) in err
    assert out.read_text() == "previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "pred.csv"]


def test_row_numbers_match_the_xlsx_loader(tmp_path, capsys):
    """Before: the command said 'row 5' (0-based data row) where the loader said row 7."""
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    pd.DataFrame({"_id": ["x"], "data_image_part": ["a.png"]}).to_excel(tmp_path / "images.xlsx", index=False)
    ratings = pd.DataFrame(
        {
            "_id": list("abcdefg"),
            "user_id": "u",
            "item_id": "x",
            "image": "a.png",
            "warm": [1, 2, 3, 4, 1, "hi", 2],
        }
    )
    ratings.to_excel(tmp_path / "ratings.xlsx", index=False)
    with pytest.raises(ValueError, match=r"ratings.xlsx row 7, column 'warm'"):
        load_perception_xlsx(tmp_path, one_means="first", ratings="ratings.xlsx", images="images.xlsx",
                             comparisons=None, pairs=None, attributes=["warm"])  # fmt: skip
    argv = ["fit", tmp_path / "ratings.xlsx", "--model", tmp_path / "m.joblib", "--attributes", "warm"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "column 'warm' has non-numeric values at row 7" in err


# -- subprocesses: a real Ctrl-C and a real file-size limit -------------------------------------
PRELUDE = """
import sys
sys.path.insert(0, {root!r})
from tests._images import use_tiny_backbone
use_tiny_backbone("lite0", tta=False)
"""


# Ctrl-C placed where it is meant to arrive: half the model is written to the temporary file, the
# signal goes to the main thread, and the writer blocks on an event nobody sets, so only the
# interrupt can end the save (no timer to race).
INTERRUPT_WHILE_SAVING = """
import signal, threading
# a shell that starts a job in the background starts it with SIGINT ignored, and children inherit
# that: give this run the handler an interactive terminal gives it, so its Ctrl-C is one
signal.signal(signal.SIGINT, signal.default_int_handler)
import skpercept.persistence as persistence
from skpercept._io import atomic_write
def write_half_then_ctrl_c(path, data):
    with atomic_write(path, "wb") as file:
        file.write(data[: len(data) // 2])
        file.flush()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        threading.Event().wait()
persistence.write_bytes_atomic = write_half_then_ctrl_c
"""


def _start(code: str, argv, **kwargs) -> subprocess.Popen:
    script = PRELUDE.format(root=str(Path(__file__).resolve().parents[2])) + code
    script += f"\nfrom skpercept import cli\nsys.exit(cli.main({[str(a) for a in argv]!r}))\n"
    return subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def interrupted_runs(world, tmp_path_factory):
    """Two runs over a good model file, started with the module's first test so that they run
    (mostly importing torch) while the in-process cases do; their tests wait for them."""
    runs = {}
    for name in ("ctrl_c", "size_limit"):
        folder = tmp_path_factory.mktemp(name)
        model = folder / "m.joblib"
        model.write_bytes(world["model_int"].read_bytes())
        argv = ["fit", world["table_int"], "--model", model, *common(world)]
        limit = len(world["model_int"].read_bytes()) // 2
        if name == "ctrl_c":
            process = _start(INTERRUPT_WHILE_SAVING, argv)
        else:  # `ulimit -f`: writing past `limit` bytes fails with EFBIG, as on a full disk

            def small_files(limit=limit):
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

            process = _start("", argv, preexec_fn=small_files)
        runs[name] = (process, folder, model)
    yield runs
    for process, _, _ in runs.values():
        process.kill()  # only matters when a test failed before waiting for it


def _finished(runs: dict, name: str):
    process, folder, model = runs[name]
    _, err = process.communicate(timeout=120)
    return process.returncode, err, folder, model


def test_ctrl_c_while_saving(world, interrupted_runs):
    """Before: a KeyboardInterrupt traceback. A SIGINT in the middle of writing the model keeps
    the previous model byte for byte and leaves no temporary file."""
    code, err, folder, model = _finished(interrupted_runs, "ctrl_c")
    assert code == 130, err
    assert "Traceback" not in err and err.strip().endswith("skpercept fit: interrupted (Ctrl-C).")
    assert model.read_bytes() == world["model_int"].read_bytes()
    assert [p.name for p in folder.iterdir()] == ["m.joblib"]


def test_file_size_limit_keeps_the_old_model(world, interrupted_runs):
    """Before: with the disk full (ulimit -f), fit replaced a good model with a truncated one and
    the next predict failed with a bare EOFError."""
    code, err, folder, model = _finished(interrupted_runs, "size_limit")
    assert code == 2, err
    assert "Traceback" not in err and "File too large" in err and str(model) in err
    assert model.read_bytes() == world["model_int"].read_bytes()
    assert [p.name for p in folder.iterdir()] == ["m.joblib"]
    argv = ["predict", world["table_int"], "--model", model, "--output", folder / "p.csv"]
    assert cli.main([str(a) for a in [*argv, *common(world, "predict")]]) == 0


# -- fuzz: random corruptions of a valid table --------------------------------------------------
def _corrupt(frame: pd.DataFrame, rng: np.random.Generator):
    """A corrupted table (as bytes), and what must follow: ('ok', attributes, users) or
    ('error', fragments of the message)."""
    kind = rng.choice(["shuffle", "drop", "duplicate", "text", "empty", "encoding"])
    frame = frame.copy()
    row = int(rng.integers(len(frame)))
    column = str(rng.choice(frame.columns))
    if kind == "shuffle":
        frame = frame[list(rng.permutation(frame.columns))]
        attributes = [c for c in frame.columns if c in ("warm", "calm")]
        return frame.to_csv(index=False).encode(), ("ok", attributes, True)
    if kind == "drop":
        frame = frame.drop(columns=column)
        if column == "image":
            return frame.to_csv(index=False).encode(), ("error", ["needs an 'image' column"])
        attributes = [c for c in ("warm", "calm") if c in frame.columns]
        return frame.to_csv(index=False).encode(), ("ok", attributes, column != "user_id")
    if kind == "duplicate":
        text = frame.to_csv(index=False)
        header, body = text.split("\n", 1)
        lines = [
            line + "," + line.split(",")[list(frame.columns).index(column)] for line in body.splitlines()
        ]
        data = "\n".join([header + "," + column, *lines]) + "\n"
        return data.encode(), ("error", [f"column {column!r} appears 2 times"])
    if kind == "text":
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = "n/a?" if column != "image" else 3.5
        if column in ("warm", "calm"):
            return frame.to_csv(index=False).encode(), ("error", [f"{column!r}", f"row {row + 2}"])
        if column == "image":
            return frame.to_csv(index=False).encode(), ("error", ["not found", f"row {row + 2}"])
        return frame.to_csv(index=False).encode(), ("ok", ["warm", "calm"], True)  # a user called 'n/a?'
    if kind == "empty":
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = None
        if column in ("warm", "calm"):  # an empty rating cell means "not rated"
            return frame.to_csv(index=False).encode(), ("ok", ["warm", "calm"], True)
        return frame.to_csv(index=False).encode(), ("error", [f"{column!r} is empty at row {row + 2}"])
    encoding = str(rng.choice(["utf-8-sig", "utf-16", "latin-1"]))
    frame.loc[row, "image"] = "é.png"
    data = frame.to_csv(index=False).encode(encoding)
    if encoding == "latin-1":
        return data, ("error", [f"row {row + 2}", "byte 0xe9"])
    if encoding == "utf-16":
        return data, ("error", ["row 1", "--encoding"])
    return data, ("error", ["'é.png'", f"row {row + 2}"])  # decoded fine: the file does not exist


@pytest.mark.parametrize("seed", range(16))
def test_fuzz_never_a_traceback_never_silently_different(world, tmp_path, capsys, seed):
    rng = np.random.default_rng(seed)
    data, expected = _corrupt(ratings_frame(), rng)
    table = world["root"] / f"fuzz{seed}.csv"  # the images live next to it
    table.write_bytes(data)
    model = tmp_path / "m.joblib"
    model.write_bytes(b"\x80previous")
    code, _, err = run(capsys, "fit", table, "--model", model, *common(world))
    assert "Traceback" not in err
    if expected[0] == "ok":
        assert code == 0, err
        info = joblib.load(model).skpercept_info_
        assert (info["attributes"], info["users"]) == (expected[1], expected[2])
        assert info["head"] == "classifier" and info["levels"] == [1, 2, 3, 4]
    else:
        assert code == 2, err
        assert str(table) in err and all(f in err for f in expected[1]), (expected, err)
        assert model.read_bytes() == b"\x80previous"


def test_models_of_another_format_are_refused_naming_both(world, tmp_path, capsys):
    """A model file from before versioned formats (the flat module layout), or whose model
    description says another format, is a one-line error naming the versions, never a traceback."""
    model = joblib.load(world["model_int"])
    # a file of the flat layout: it names a module that no longer exists (skpercept.users)
    old_module = types.ModuleType("skpercept.users")
    exec("class UserEncoder:\n    pass", old_module.__dict__)
    old_module.UserEncoder.__module__ = "skpercept.users"
    old_layout = tmp_path / "old.joblib"
    with mock.patch.dict(sys.modules, {"skpercept.users": old_module}):
        save_model(old_module.UserEncoder(), old_layout)
    described = tmp_path / "described.joblib"
    model.skpercept_info_ = {**model.skpercept_info_, "format": 0}
    save_model(model, described)
    predict = ["predict", world["table_int"], "--output", tmp_path / "p.csv", *common(world, "predict")]
    code, _, err = run(capsys, *predict, "--model", old_layout)
    assert code == 2 and "Traceback" not in err
    assert "from before versioned formats); this skpercept reads pickle format 1" in err
    code, _, err = run(capsys, *predict, "--model", described)
    assert code == 2 and "its model description is in format 0; this skpercept reads format 1" in err
