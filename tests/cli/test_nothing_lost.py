"""Nothing the user gave is destroyed, nothing wrong is silent: the second bad-input probe as a zoo.

Each case is one way a user can hurt their own files or get a silently wrong answer: an output
named like an input, a device, a FIFO or a link where a file goes, ids that differ only by
leading zeros, values outside what an option means, a changed model file, a hostile one. Each
runs the command in-process (a subprocess where a resource limit is part of the case) and
asserts the exit status, the message (one line naming the option, the file or the row), and
that every file in the world and in the case's folder is byte-identical afterwards but the
files the case is meant to write. Special files (FIFOs, device nodes, links) live in a
temporary folder only; device nodes are made with ``mknod`` there (root only, else skipped).

Each case's docstring says what happened before (the probe's finding).
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import torch
from PIL import Image

from skpercept import cli
from skpercept.persistence import load_model, save_model
from tests._images import bomb_png
from tests.cli._data import (
    N_IMAGES,
    TINY_TIMM,
    common,
    pairs_frame,
    ratings_frame,
    reference_folder,
    run,
    zoo_world,
)

ROOT = os.geteuid() == 0


pytestmark = pytest.mark.usefixtures("tiny_lite0_for_module")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_lite0_for_module):
    """The zoo's images and models, a reference-schema folder and its model, a model without people."""
    world = zoo_world(tmp_path_factory.mktemp("world"))
    ref = reference_folder(world["root"] / "ref")
    world["ref"], world["ref_model"] = ref, world["root"] / "ref_model.joblib"
    argv = ["fit", ref, "--model", world["ref_model"], "--task", "rating", *common(world)]
    assert cli.main([str(a) for a in argv]) == 0
    world["shared_model"] = world["root"] / "shared_model.joblib"
    argv = ["fit", world["table_int"], "--no-users", "--model", world["shared_model"], *common(world)]
    assert cli.main([str(a) for a in argv]) == 0
    return world


def files_in(*folders: Path) -> dict[Path, bytes]:
    """Every regular file under the folders (links followed; the embedding cache left out)."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if "cache" not in path.parts and not path.is_symlink() and path.is_file():
                found[path] = path.read_bytes()
    return found


@dataclass
class Case:
    """One run of the command and what must follow."""

    argv: list
    #: the exit status
    code: int = 2
    #: fragments of the message: the one error line when ``code`` is 2, else of stderr
    says: tuple[str, ...] = ()
    #: the files the run may create or change (every other file stays byte-identical)
    writes: tuple[Path, ...] = ()
    #: more checks after the run
    then: Callable[[], None] | None = None
    #: add the world's cache, no progress bars and few epochs
    options: bool = True
    #: undone after the run (a reader thread, say)
    cleanup: list = field(default_factory=list)


def _table(tmp: Path, name: str, frame: pd.DataFrame, world) -> Path:
    """``frame`` as ``tmp/name`` with image paths made absolute (the images live in the world)."""
    frame = frame.copy()
    for column in ("image", "image_a", "image_b"):
        if column in frame:
            frame[column] = [
                str(world["root"] / p) if not os.path.isabs(str(p)) else p for p in frame[column]
            ]
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".xlsx"):
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _needs_root():
    if not ROOT:
        pytest.skip("making a device node needs root")


# -- 1. outputs onto inputs ---------------------------------------------------------------------
def case_predict_output_onto_an_image(world, tmp):
    """Before: exit 0, and the photo became CSV text."""
    argv = [
        "predict",
        world["table_int"],
        "--model",
        world["model_int"],
        "--output",
        world["root"] / "im1.png",
    ]
    return Case(argv, says=("--output", "im1.png is also an input", "an image of column 'image'"))


def case_fit_model_onto_an_image(world, tmp):
    """Before: the photo became a joblib file."""
    argv = ["fit", world["table_int"], "--model", world["root"] / "im3.png"]
    return Case(argv, says=("--model", "im3.png is also an input", "an image of column 'image'"))


def case_fit_model_onto_a_reference_table(world, tmp):
    """Before: ``fit ref --model ref/big_label.xlsx`` destroyed the folder's ratings table."""
    argv = ["fit", world["ref"], "--one-means", "first", "--model", world["ref"] / "big_label.xlsx"]
    return Case(argv, says=("big_label.xlsx is also an input", "a table of the reference folder"))


