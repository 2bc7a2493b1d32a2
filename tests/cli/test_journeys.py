"""The seed users' journeys through the command: the reference schema's Excel folder, their own
backbone weights, per-person models and results, keep/delete reports with a tuned threshold.

Backbones are tiny random timm / open_clip models given the way users give theirs: a local
weights file (or ``random``) and, for open_clip, a JSON config file. Nothing is downloaded.
"""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from skpercept import cli
from skpercept.cli._models import choose_threshold, parse_threshold_spec
from skpercept.cli._tables import CLIError
from tests.cli._data import (
    QUICK,
    TINY_TIMM,
    reference_folder,
    run_command,
    tinted_images,
    tiny_clip,
    tiny_timm_checkpoint,
)

TIMM = f"timm:{TINY_TIMM}"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("journeys")
    return {
        "root": root,
        "train": reference_folder(root / "train", people=("p1", "p2", "p3")),
        "test": reference_folder(root / "test", people=("p1", "p9"), seed=1),
        "timm": tiny_timm_checkpoint(root / "tiny_timm.pt"),
        "clip": tiny_clip(root / "clip"),
        "cache": root / "cache",
    }


def tiny(world) -> list:
    """The tiny timm backbone from its local weights file, cached, with a tiny head."""
    return ["--backbone", TIMM, "--pretrained", world["timm"], "--cache-dir", world["cache"], *QUICK]


