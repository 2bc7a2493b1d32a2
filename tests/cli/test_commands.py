"""The ``skpercept`` command: demo (quick, tiny backbone), fit / evaluate / predict, clear errors."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skpercept import cli
from skpercept.datasets import load_omi
from skpercept.heads import make_head
from skpercept.recipes import DEMO_ENSEMBLE
from skpercept.recipes import _demo as demo_module

TINY_TIMM = "test_efficientnet"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny_backbones(tiny_lite0, monkeypatch):
    """The tiny model as 'lite0' and no dlib, so the commands and the demo run in seconds."""
    monkeypatch.setattr(demo_module, "dlib_available", lambda: False)


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_demo_quick_end_to_end(tiny_backbones, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run(
            "demo",
            "--quick",
            "--output",
            out,
            "--cache-dir",
            tmp_path / "cache",
            "--no-progress",
            "--attributes",
            "trustworthy",
            "smart",
        )
        == 0
    )
    captured = capsys.readouterr()
    for text in ("noise ceiling", "ridge (baseline)", "PairwiseRanker", "RatingClassifier", "| attribute"):
        assert text in captured.out
    assert "dlib face descriptors and landmarks skipped: not installed" in captured.err
    report = (out / "report.md").read_text()
    assert "| trustworthy" in report and "pair_acc" in report and "CC BY-NC-SA" in report
    for name in ("scatter.png", "calibration.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert list((tmp_path / "cache").rglob("*.npy"))  # embeddings were cached

    # the saved pipelines predict from image paths, through the predict command
    images = pd.DataFrame({"image": load_omi(["smart"]).images["image"].iloc[:3]})
    images.to_csv(tmp_path / "faces.csv", index=False)
    assert (
        run(
            "predict",
            tmp_path / "faces.csv",
            "--model",
            out / "ranker_model.joblib",
            "--output",
            tmp_path / "scores.csv",
            "--no-progress",
        )
        == 0
    )
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["image", "pred_trustworthy_score", "pred_smart_score"]
    rating = joblib.load(out / "rating_model.joblib")
    assert rating.skpercept_info_["levels"] == [1, 2, 3, 4]
    assert set(np.asarray(rating.predict(images["image"])).ravel()) <= {1, 2, 3, 4}


@pytest.fixture
def image_folder(tmp_path):
    """12 small images whose redness drives two made-up attributes."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    redness = np.linspace(0, 1, 12)
    for i, r in enumerate(redness):
        pixels = rng.integers(0, 60, size=(32, 32, 3)).astype(np.uint8)
        pixels[..., 0] += np.uint8(190 * r)
        Image.fromarray(pixels).save(folder / f"im{i}.png")
    return folder, redness


def test_fit_evaluate_predict_ratings_csv(tiny_backbones, image_folder, tmp_path, capsys):
    folder, redness = image_folder
    rows = [
        {"image": f"im{i}.png", "user_id": f"u{k}", "warm": 1 + int(r * 3.99), "calm": 4 - int(r * 3.99)}
        for k in range(3)
        for i, r in enumerate(redness)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "ratings.csv", index=False)
    common = ["--image-root", folder, "--cache-dir", tmp_path / "cache", "--no-progress"]
    assert run("fit", tmp_path / "ratings.csv", "--model", tmp_path / "m.joblib", "--epochs", 3, *common) == 0
    model = joblib.load(tmp_path / "m.joblib")
    assert model.skpercept_info_ == {
        "format": 1,
        "task": "rating",
        "users": True,
        "levels": [1.0, 2.0, 3.0, 4.0],
        "head": "classifier",
        "output": "classes",
        "attributes": ["warm", "calm"],
        "backbone": "lite0",
        "user_id_kind": "str",
        "user_ids": ["u0", "u1", "u2"],
        "user_counts": {"u0": 24, "u1": 24, "u2": 24},  # judgments: 12 images x 2 attributes each
        "personal": model.skpercept_info_["personal"],  # True once the heads take user_features
    }
    assert (
        run(
            "evaluate",
            tmp_path / "ratings.csv",
            "--model",
            tmp_path / "m.joblib",
            "--output",
            tmp_path / "report",
            *common,
        )
        == 0
    )
    assert "qwk" in capsys.readouterr().out
    assert (tmp_path / "report" / "calibration.png").exists()
    assert (
        run(
            "predict",
            tmp_path / "ratings.csv",
            "--model",
            tmp_path / "m.joblib",
            "--output",
            tmp_path / "pred.csv",
            *common,
        )
        == 0
    )
    pred = pd.read_csv(tmp_path / "pred.csv")
    # every input column kept as read; predictions named so they cannot pass for labels
    levels = ["1", "2", "3", "4"]
    assert list(pred.columns) == ["image", "user_id", "warm", "calm"] + [
        name
        for a in ("warm", "calm")
        for name in [f"pred_{a}", f"pred_{a}_expected"] + [f"p_{a}_{k}" for k in levels]
    ]
    assert pred[["image", "user_id", "warm", "calm"]].equals(pd.DataFrame(rows))
    assert len(pred) == len(rows) and pred["pred_warm"].isin([1, 2, 3, 4]).all()
    assert np.allclose(pred[[f"p_warm_{k}" for k in levels]].sum(axis=1), 1)