def case_predict_output_onto_a_reference_table(world, tmp):
    """Before: ``predict ref … --output ref/big_compare_label.xlsx`` destroyed the comparisons."""
    out = world["ref"] / "big_compare_label.xlsx"
    argv = ["predict", world["ref"], "--one-means", "first", "--model", world["ref_model"], "--output", out]
    return Case(argv, says=("big_compare_label.xlsx is also an input", "a table of the reference folder"))


def case_evaluate_report_over_its_own_table(world, tmp):
    """Before: ``evaluate ev/per_person.csv --output ev`` replaced its table with the report's."""
    table = _table(tmp, "ev/per_person.csv", ratings_frame(), world)
    argv = ["evaluate", table, "--model", world["model_int"], "--output", tmp / "ev"]
    return Case(argv, says=("--output", "per_person.csv is also an input", "the table"))


def case_compare_report_over_its_own_table(world, tmp):
    """Before: ``compare cm/compare.csv --output cm`` replaced its table with the results."""
    table = _table(tmp, "cm/compare.csv", ratings_frame(), world)
    argv = ["compare", table, "--backbones", "lite0", "--output", tmp / "cm"]
    return Case(argv, says=("--output", "compare.csv is also an input", "the table"))


def case_model_as_its_own_output(world, tmp):
    """Already refused; kept in the zoo: ``--output`` naming the model."""
    model = tmp / "m.joblib"
    shutil.copy(world["model_int"], model)
    argv = ["predict", world["table_int"], "--model", model, "--output", model]
    return Case(argv, says=("m.joblib is also an input", "the model"))


def case_output_inside_a_file(world, tmp):
    """Before: a bare ``NotADirectoryError`` without the file's name."""
    (tmp / "notes.txt").write_text("my notes\n")
    argv = ["fit", world["table_int"], "--model", tmp / "notes.txt" / "m.joblib"]
    return Case(argv, says=("--model", "notes.txt is a file, so", "cannot be written inside it"))


def case_evaluate_output_is_a_file(world, tmp):
    """Before: "File exists" only after all the work."""
    (tmp / "report").write_text("an old report\n")
    argv = ["evaluate", world["table_int"], "--model", world["model_int"], "--output", tmp / "report"]
    return Case(argv, says=("--output", "report is a file, so", "report.md cannot be written inside it"))


def case_compare_output_is_a_file(world, tmp):
    """Before: "File exists" only after embedding and every fold."""
    (tmp / "cm").write_text("not a folder\n")
    argv = ["compare", world["table_int"], "--backbones", "lite0", "--output", tmp / "cm"]
    return Case(argv, says=("--output", "cm is a file, so"))


def case_rank_output_is_a_file(world, tmp):
    """Before: "File exists" only after every photo was read and embedded."""
    (tmp / "out").write_text("not a folder\n")
    return Case(
        ["rank", _photos(world, tmp), "--output", tmp / "out"], says=("--output", "out is a file, so")
    )


# -- 2. special files as outputs: written through, never replaced -------------------------------
def case_output_to_a_full_device(world, tmp):
    """Before: ``--output /dev/full`` (as root) replaced the device node with a regular file."""
    _needs_root()
    device = tmp / "full"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is

    def still_a_device():
        assert stat.S_ISCHR(os.stat(device).st_mode)

    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", device]
    return Case(argv, says=("cannot write the predictions", "No space left on device"), then=still_a_device)


