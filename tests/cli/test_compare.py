"""``skpercept compare``: backbones × heads on the user's own table, image-disjoint CV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skpercept import cli
from skpercept.cli.compare import _row_features, _scores
from tests.cli._data import QUICK, TINY_TIMM, reference_folder, run_command, tinted_images, tiny_clip

TIMM = f"timm:{TINY_TIMM}"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    redness = tinted_images(root, 12)
    rows = [
        {
            "image": f"im{i}.png",
            "user_id": user,
            "warm": 1 + int(r * 3.99),
            "calm": 4 - int(r * 3.99),
            "judgment_id": 100 * k + i,
        }
        for k, user in enumerate(("a", "b"))
        for i, r in enumerate(redness)
    ]
    pd.DataFrame(rows).to_csv(root / "ratings.csv", index=False)
    return {
        "root": root,
        "ratings": root / "ratings.csv",
        "folder": reference_folder(root / "ref", n_images=8),
        "clip": tiny_clip(root / "clip"),
        "cache": root / "cache",
    }


def test_compare_ratings_backbones_by_heads_table_and_report(world, tmp_path, capsys):
    config, weights = world["clip"]
    clip = f"open_clip:{config}"
    argv = [
        "compare",
        world["ratings"],
        "--backbones",
        f"{TIMM},{clip},{TIMM}+{clip}",
        "--pretrained",
        "random",
    ]
    argv += [
        "--pretrained",
        weights,
        "--heads",
        "ridge,classifier",
        "--folds",
        "3",
        "--output",
        tmp_path / "out",
    ]
    code, out, err = run(capsys, *argv, "--cache-dir", world["cache"], *QUICK)
    assert code == 0, err
    assert "| backbone" in out and "accuracy" in out and "fold_sd" in out
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert list(table[["backbone", "head"]].itertuples(index=False, name=None)) == [
        (backbone, head) for backbone in (TIMM, clip, f"{TIMM}+{clip}") for head in ("ridge", "classifier")
    ]
    for column in (
        "accuracy",
        "fold_sd",
        "mae",
        "mae_sd",
        "accuracy_warm",
        "accuracy_calm",
        "embed_s",
        "fit_s",
    ):
        assert table[column].notna().all(), column
    assert (
        table["accuracy"].between(0, 1).all()
        and (table["fold_sd"] >= 0).all()
        and (table["embed_s"] > 0).all()
    )
    # the attribute-averaged accuracy is the mean of the per-attribute ones
    assert np.allclose(table["accuracy"], table[["accuracy_warm", "accuracy_calm"]].mean(axis=1))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Backbones × heads" in report and "3-fold image-disjoint" in report
    assert "'judgment_id': an id / language column" in err  # never an attribute


def test_compare_pairs_on_a_reference_folder_as_a_subprocess(world, tmp_path):
    result = run_command(
        "compare", world["folder"], "--one-means", "first", "--backbones", TIMM, "--pretrained", "random",
        "--folds", "2", "--cache-dir", world["cache"], "--output", tmp_path / "out", *QUICK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert table["head"].tolist() == ["logistic", "ranker"]
    assert table["pair_acc"].between(0, 1).all()
    assert {f"pair_acc_{a}" for a in ("attractive", "smart", "trustworthy")} <= set(table.columns)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backbones", TIMM, "--heads", "ranker"], "--heads ['ranker'] cannot fit a rating table"),
        (["--backbones", f"{TIMM},lite0"], "--pretrained was given 0 time(s); compare needs one value"),
        (["--backbones", f"{TIMM},", "--pretrained", "random"], "has an empty entry"),
        (["--backbones", "vgg"], "Unknown backbone 'vgg'"),
        (
            ["--backbones", TIMM, "--pretrained", "random", "--folds", "40"],
            "more than the 12 distinct images",
        ),
    ],
)
def test_compare_errors(world, capsys, extra, message):
    code, _, err = run(capsys, "compare", world["ratings"], *extra, "--cache-dir", world["cache"], *QUICK)
    assert code == 2 and message in err and "Traceback" not in err


def test_scores_and_pair_features():
    truth = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    pred = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.6]])
    assert _scores(pred, truth, True, None)["per_attribute"] == [2 / 3, 0.5]
    ratings = np.array([[1.0], [2.0], [4.0]])
    scored = _scores(np.array([[1.2], [2.6], [3.9]]), ratings, False, np.array([1, 2, 3, 4]))
    assert scored["per_attribute"] == [2 / 3] and np.isclose(scored["mae"], (0.2 + 0.6 + 0.1) / 3)
    Z = np.arange(6.0).reshape(3, 2)
    codes = np.array([[0, 2], [1, 0]])
    assert _row_features(Z, codes, difference=True).tolist() == [[-4.0, -4.0], [2.0, 2.0]]
    assert _row_features(Z, codes, difference=False).shape == (2, 4)