def test_fit_predict_pairs_xlsx_and_regressor(tiny_backbones, image_folder, tmp_path, capsys):
    folder, redness = image_folder
    a, b = np.triu_indices(12, 1)
    pairs = pd.DataFrame(
        {
            "image_a": [f"im{i}.png" for i in a],
            "image_b": [f"im{j}.png" for j in b],
            "warm": (redness[a] > redness[b]).astype(float),
        }
    )
    pairs.to_excel(tmp_path / "pairs.xlsx", index=False)
    common = ["--image-root", folder, "--cache-dir", tmp_path / "cache", "--no-progress", "--epochs", 3]
    assert run("fit", tmp_path / "pairs.xlsx", "--model", tmp_path / "p.joblib", *common) == 0
    assert joblib.load(tmp_path / "p.joblib").skpercept_info_["task"] == "pairs"
    assert (
        run(
            "predict",
            tmp_path / "pairs.xlsx",
            "--model",
            tmp_path / "p.joblib",
            "--output",
            tmp_path / "pp.csv",
            *common[:-2],
        )
        == 0
    )
    p = pd.read_csv(tmp_path / "pp.csv")["p_warm_a"]
    assert len(p) == len(pairs) and p.between(0, 1).all()
    assert run("evaluate", tmp_path / "pairs.xlsx", "--model", tmp_path / "p.joblib", *common[:-2]) == 0
    assert "pair_acc" in capsys.readouterr().out

    means = pd.DataFrame({"image": [f"im{i}.png" for i in range(12)], "score": 10 * redness + 0.5})
    means.to_csv(tmp_path / "means.csv", index=False)
    assert run("fit", tmp_path / "means.csv", "--model", tmp_path / "r.joblib", *common, "--ensemble", 2) == 0
    regressor = joblib.load(tmp_path / "r.joblib")
    assert regressor.skpercept_info_["head"] == "regressor"
    assert regressor[-1].n_ensemble == 2 and len(regressor[-1].nets_) == 2
    capsys.readouterr()
    assert (
        run("fit", tmp_path / "means.csv", "--model", tmp_path / "r0.joblib", *common, "--ensemble", 0) == 2
    )
    assert "argument --ensemble: must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_table", "Table file not found"),
        ("bad_suffix", "unsupported table format"),
        ("missing_attribute", "attribute column(s) ['nope'] not found"),
        ("missing_image", "column 'image' not found, e.g. row 3: 'ghost.png'"),
        ("text_rating", "column 'warm' has non-numeric values at row 3"),
        ("one_two_pairs", "convert it first"),
        ("no_image_column", "needs an 'image' column"),
        ("missing_model", "Model file not found"),
    ],
)
def test_clear_errors_name_file_and_column(tiny_backbones, image_folder, tmp_path, capsys, case, message):
    folder, _ = image_folder
    table = tmp_path / "t.csv"
    frame = pd.DataFrame({"image": ["im0.png", "im1.png"], "warm": [1, 2]})
    argv = ["fit", table, "--model", tmp_path / "m.joblib", "--image-root", folder, "--no-progress"]
    if case == "missing_table":
        table = tmp_path / "absent.csv"
        argv[1] = table
    elif case == "bad_suffix":
        table = tmp_path / "t.json"
        table.write_text("{}")
        argv[1] = table
    elif case == "missing_attribute":
        argv += ["--attributes", "nope"]
    elif case == "missing_image":
        frame.loc[1, "image"] = "ghost.png"
    elif case == "text_rating":
        frame["warm"] = ["1", "high"]
    elif case == "one_two_pairs":
        frame = pd.DataFrame({"image_a": ["im0.png"], "image_b": ["im1.png"], "warm": [2]})
    elif case == "no_image_column":
        frame = frame.rename(columns={"image": "path"})
    elif case == "missing_model":
        argv = ["predict", table, "--model", tmp_path / "absent.joblib", "--image-root", folder]
    if table.suffix == ".csv" and case != "missing_table":
        frame.to_csv(table, index=False)
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert message in err
    if case not in ("missing_model",):
        assert str(table) in err


@pytest.mark.slow
def test_demo_quick_with_shipped_weights(tmp_path, capsys):
    """The real lite0 backbone on 40 faces (slow on CPU: deselected by default)."""
    assert (
        run(
            "demo",
            "--quick",
            "--no-dlib",
            "--output",
            tmp_path / "o",
            "--cache-dir",
            tmp_path / "c",
            "--no-progress",
        )
        == 0
    )
    assert "PairwiseRanker" in capsys.readouterr().out


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("quick", "members"), [(False, DEMO_ENSEMBLE), (True, 1)])
def test_demo_heads_are_ensembles_except_in_quick_runs(tiny_backbones, monkeypatch, tmp_path, quick, members):
    seen = {}

    def stop(omi, Z, sizes, models, *, settings, **_):
        seen["settings"] = settings
        raise _Stop

    monkeypatch.setattr(
        demo_module, "embed_blocks", lambda backbones, images: (np.zeros((len(images), 4)), [4])
    )
    monkeypatch.setattr(demo_module, "cross_validate", stop)
    with pytest.raises(_Stop):
        demo_module.run_demo(tmp_path, attributes=["smart"], quick=quick, progress=False, log=lambda _: None)
    assert seen["settings"].n_ensemble == members > 0
    assert make_head("ranker", seen["settings"]).n_ensemble == members