# -- the reference schema's folder, end to end in fresh processes -------------------------------
def test_reference_folder_per_person_journey_as_subprocesses(world, tmp_path, capsys):
    """fit a per-person pair model on the folder, evaluate per person (both in fresh processes),
    predict for one person."""
    config, clip_weights = world["clip"]
    model = tmp_path / "m.joblib"
    backbone = f"{TIMM}+open_clip:{config}"  # a concatenation, the open_clip model from its config file
    fit = run_command(
        "fit", world["train"], "--one-means", "first", "--model", model, "--backbone", backbone,
        "--pretrained", world["timm"], "--pretrained", clip_weights, "--cache-dir", world["cache"], *QUICK,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert "Fitting a pairs model on 90 rows" in fit.stderr
    assert "People: 3, with 90 judgments each (median; fewest 90, most 90)." in fit.stderr
    assert "fewer than" not in fit.stderr  # enough judgments per person: no warning
    assert (
        "'_id': an id / language column; 'lang'" in fit.stderr
        and "'insert_time': a time column" in fit.stderr
    )
    info = joblib.load(model).skpercept_info_
    assert info["attributes"] == ["attractive", "smart", "trustworthy"]
    assert info["users"] and info["user_ids"] == ["p1", "p2", "p3"]
    assert info["user_counts"] == {"p1": 90, "p2": 90, "p3": 90}  # 30 comparisons x 3 attributes
    assert info["pretrained"] == {TIMM: str(world["timm"]), f"open_clip:{config}": str(clip_weights)}
    assert "tiny-clip" in info["open_clip_configs"]  # a new process rebuilds the model from it

    report = tmp_path / "report"
    evaluate = run_command(
        "evaluate", world["test"], "--one-means", "first", "--model", model, "--output", report,
        "--cache-dir", world["cache"], "--no-progress",
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr
    assert "pair_acc" in evaluate.stdout and "Per person" in evaluate.stdout
    for row in ("| known ", "| unseen ", "| p1 ", "| p9 "):
        assert row in evaluate.stdout
    assert "'p9' at judgment_id" in evaluate.stderr  # the unseen person, named by judgment id
    assert "| brier | ece" in evaluate.stdout  # how sure each group was told, beside how right
    people = pd.read_csv(report / "per_person.csv", index_col="user")
    assert {"accuracy", "brier", "ece"} <= set(people.columns)
    assert people.loc["p1", "n_train"] == 90 and people.loc["p9", "n_train"] == 0
    assert people.loc["p1", "known"] and not people.loc["p9", "known"]
    assert (report / "per_person.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Per person" in (report / "report.md").read_text()

    faces = world["train"] / "faces.csv"
    pd.DataFrame({"image": ["images/im0.png", "images/im9.png"]}).to_csv(faces, index=False)
    outputs = {}
    for user in ("p3", "nobody"):
        out = tmp_path / f"{user}.csv"
        argv = ["predict", faces, "--model", model, "--user", user, "--output", out]
        code, _, err = run(capsys, *argv, "--cache-dir", world["cache"], "--no-progress")
        assert code == 0, err
        outputs[user] = pd.read_csv(out)
    assert "never saw this person; predicting for the average person" in err
    assert list(outputs["p3"].columns) == ["image", "user_id"] + [
        f"pred_{a}_score" for a in info["attributes"]
    ]
    assert outputs["p3"]["user_id"].eq("p3").all()
    # a person's own model differs from the average person's (p3 reverses 'smart')
    assert not np.allclose(outputs["p3"]["pred_smart_score"], outputs["nobody"]["pred_smart_score"])


def test_fit_says_how_many_judgments_people_have_and_which_people_column(world, tmp_path, capsys):
    """Most people with a handful of judgments: a warning; --no-users: a shared model; a
    --user-column the table lacks: an error naming the columns it has."""
    rng = np.random.default_rng(0)
    n = 40
    people = np.r_[np.repeat(["a", "b"], 12), [f"few{i}" for i in range(n - 24)]]  # 16 people with one
    a = rng.integers(0, 10, n)
    b = (a + 1 + rng.integers(0, 9, n)) % 10
    table = pd.DataFrame(
        {
            "image_a": [f"images/im{i}.png" for i in a],
            "image_b": [f"images/im{j}.png" for j in b],
            "user_id": people,
            "attractive": (a > b).astype(float),
        }
    )
    path = world["train"] / "few.csv"
    table.to_csv(path, index=False)
    code, _, err = run(capsys, "fit", path, "--model", tmp_path / "m.joblib", *tiny(world))
    assert code == 0, err
    assert "People: 18, with 1 judgments each (median; fewest 1, most 12)." in err
    assert "warning: 16 of 18 people have fewer than 10 judgments" in err
    code, _, err = run(capsys, "fit", path, "--model", tmp_path / "s.joblib", "--no-users", *tiny(world))
    assert code == 0, err
    assert "one shared model for everyone" in err and "People:" not in err
    assert not joblib.load(tmp_path / "s.joblib").skpercept_info_["users"]
    # --hidden with no sizes: the linear trunk, people's deviations on the embedding itself
    code, _, err = run(capsys, "fit", path, "--model", tmp_path / "l.joblib", *tiny(world), "--hidden")
    assert code == 0, err
    linear = joblib.load(tmp_path / "l.joblib")
    assert linear[-1].hidden_layer_sizes_ == () and linear.skpercept_info_["users"]
    code, _, err = run(
        capsys, "fit", path, "--model", tmp_path / "x.joblib", "--user-column", "rater", *tiny(world)
    )
    assert code != 0
    assert "--user-column 'rater' is not a column of the table; its columns are" in err and "'user_id'" in err


def test_folder_ratings_train_a_per_person_classifier_on_the_schema_scale(world, tmp_path, capsys):
    model = tmp_path / "r.joblib"
    code, _, err = run(capsys, "fit", world["train"], "--task", "rating", "--model", model, *tiny(world))
    assert code == 0, err
    fitted = joblib.load(model)
    info = fitted.skpercept_info_
    assert info["task"] == "rating" and info["head"] == "classifier" and info["levels"] == [1, 2, 3, 4]
    # the personal part sits on the person columns
    assert info["personal"] and fitted[-1].n_features_in_ == 256 + 3
    assert fitted[-1].user_features_.tolist() == [256, 257, 258]
    assert info["user_counts"]["p1"] == 10 + 10 + 6  # trustworthy is left empty for a third of images
    code, out, err = run(capsys, "evaluate", world["test"], "--model", model, "--cache-dir", world["cache"])
    assert code == 0, err
    assert "qwk" in out and "| p9 " in out and "| unseen " in out


def test_folder_with_a_subset_of_attributes_sets_aside_judgments_of_the_others(world, tmp_path, capsys):
    # a third of the ratings leave 'trustworthy' empty: valid rows of the folder, not bad ones
    model = tmp_path / "t.joblib"
    argv = ["fit", world["train"], "--task", "rating", "--attributes", "trustworthy", "--model", model]
    code, _, err = run(capsys, *argv, *tiny(world))
    assert code == 0, err
    assert "12 judgment(s) of big_label.xlsx rate only other attributes than trustworthy; not used" in err
    assert joblib.load(model).skpercept_info_["user_counts"]["p1"] == 6


def test_folder_evaluate_takes_the_models_task_and_needs_one_means_for_comparisons(world, tmp_path, capsys):
    code, _, err = run(capsys, "fit", world["train"], "--model", tmp_path / "m.joblib", *tiny(world))
    assert code == 2
    assert "needs --one-means first or --one-means second" in err and "big_compare_label.xlsx" in err


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad_value", "big_label.xlsx row 4, column 'smart': value 7 is not one of 1, 2, 3, 4"),
        (
            "unknown_image",
            "big_label.xlsx row 3, column 'item_id': image _id 'ghost' not found in big_data.xlsx",
        ),
        ("no_tables", "holds no table of the reference schema"),
        ("no_images_table", "the images table big_data.xlsx is missing (name it with --images-file)"),
        ("missing_file_option", "--ratings-file mine.xlsx: no such file in"),
        ("text_rating", "big_label.xlsx: column 'attractive' has non-numeric values at row 2"),
    ],
)
def test_folder_errors_name_file_row_and_column(world, tmp_path, capsys, case, message):
    folder = reference_folder(tmp_path / "f", n_images=4)
    argv = ["fit", folder, "--task", "rating", "--model", tmp_path / "m.joblib", *tiny(world)]
    labels = pd.read_excel(folder / "big_label.xlsx")
    if case == "bad_value":
        labels.loc[2, "smart"] = 7
    elif case == "unknown_image":
        labels.loc[1, "item_id"] = "ghost"
    elif case == "no_tables":
        for name in ("big_label.xlsx", "big_compare_label.xlsx"):
            (folder / name).unlink()
        argv.remove("--task")
        argv.remove("rating")
    elif case == "no_images_table":
        (folder / "big_data.xlsx").unlink()
    elif case == "missing_file_option":
        argv += ["--ratings-file", "mine.xlsx"]
    elif case == "text_rating":
        labels["attractive"] = labels["attractive"].astype(object)
        labels.loc[0, "attractive"] = "high"
    if (folder / "big_label.xlsx").exists():
        labels.to_excel(folder / "big_label.xlsx", index=False)
    code, _, err = run(capsys, *argv)
    assert code == 2 and "Traceback" not in err
    assert message in err and str(folder) in err


# -- plain tables: the schema's id, language and time columns are never attributes ---------------
def test_plain_table_never_learns_ids_language_or_time(world, tmp_path, capsys):
    redness = tinted_images(tmp_path / "imgs", 8)
    table = pd.DataFrame(
        {
            "judgment_id": np.arange(8) + 100,
            "item_id": np.arange(8),
            "image": [f"imgs/im{i}.png" for i in range(8)],
            "warm": 1 + (redness * 3.99).astype(int),
            "lang": 1,  # a numeric language code is still a language
            "insert_time": 1_700_000_000 + np.arange(8),  # epoch seconds are numbers too
        }
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run(capsys, "fit", tmp_path / "t.csv", "--model", tmp_path / "m.joblib", *tiny(world))
    assert code == 0, err
    assert joblib.load(tmp_path / "m.joblib").skpercept_info_["attributes"] == ["warm"]
    for column in ("judgment_id", "item_id", "lang", "insert_time"):
        assert f"'{column}'" in err  # listed as skipped, with the reason


# -- backbones ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "backbone, pretrained, message",
    [
        (TIMM, ["missing.pt"], "pretrained weights file not found"),
        (TIMM, [], "--pretrained was given 0 time(s); it needs one value per timm:/open_clip: backbone"),
        ("lite0", ["x.pt"], "none (lite0, lite2, dlib and landmarks ship their weights)"),
        ("vgg16", [], "Unknown backbone 'vgg16'"),
        (f"{TIMM}+{TIMM}", ["random", "random"], "names a backbone twice"),
        (TIMM, ["openai"], "timm weights are read from a local file"),
        ("open_clip:ViT-B-32", ["openai"], "are not on this machine, and skpercept never downloads"),
        ("open_clip:ViT-B-32", ["no-such-tag"], "open_clip has no pretrained tag 'no-such-tag'"),
        ("open_clip:absent.json", ["random"], "open_clip model config not found"),
    ],
)
def test_backbone_errors_are_clear_and_nothing_downloads(
    world, tmp_path, capsys, backbone, pretrained, message
):
    table = tmp_path / "t.csv"
    tinted_images(tmp_path, 4)
    pd.DataFrame({"image": [f"im{i}.png" for i in range(4)], "warm": [1, 2, 3, 4]}).to_csv(table, index=False)
    flags = [
        x
        for value in pretrained
        for x in ("--pretrained", tmp_path / value if value.endswith(".pt") else value)
    ]
    code, _, err = run(capsys, "fit", table, "--model", tmp_path / "m.joblib", "--backbone", backbone, *flags)
    assert code == 2 and "Traceback" not in err
    assert message in err and f"--backbone {backbone}" in err


def test_face_upsample_reaches_the_face_backbones_and_needs_one(tmp_path, capsys, monkeypatch):
    """--face-upsample sets dlib's detector (what a NoFaceWarning suggests); without a dlib or
    landmarks backbone it is an error, not an option silently ignored."""
    from skpercept.cli._common import BackboneChoice, Runtime, make_backbones_for

    table = tmp_path / "t.csv"
    pd.DataFrame({"image": [f"im{i}.png" for i in range(4)], "warm": [1, 2, 3, 4]}).to_csv(table, index=False)
    code, _, err = run(capsys, "fit", table, "--model", tmp_path / "m.joblib", "--face-upsample", "1")
    assert code == 2 and "Traceback" not in err
    assert "--face-upsample 1" in err and "--backbone lite0 has neither" in err
    code, _, err = run(capsys, "compare", table, "--backbones", "lite0", "--face-upsample", "1")
    assert code == 2 and "--backbones lite0 has neither" in err
    runtime = Runtime(None, "cpu", False, 0, False)
    backbones, _ = make_backbones_for(BackboneChoice("lite0+landmarks", (), True, 2), runtime)
    assert backbones["landmarks"].upsample == 2 and "upsample" not in backbones["lite0"].get_params()
    # the demo, whose shipped faces include one that dlib finds only with upsample=1
    code, _, err = run(capsys, "demo", "--no-dlib", "--face-upsample", "1", "--output", tmp_path / "demo")
    assert code == 2 and "--no-dlib leaves out" in err and not (tmp_path / "demo").exists()
    given = {}
    monkeypatch.setattr("skpercept.cli.demo.run_demo", lambda output, **options: given.update(options))
    assert run(capsys, "demo", "--face-upsample", "1", "--output", tmp_path / "demo")[0] == 0
    assert given["face_upsample"] == 1


def test_open_clip_from_a_local_checkpoint_scores_like_the_same_weights_in_python(world, tmp_path, capsys):
    """The command's open_clip backbone is the user's checkpoint, not a random one."""
    import open_clip

    from skpercept.embed import CLIPEmbedder

    config, weights = world["clip"]
    redness = tinted_images(tmp_path, 6)
    pd.DataFrame({"image": [f"im{i}.png" for i in range(6)], "score": 10 * redness + 0.5}).to_csv(
        tmp_path / "t.csv", index=False
    )
    argv = ["fit", tmp_path / "t.csv", "--model", tmp_path / "m.joblib", "--backbone", f"open_clip:{config}"]
    code, _, err = run(capsys, *argv, "--pretrained", weights, "--no-flip", "--no-cache", *QUICK)
    assert code == 0, err
    embedder = joblib.load(tmp_path / "m.joblib")["features"]["embed"].transformer_list[0][1]
    images = [str(tmp_path / f"im{i}.png") for i in range(2)]
    mine = CLIPEmbedder(model_name="tiny-clip", pretrained=str(weights), device="cpu", normalize=False)
    assert np.allclose(embedder.transform(images), mine.fit_transform(images), atol=1e-5)
    assert "tiny-clip" in open_clip.list_models()


# -- keep / delete ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keep_table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keep")
    redness = tinted_images(folder, 16)
    rows = [
        {"image": f"im{i}.png", "user_id": user, "keep": int(r > 0.7 or (user == "b" and i == 3))}
        for user in ("a", "b")
        for i, r in enumerate(redness)
    ]
    pd.DataFrame(rows).to_csv(folder / "keep.csv", index=False)
    return folder / "keep.csv"


def test_keep_delete_report_class_weight_and_a_threshold_for_recall(world, keep_table, tmp_path, capsys):
    model = tmp_path / "k.joblib"
    argv = [
        "fit",
        keep_table,
        "--model",
        model,
        "--class-weight",
        "balanced",
        "--threshold-for",
        "recall=0.9",
    ]
    code, _, err = run(capsys, *argv, "--folds", "3", *tiny(world))
    assert code == 0, err
    fitted = joblib.load(model)
    info = fitted.skpercept_info_
    assert fitted[-1].class_weight == "balanced" and info["class_weight"] == "balanced"
    assert info["threshold_for"] == "recall=0.9" and info["threshold_folds"] == 3
    threshold = info["thresholds"]["keep"]
    assert 0 < threshold < 1 and f"keep: decision threshold {threshold:.3f} for recall=0.9" in err

    code, out, err = run(
        capsys,
        "evaluate",
        keep_table,
        "--model",
        model,
        "--output",
        tmp_path / "rep",
        "--cache-dir",
        world["cache"],
    )
    assert code == 0, err
    for text in (
        "precision",
        "recall",
        "f1",
        "| true 0 ",
        "predicted 1",
        f"P(1) >= {threshold:.3f}",
        "Per person",
    ):
        assert text in out
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "## Classification: keep" in report and (tmp_path / "rep" / "confusion_keep.png").exists()

    code, _, err = run(capsys, "predict", keep_table, "--model", model, "--output", tmp_path / "p.csv",
                       "--cache-dir", world["cache"])  # fmt: skip
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "p.csv")
    assert (pred["pred_keep"] == np.where(pred["p_keep_1"] >= threshold, 1, 0)).all()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--threshold-for", "recall"], "write recall=TARGET, precision=TARGET"),
        (["--threshold-for", "recall=1.5"], "write recall=TARGET"),
        (["--head", "regressor", "--class-weight", "balanced"], "need a classifier head"),
        (["--levels", "0", "1", "2", "--threshold-for", "f1"], "for two-level ratings (keep/delete)"),
    ],
)
def test_keep_delete_option_errors(world, keep_table, tmp_path, capsys, extra, message):
    code, _, err = run(capsys, "fit", keep_table, "--model", tmp_path / "k.joblib", *extra, *tiny(world))
    assert code == 2 and message in err