def case_output_to_a_fifo(world, tmp):
    """Before: the FIFO was replaced by a file and its reader got nothing."""
    fifo = tmp / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()

    def reader_got_the_csv():
        reader.join(timeout=60)
        assert received and received[0].startswith(b"image,user_id,warm,calm,")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)

    def release_reader():  # a failing run never opened the FIFO: let the reader finish
        if reader.is_alive():
            with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass

    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", fifo]
    return Case(argv, code=0, then=reader_got_the_csv, cleanup=[release_reader])


def case_output_through_a_link(world, tmp):
    """Before: a symlink (``/dev/stdout`` is one) was replaced by a regular file."""
    (tmp / "real").mkdir()
    target = tmp / "real" / "pred.csv"
    target.write_text("old predictions\n")
    link = tmp / "latest.csv"
    link.symlink_to(target)

    def link_kept_target_written():
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert target.read_text().startswith("image,user_id,warm,calm,")

    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", link]
    return Case(argv, code=0, writes=(target,), then=link_kept_target_written)


# -- 3. special files as inputs: never read -----------------------------------------------------
def _photos(world, tmp: Path, n: int = 4) -> Path:
    folder = tmp / "photos"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        shutil.copy(world["root"] / f"im{i}.png", folder / f"im{i}.png")
    return folder


def case_rank_with_a_fifo_among_the_photos(world, tmp):
    """Before: ``rank`` hung on a FIFO named ``x.jpg`` (killed by the timeout)."""
    photos = _photos(world, tmp)
    os.mkfifo(photos / "x.jpg")
    out = tmp / "out"

    def fifo_listed():
        ranking = pd.read_csv(out / "ranking.csv")
        assert ranking["rank"].isna().sum() == 1
        assert "FIFO" in (out / "contact_sheet.html").read_text()

    argv = ["rank", photos, "--output", out]
    return Case(
        argv,
        code=0,
        says=("4 photos", "1 unreadable", "x.jpg: is a FIFO"),
        then=fifo_listed,
        writes=_ranking(out),
    )