def test_choose_threshold_meets_the_target_with_the_highest_threshold():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05, 0.4, 0.35])
    t = choose_threshold(y, p, "recall", 0.8)
    assert t == 0.4 and (p[y == 1] >= t).mean() >= 0.8
    assert choose_threshold(y, p, "recall", 1.0) == 0.3
    t = choose_threshold(y, p, "precision", 1.0)
    assert t == 0.7 and y[p >= t].all()
    assert parse_threshold_spec("F1") == ("f1", None) and parse_threshold_spec("precision=.75") == (
        "precision",
        0.75,
    )
    with pytest.raises(CLIError):
        parse_threshold_spec("accuracy=0.9")


# -- predict --user -----------------------------------------------------------------------------
def test_predict_user_on_a_rating_model_and_on_a_model_without_people(world, keep_table, tmp_path, capsys):
    model = tmp_path / "k.joblib"
    assert run(capsys, "fit", keep_table, "--model", model, *tiny(world))[0] == 0
    images = tmp_path / "images.csv"
    pd.DataFrame({"image": [str(keep_table.parent / f"im{i}.png") for i in (0, 15)]}).to_csv(
        images, index=False
    )
    common = ["--model", model, "--cache-dir", world["cache"]]
    code, _, err = run(capsys, "predict", images, "--user", "a", "--output", tmp_path / "a.csv", *common)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "a.csv")["user_id"].eq("a").all()
    code, _, err = run(capsys, "predict", images, "--user", "zed", "--output", tmp_path / "z.csv", *common)
    assert (
        code == 0 and "--user zed: the model never saw this person; predicting for the average person" in err
    )
    code, _, err = run(capsys, "predict", images, "--output", tmp_path / "avg.csv", *common)
    assert code == 0 and "no 'user_id' column: predicting for the average person" in err
    assert np.allclose(
        pd.read_csv(tmp_path / "z.csv")["p_keep_1"], pd.read_csv(tmp_path / "avg.csv")["p_keep_1"]
    )

    no_people = tmp_path / "n.joblib"
    keep = pd.read_csv(keep_table).drop(columns="user_id")
    keep["image"] = [str(keep_table.parent / i) for i in keep["image"]]
    keep.to_csv(tmp_path / "anon.csv", index=False)
    assert run(capsys, "fit", tmp_path / "anon.csv", "--model", no_people, *tiny(world))[0] == 0
    argv = ["predict", images, "--model", no_people, "--user", "a", "--output", tmp_path / "x.csv"]
    code, _, err = run(capsys, *argv, "--cache-dir", world["cache"])
    assert code == 2 and "--user a: this model was fitted without people" in err