def case_rank_with_a_link_to_a_zero_device(world, tmp):
    """Before: a link to ``/dev/zero`` exhausted the memory (a MemoryError under ``ulimit -v``)."""
    _needs_root()
    photos = _photos(world, tmp)
    os.mknod(tmp / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # what /dev/zero is
    (photos / "z.jpg").symlink_to(tmp / "zero")
    out = tmp / "out"

    def device_listed():
        assert "character device" in (out / "contact_sheet.html").read_text()

    argv = ["rank", photos, "--output", out]
    return Case(
        argv,
        code=0,
        says=("4 photos", "1 unreadable", "z.jpg: is a character device"),
        then=device_listed,
        writes=_ranking(out),
    )


def _ranking(out: Path) -> tuple[Path, ...]:
    return (out / "ranking.csv", out / "contact_sheet.html")


def case_self_comparison_through_a_link(world, tmp):
    """Before: a pair of an image and a link to it was accepted as two images (and split apart
    by the image-disjoint folds)."""
    (tmp / "alias.png").symlink_to(world["root"] / "im0.png")
    frame = pairs_frame()
    frame.loc[3, "image_b"] = str(tmp / "alias.png")
    frame.loc[3, "image_a"] = "im0.png"
    table = _table(tmp, "pairs.csv", frame, world)
    return Case(
        ["fit", table, "--model", tmp / "m.joblib"], says=("1 comparison(s) of an image with itself", "row 5")
    )


def case_decompression_bomb_image(world, tmp):
    """Already behaving; kept in the zoo: a PNG whose header claims 30,000 x 30,000 pixels is
    refused by row before any pixel is decoded."""
    (tmp / "bomb.png").write_bytes(bomb_png())
    frame = ratings_frame()
    frame.loc[5, "image"] = str(tmp / "bomb.png")
    table = _table(tmp, "bomb.csv", frame, world)
    return Case(["fit", table, "--model", tmp / "m.joblib"], says=("bomb.png", "row 7"))


# -- 4. values checked at the edge --------------------------------------------------------------
def case_levels_with_nan(world, tmp):
    """Before: a NaN class; predict wrote ``p_warm_nan`` and evaluate crashed."""
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--levels", "1", "2", "3", "4", "nan"]
    return Case(argv, says=("--levels", "'nan'", "finite number"))


def case_constant_attribute(world, tmp):
    """Before: 'calm' always 2 beside a varying 'warm' trained silently."""
    table = _table(tmp, "const.csv", ratings_frame().assign(calm=2), world)
    return Case(
        ["fit", table, "--model", tmp / "m.joblib"],
        says=("'calm' has the same value (2) in every row", "--attributes warm"),
    )


def case_stray_numeric_column(world, tmp):
    """Before: a column 'score_x' became an attribute and turned every attribute into a regressor."""
    frame = ratings_frame().assign(score_x=np.linspace(0.05, 0.95, 3 * N_IMAGES))
    table = _table(tmp, "stray.csv", frame, world)
    return Case(["fit", table, "--model", tmp / "m.joblib"], says=("'score_x'", "--attributes warm calm"))


def case_infinite_rating(world, tmp):
    """Before: "Maximum allowed size exceeded" (a traceback)."""
    frame = ratings_frame().astype({"warm": float})
    frame.loc[4, "warm"] = np.inf
    table = _table(tmp, "inf.csv", frame, world)
    return Case(["fit", table, "--model", tmp / "m.joblib"], says=("'warm'", "row 6", "inf"))


def case_infinite_rating_in_a_spreadsheet(world, tmp):
    """Before: a 0-based row number where the spreadsheet shows row 5."""
    frame = ratings_frame().astype({"warm": object})
    frame.loc[3, "warm"] = "inf"
    table = _table(tmp, "inf.xlsx", frame, world)
    return Case(["fit", table, "--model", tmp / "m.joblib"], says=("'warm'", "row 5"))


def case_one_image_table(world, tmp):
    """Before: a traceback suggesting ``early_stopping=False``, which the command cannot set."""
    table = _table(tmp, "one.csv", ratings_frame().assign(image="im0.png"), world)
    return Case(
        ["fit", table, "--model", tmp / "m.joblib"],
        says=("only 1 different image(s)", "Add judgments of more images"),
    )


def case_one_pair_table(world, tmp):
    """Before: the same traceback for a table whose rows are all one pair."""
    frame = pairs_frame().assign(image_a="im0.png", image_b="im1.png")
    table = _table(tmp, "onepair.csv", frame, world)
    return Case(
        ["fit", table, "--model", tmp / "m.joblib"],
        says=("only 2 different image(s)", "Add judgments of more images"),
    )


def case_negative_epochs(world, tmp):
    """Before: a skorch traceback."""
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--epochs", "-3"]
    return Case(argv, says=("--epochs", "at least 1", "-3"), options=False)


def case_zero_epochs(world, tmp):
    """Before: ``--epochs 0`` silently meant the default."""
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--epochs", "0"]
    return Case(argv, says=("--epochs", "at least 1", "0"), options=False)


def case_zero_hidden(world, tmp):
    """Before: a torch traceback."""
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--hidden", "0"]
    return Case(argv, says=("--hidden", "at least 1", "0"))


def case_cuda_without_a_gpu(world, tmp):
    """Before: a torch traceback after the table was read."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--device", "cuda"]
    return Case(argv, says=("--device cuda", "CUDA"))


def case_cache_dir_is_a_file(world, tmp):
    """Before: a traceback (``NotADirectoryError``)."""
    (tmp / "cachefile").write_text("not a folder\n")
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--cache-dir", tmp / "cachefile"]
    return Case(argv, says=("--cache-dir", "cachefile is a file"), options=False)


def case_pretrained_text_file(world, tmp):
    """Before: an IndexError traceback for ``--pretrained /etc/passwd``."""
    (tmp / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib"]
    argv += ["--backbone", f"timm:{TINY_TIMM}", "--pretrained", tmp / "passwd"]
    return Case(argv, says=("passwd", "weights"))


def case_broken_safetensors(world, tmp):
    """Before: safetensors' own message, without the file's name."""
    (tmp / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib"]
    argv += ["--backbone", f"timm:{TINY_TIMM}", "--pretrained", tmp / "w.safetensors"]
    return Case(argv, says=("w.safetensors",))


def case_user_column_clash(world, tmp):
    """Before: an AttributeError traceback for ``--user-column warm`` beside 'user_id'."""
    argv = ["fit", world["table_int"], "--model", tmp / "m.joblib", "--user-column", "warm"]
    return Case(argv, says=("--user-column 'warm'", "also has a 'user_id' column"))


def case_rank_similarity_out_of_range(world, tmp):
    """Before (as ``--threshold -1``): failed only after every photo was embedded."""
    argv = ["rank", _photos(world, tmp), "--output", tmp / "out", "--min-similarity", "1"]
    return Case(argv, says=("--min-similarity", "1"))


def case_rank_nan_similarity(world, tmp):
    """Before (as ``--threshold nan``): failed only after every photo was embedded."""
    argv = ["rank", _photos(world, tmp), "--output", tmp / "out", "--min-similarity", "nan"]
    return Case(argv, says=("--min-similarity", "nan"))


def case_negative_burst_seconds(world, tmp):
    """Before: ``--burst-seconds -5`` was accepted."""
    argv = ["rank", _photos(world, tmp), "--output", tmp / "out", "--burst-seconds", "-5"]
    return Case(argv, says=("--burst-seconds", "-5"))


def case_ratings_file_outside_the_folder(world, tmp):
    """Before: ``--ratings-file ../x.xlsx`` passed the existence check, then another path was read."""
    ref = tmp / "ref"
    shutil.copytree(world["ref"], ref)
    labels = pd.read_excel(ref / "big_label.xlsx").drop(columns=["attractive", "trustworthy"])
    labels.to_excel(tmp / "smart_only.xlsx", index=False)
    model = tmp / "m.joblib"

    def read_the_given_file():
        assert load_model(model).skpercept_info_["attributes"] == ["smart"]

    argv = ["fit", ref, "--task", "rating", "--ratings-file", "../smart_only.xlsx", "--model", model]
    return Case(argv, code=0, writes=(model,), then=read_the_given_file)


# -- 5. spreadsheets ----------------------------------------------------------------------------
def case_data_on_the_second_sheet(world, tmp):
    """Before: a list of the first sheet's columns, without a word about ``--sheet``."""
    path = tmp / "two.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"notes": ["see the next sheet"]}).to_excel(writer, sheet_name="readme", index=False)
        ratings_frame().to_excel(writer, sheet_name="ratings", index=False)
    return Case(
        ["fit", path, "--model", tmp / "m.joblib"],
        says=("Sheet 'ratings' has 'image': pass --sheet ratings.",),
    )


def case_merged_cells(world, tmp):
    """Before: merged cells read as empty, silently."""
    path = _table(tmp, "merged.xlsx", ratings_frame(), world)
    book = openpyxl.load_workbook(path)
    book.active.merge_cells("B3:B5")  # one user id over three rows
    book.save(path)
    return Case(["fit", path, "--model", tmp / "m.joblib"], says=("merged", "B3:B5"))


def case_formula_without_a_value(world, tmp):
    """Before: a formula cell without a saved value was reported as "empty"."""
    path = _table(tmp, "formula.xlsx", ratings_frame(), world)
    book = openpyxl.load_workbook(path)
    book.active["C4"] = "=1+2"  # openpyxl saves formulas without their value
    book.save(path)
    return Case(["fit", path, "--model", tmp / "m.joblib"], says=("formula", "C4"))


# -- 6. ids ---------------------------------------------------------------------------------------
def case_leading_zero_ids(world, tmp):
    """Before: user ids 007 and 7 became one person."""
    table = _table(tmp, "zeros.csv", ratings_frame(("007", "7", "8")), world)
    model = tmp / "m.joblib"

    def three_people():
        encoder = load_model(model).named_steps["features"].named_transformers_["user"]
        assert sorted(map(str, encoder.categories_[0])) == ["007", "7", "8"]

    return Case(
        ["fit", table, "--model", model],
        code=0,
        says=("'007' and '7'", "leading zeros"),
        writes=(model,),
        then=three_people,
    )


def case_ids_written_as_decimals(world, tmp):
    """Already behaving; kept in the zoo: ids 1.0, 2.0, 3.0 (a spreadsheet's export) are the
    integer-id model's people 1, 2, 3."""
    frame = ratings_frame().astype({"user_id": float})
    table = _table(tmp, "decimals.csv", frame, world)
    out, reference = tmp / "p.csv", tmp / "reference.csv"
    argv = ["predict", world["table_int"], "--model", world["model_int"], "--output", reference]
    assert cli.main([*map(str, argv), *common(world, "predict")]) == 0

    def same_people():
        columns = [c for c in pd.read_csv(out).columns if c.startswith(("pred_", "p_"))]
        pd.testing.assert_frame_equal(pd.read_csv(out)[columns], pd.read_csv(reference)[columns])

    argv = ["predict", table, "--model", world["model_int"], "--output", out]
    return Case(argv, code=0, writes=(out,), then=same_people)


def case_model_without_people_given_user_ids(world, tmp):
    """Before: a model without people ignored the table's 'user_id' without a word."""
    out = tmp / "p.csv"
    argv = ["predict", world["table_int"], "--model", world["shared_model"], "--output", out]
    return Case(argv, code=0, says=("'user_id'", "without people"), writes=(out,))


# -- 7. model files ---------------------------------------------------------------------------------
def case_flipped_byte_in_a_model(world, tmp):
    """Before: one flipped byte still loaded and changed probabilities by up to 0.89."""
    data = bytearray(world["model_int"].read_bytes())
    data[len(data) // 2] ^= 0x10
    model = tmp / "m.joblib"
    model.write_bytes(bytes(data))
    argv = ["predict", world["table_int"], "--model", model, "--output", tmp / "p.csv"]
    return Case(argv, says=("m.joblib", "does not match its checksum"))


def case_edited_model_description(world, tmp):
    """Before: a KeyError traceback for a hand-edited model description."""
    model = load_model(world["model_int"])
    del model.skpercept_info_["attributes"]
    save_model(model, tmp / "m.joblib")
    argv = ["predict", world["table_int"], "--model", tmp / "m.joblib", "--output", tmp / "p.csv"]
    return Case(argv, says=("m.joblib", "attributes"))


class Hostile:
    """What a hostile model file holds: an object whose loading runs a shell command."""

    marker = ""

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)

    def __setstate__(self, state):
        os.system(f"touch {state['marker']}")


def case_hostile_pickle_without_checksum(world, tmp):
    """Before: loading ran ``os.system`` before any refusal, and the command warned nothing."""
    marker = tmp / "ran"
    hostile = Hostile()
    hostile.marker = str(marker)
    (tmp / "evil.joblib").write_bytes(pickle.dumps(hostile))

    def nothing_ran():
        assert not marker.exists()

    argv = ["predict", world["table_int"], "--model", tmp / "evil.joblib", "--output", tmp / "p.csv"]
    return Case(argv, says=("evil.joblib has no skpercept checksum",), then=nothing_ran)


def case_hostile_safe_file(world, tmp):
    """A ``*.skops`` file naming a type skpercept does not load is refused before anything is built."""
    import skops.io

    marker = tmp / "ran"
    hostile = Hostile()
    hostile.__dict__["marker"] = str(marker)
    (tmp / "evil.skops").write_bytes(skops.io.dumps(hostile))

    def nothing_ran():
        assert not marker.exists()

    argv = ["predict", world["table_int"], "--model", tmp / "evil.skops", "--output", tmp / "p.csv"]
    return Case(argv, says=("evil.skops names types", "Hostile", "nothing in it was run"), then=nothing_ran)


ZOO = {name[5:]: case for name, case in sorted(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo(world, tmp_path, capsys, name):
    case = ZOO[name](world, tmp_path)
    before = files_in(world["root"], tmp_path)
    argv = [str(a) for a in case.argv]
    if case.options:
        argv += [str(a) for a in common(world, argv[0])]
    try:
        code, _, err = run(capsys, *argv)
    finally:
        for undo in case.cleanup:
            undo()
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code == 2:
        lines = [line for line in err.splitlines() if line.startswith("skpercept ")]
        assert len(lines) == 1 and "error:" in lines[0], err
        message = lines[0]
    else:
        message = err
    for fragment in case.says:
        assert fragment in message, message
    after = files_in(world["root"], tmp_path)
    allowed = set(case.writes)
    changed = sorted(str(p) for p in before if p not in allowed and after.get(p) != before[p])
    assert not changed, f"changed or removed: {changed}"
    new = sorted(str(p) for p in after if p not in before and p not in allowed)
    assert not new, f"written: {new}"
    if case.then is not None:
        case.then()


# -- file modes: what a plain write would give --------------------------------------------------
@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_get_the_mode_a_plain_write_gives(world, tmp_path, capsys, umask_022):
    """Before: every output was 0600 (``mkstemp``'s private mode), even replacing a 0644 file."""
    model, safe, pred = tmp_path / "m.joblib", tmp_path / "m.skops", tmp_path / "p.csv"
    for path in (model, safe):
        assert run(capsys, "fit", world["table_int"], "--model", path, *common(world))[0] == 0
    pred.write_text("old\n")
    os.chmod(pred, 0o640)  # a file being replaced keeps its own mode
    argv = ["predict", world["table_int"], "--model", safe, "--output", pred, *common(world, "predict")]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    report = tmp_path / "report"
    argv = ["evaluate", world["table_int"], "--model", model, "--output", report, *common(world, "evaluate")]
    assert run(capsys, *argv)[0] == 0
    out = tmp_path / "ranked"
    assert run(capsys, "rank", _photos(world, tmp_path), "--output", out, *common(world, "rank"))[0] == 0
    written = [model, safe, *report.iterdir(), *out.iterdir()]
    assert {p.name for p in report.iterdir()} >= {"report.md", "scatter.png", "per_person.csv"}
    assert {p.name: _mode(p) for p in written} == {p.name: 0o644 for p in written}
    assert _mode(pred) == 0o640


# -- predict and evaluate use this run's cache --------------------------------------------------
def _cached(folder: Path) -> set[str]:
    return (
        {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()
    )


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cache_options_are_honoured_after_fit(world, tmp_path, capsys, command):
    """Before: predict / evaluate ignored --cache-dir and --no-cache and wrote into the cache
    the model was fitted with."""
    fitted_cache = tmp_path / "fit_cache"
    model = tmp_path / "m.joblib"
    argv = ["fit", world["table_int"], "--model", model, "--cache-dir", fitted_cache, "--no-progress"]
    assert run(capsys, *argv, "--epochs", "1")[0] == 0
    shutil.rmtree(fitted_cache)
    output = ["--output", tmp_path / "out"] + (
        ["--output", tmp_path / "p.csv"] if command == "predict" else []
    )
    base = [command, world["table_int"], "--model", model, "--no-progress", *output[-2:]]

    assert run(capsys, *base, "--no-cache")[0] == 0
    assert not fitted_cache.exists()
    own = tmp_path / "own_cache"
    assert run(capsys, *base, "--cache-dir", own)[0] == 0
    assert not fitted_cache.exists() and _cached(own)


# -- rank under a file-size limit: both files kept or both replaced -----------------------------
RANK_UNDER_LIMIT = """
import resource, sys
sys.path.insert(0, {root!r})
from tests._images import use_tiny_backbone
use_tiny_backbone("lite0", tta=False)
from skpercept import cli
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.exit(cli.main({argv!r}))
"""


def test_rank_under_a_file_size_limit_keeps_both_old_files(world, tmp_path, capsys):
    """Before: under ``ulimit -f`` rank replaced ranking.csv but left the old contact sheet, and
    said the files already there were kept whole."""
    photos, out = _photos(world, tmp_path), tmp_path / "out"
    argv = ["rank", str(photos), "--output", str(out), "--no-cache", "--no-progress"]
    assert run(capsys, *argv)[0] == 0
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    limit = (sizes["ranking.csv"] + sizes["contact_sheet.html"]) // 2
    assert sizes["ranking.csv"] < limit < sizes["contact_sheet.html"]  # the csv fits, the sheet not
    (out / "ranking.csv").write_text("the old ranking\n")
    (out / "contact_sheet.html").write_text("the old contact sheet\n")
    script = RANK_UNDER_LIMIT.format(root=str(Path(__file__).resolve().parents[2]), limit=limit, argv=argv)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "File too large" in done.stderr
    assert "files already there were kept whole" in done.stderr
    assert (out / "ranking.csv").read_text() == "the old ranking\n"
    assert (out / "contact_sheet.html").read_text() == "the old contact sheet\n"
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.html", "ranking.csv"]


# -- the API: the same rules as the command ------------------------------------------------------
def test_float_tiff_is_scaled_by_its_range(tmp_path):
    """Before: a 32-bit float TIFF holding 0-255 was clipped to white."""
    from skpercept.embed import load_image

    values = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (16, 1))
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    Image.fromarray((values + 0.5).astype(np.uint8), mode="L").save(tmp_path / "g.png")
    as_float = np.asarray(load_image(tmp_path / "f.tif"), dtype=int)
    as_bytes = np.asarray(load_image(tmp_path / "g.png"), dtype=int)
    assert np.abs(as_float - as_bytes).max() <= 1
    assert as_float.min() == 0 and as_float.max() == 255


def test_embedders_never_read_a_fifo(world, tmp_path):
    """A FIFO among the images is an error naming it (or a NaN row with on_error='nan'),
    never a read that waits forever."""
    from skpercept.embed import BadImageWarning, ImageLoadError, make_backbones

    os.mkfifo(tmp_path / "x.png")
    images = [str(world["root"] / "im0.png"), str(tmp_path / "x.png")]
    embedder = make_backbones(["lite0"])["lite0"]
    with pytest.raises(ImageLoadError, match=r"x\.png.*FIFO"):
        embedder.set_params(cache_dir=None, progress=False).fit_transform(images)
    with pytest.warns(BadImageWarning, match="x.png"):
        rows = embedder.set_params(on_error="nan").fit_transform(images)
    assert np.isfinite(rows[0]).all() and np.isnan(rows[1]).all()


def test_user_encoder_says_when_ids_change_type(tmp_path):
    """Before: a UserEncoder fitted on integer ids mapped "7" to the average person silently."""
    from skpercept.personal import UserEncoder, UserIdWarning

    encoder = UserEncoder().fit(np.array([[7], [8], [9]], dtype=object))
    with pytest.warns(UserIdWarning, match="7"):
        as_text = encoder.transform(np.array([["7"], ["9"]], dtype=object))
    np.testing.assert_array_equal(as_text, encoder.transform(np.array([[7], [9]], dtype=object)))
    with pytest.warns(UserIdWarning, match="leading zeros"):
        twins = UserEncoder().fit(np.array([["007"], ["7"]], dtype=object))
    assert twins.transform(np.array([["007"], ["7"]], dtype=object)).tolist() == [[1, 0], [0, 1]]


def test_heads_refuse_a_diverged_fit():
    """Before: RatingRegressor on features near 1e20 fitted and predicted all NaN."""
    from skpercept.heads import FeatureScaleWarning, RatingRegressor

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 8)) * 1e20, rng.integers(1, 5, size=60)
    with (
        pytest.warns(FeatureScaleWarning, match="1e\\+20|e\\+20"),
        pytest.raises(ValueError, match="diverged"),
    ):
        RatingRegressor(max_epochs=3, random_state=0).fit(X, y)
