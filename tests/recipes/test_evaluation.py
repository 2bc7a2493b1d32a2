"""The image-disjoint evaluation protocol on small planted data (no image is embedded)."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import Bunch

from skpercept.datasets import ratings_with_face_index
from skpercept.heads import HeadSettings, make_head
from skpercept.recipes import _evaluation as evaluation_module
from skpercept.recipes import face_scores, fit_head
from skpercept.recipes._evaluation import (
    CVResult,
    cross_validate,
    noise_ceiling_table,
    pair_calibration,
    pair_metrics,
    rating_metrics,
    results_table,
)

N_IMAGES = 60
ATTRIBUTES = ["warm", "bold"]


def planted(seed: int = 0, ratings_per_image: int = 4) -> Bunch:
    """Images with known mean ratings (0–100) and individual ratings scattered around them."""
    rng = np.random.RandomState(seed)
    images = [f"img{k:03d}.jpg" for k in range(N_IMAGES)]
    true = rng.uniform(5, 95, size=(N_IMAGES, len(ATTRIBUTES)))
    rows = []
    for k, image in enumerate(images):
        for a, attribute in enumerate(ATTRIBUTES):
            for r in np.clip(np.round(true[k, a] + rng.normal(0, 5, ratings_per_image)), 0, 100):
                rows.append({"image": image, "attribute": attribute, "rating": int(r)})
    ratings = pd.DataFrame(rows)
    means = (
        ratings.groupby(["image", "attribute"])["rating"]
        .mean()
        .unstack("attribute")[ATTRIBUTES]
        .reset_index()
    )
    means.columns.name = None
    return Bunch(
        images=pd.DataFrame({"stimulus": np.arange(N_IMAGES), "image": images}),
        ratings=ratings,
        means=means,
        attributes=list(ATTRIBUTES),
    )


def features(data: Bunch, signal: float, seed: int = 0) -> np.ndarray:
    """Two blocks: the means times ``signal`` beside 6 noise columns; then a noise block of 4."""
    rng = np.random.RandomState(seed)
    means = data.means[ATTRIBUTES].to_numpy()
    block = np.hstack([signal * means / 50, rng.normal(size=(len(means), 6))])
    return np.hstack([block, rng.normal(size=(len(means), 4))]).astype(np.float32)


SIZES = [8, 4]


# -- metric helpers -------------------------------------------------------------------------------
def test_pair_metrics_by_hand():
    acc, rho = pair_metrics(np.array([1.0, 2.0, 4.0, 3.0]), np.array([10.0, 20.0, 30.0, 40.0]))
    assert acc == pytest.approx(5 / 6)  # only (2, 3) is misordered
    assert rho == pytest.approx(0.8)
    # tied means are skipped; a tied score on an untied pair counts as wrong
    acc, _ = pair_metrics(np.array([0.0, 1.0, 1.0]), np.array([5.0, 5.0, 9.0]))
    assert acc == pytest.approx(1 / 2)  # (0, 2) right, (1, 2) tied score; (0, 1) skipped


def test_pair_calibration_by_hand():
    ece, y, p = pair_calibration(np.array([0.0, 0.0, 2.0]), np.array([1.0, 2.0, 2.0]))
    # pairs (0, 1) and (0, 2); (1, 2) has equal means; then both swapped
    np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0])
    q = 1 / (1 + np.exp(2.0))
    np.testing.assert_allclose(p, [0.5, q, 0.5, 1 - q])
    # bins: 0.5 holds one pair of each order (labels 0 and 1, mean ½: no gap); q and 1 − q each
    # hold one row whose label is 0 and 1 respectively: a gap of q in both
    assert ece == pytest.approx(2 / 4 * q)


def test_pair_calibration_ignores_file_order():
    # an offset on every second image that the scores do not see: ordered by file number it
    # would read as miscalibration; counted in both orders the labels average ½
    rng = np.random.RandomState(0)
    scores = rng.normal(size=80)
    means = scores + np.where(np.arange(80) < 40, 1.0, 0.0) + rng.normal(scale=0.5, size=80)
    ece, y, p = pair_calibration(scores, means)
    assert y.mean() == pytest.approx(0.5) and p.mean() == pytest.approx(0.5)
    one_order = len(y) // 2
    assert y[:one_order].mean() > 0.55  # file order leans left
    ece_swapped, _, _ = pair_calibration(scores[::-1], means[::-1])
    assert ece == pytest.approx(ece_swapped)  # the same pairs, the other file order


def test_rating_metrics_by_hand():
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0.2, 0.2, 0.6]])
    face_of_row = np.array([0, 0, 1, 1])
    classes = np.array([1, 2, 4, 3])
    out = rating_metrics(proba, face_of_row, classes)
    assert out["rating_acc"] == pytest.approx(0.5)  # predictions 1 1 4 4
    assert out["rating_mae"] == pytest.approx(0.5)
    assert -1 <= out["qwk"] <= 1
    # top-label ECE: bins at 0.7 (2 rows, 1 right) and 0.6 (2 rows, 1 right)
    assert out["ece"] == pytest.approx(0.5 * abs(0.7 - 0.5) + 0.5 * abs(0.6 - 0.5))


# -- the protocol ---------------------------------------------------------------------------------
def test_planted_signal_is_recovered_and_noise_is_not():
    data = planted()
    good = cross_validate(data, features(data, signal=1.0), SIZES, ["ridge"], folds=3).summary()
    noise = cross_validate(data, features(data, signal=0.0), SIZES, ["ridge"], folds=3).summary()
    for attribute in ATTRIBUTES:
        assert good.loc[(attribute, "ridge"), "pair_acc"] > 0.95
        assert good.loc[(attribute, "ridge"), "spearman"] > 0.95
        assert 0.3 < noise.loc[(attribute, "ridge"), "pair_acc"] < 0.7


def test_folds_are_image_disjoint_and_cover_every_image(monkeypatch):
    data = planted()
    Z = features(data, signal=1.0)
    Z[:, 7] = np.arange(N_IMAGES)  # a column that names each row, to see which rows a head gets
    seen = {"train": [], "test": []}

    def recording_fit(kind, Z_, sizes, train, *args, **kwargs):
        seen["train"].append(set(train.tolist()))
        return fit_head(kind, Z_, sizes, train, *args, **kwargs)

    def recording_scores(kind, model, Z_test):
        seen["test"].append(set(Z_test[:, 7].astype(int).tolist()))
        return face_scores(kind, model, Z_test)

    monkeypatch.setattr(evaluation_module, "fit_head", recording_fit)
    monkeypatch.setattr(evaluation_module, "face_scores", recording_scores)
    result = cross_validate(data, Z, SIZES, ["ridge"], folds=4)
    assert len(seen["train"]) == len(seen["test"]) == 4
    for train, test in zip(seen["train"], seen["test"]):
        assert not train & test
        assert train | test == set(range(N_IMAGES))
    assert sorted(i for test in seen["test"] for i in test) == list(range(N_IMAGES))
    assert not np.isnan(result.scores["ridge"]).any()
    assert result.metrics.groupby("attribute").size().tolist() == [4, 4]


def test_inputs_are_not_modified():
    data = planted()
    Z = features(data, signal=1.0)
    before = copy.deepcopy(dict(data)), Z.copy()
    result = cross_validate(data, Z, SIZES, ["ridge"], folds=3)
    pd.testing.assert_frame_equal(data.means, before[0]["means"])
    pd.testing.assert_frame_equal(data.ratings, before[0]["ratings"])
    assert data.attributes == before[0]["attributes"]
    np.testing.assert_array_equal(Z, before[1])

    ceiling = noise_ceiling_table(data)
    kept = copy.deepcopy(result), ceiling.copy()
    results_table(result, ceiling)
    pd.testing.assert_frame_equal(result.metrics, kept[0].metrics)
    pd.testing.assert_frame_equal(ceiling, kept[1])
    with pytest.raises(AttributeError):
        result.metrics = pd.DataFrame()  # results are frozen


def test_ranker_and_classifier_pool_curves_over_folds():
    data = planted()
    Z = features(data, signal=1.0)
    settings = HeadSettings.quick(device="cpu", n_pairs=200)
    messages = []
    result = cross_validate(
        data, Z, SIZES, ["ranker", "classifier"], folds=2, settings=settings, progress=messages.append
    )
    assert len(messages) == 4 and messages[0].startswith("fold 1/2 PairwiseRanker: pair accuracy ")
    for k, attribute in enumerate(ATTRIBUTES):
        y, p = result.pair_curves[attribute]
        # every pair of test images with different means, in both orders, pooled over both folds
        n_test = [N_IMAGES // 2, N_IMAGES - N_IMAGES // 2]
        assert len(y) == len(p) <= sum(n * (n - 1) for n in n_test)
        assert len(y) > 0.9 * sum(n * (n - 1) for n in n_test)
        assert set(np.unique(y)) <= {0.0, 1.0} and np.all((p > 0) & (p < 1))
        classes, proba = result.rating_curves[attribute]
        assert len(classes) == (data.ratings["attribute"] == attribute).sum()  # every held-out rating
        assert proba.shape == (len(classes), 4)
        assert not np.isnan(result.scores["ranker"][:, k]).any()
        expected_class = result.scores["classifier"][:, k]
        assert np.all((expected_class >= 1) & (expected_class <= 4))
    columns = set(result.metrics.columns)
    assert {"pair_acc", "spearman", "ece", "rating_acc", "rating_mae", "qwk"} <= columns
    assert result.metrics.loc[result.metrics["model"] == "ranker", "rating_acc"].isna().all()
    assert set(result.seconds) == {"ranker", "classifier"}


# -- tables ---------------------------------------------------------------------------------------
def test_noise_ceiling_table_columns_and_oracle():
    data = planted()
    table = noise_ceiling_table(data)
    assert list(table.index) == ATTRIBUTES
    assert list(table.columns) == ["pair_acc", "rating_acc", "rating_mae", "qwk"]
    assert (table["pair_acc"] > 0.9).all()  # ratings 5 points around well-spread means
    assert (table["rating_acc"] > 0.5).all() and (table["rating_acc"] <= 1).all()


def test_results_table_headroom_and_labels():
    metrics = pd.DataFrame(
        {
            "model": ["ridge", "ridge", "ranker", "ranker"],
            "attribute": ["warm"] * 4,
            "fold": [0, 1, 0, 1],
            "pair_acc": [0.7, 0.8, 0.6, 0.7],
            "spearman": [0.5, 0.5, 0.4, 0.4],
        }
    )
    result = CVResult(attributes=["warm"], metrics=metrics)
    ceiling = pd.DataFrame({"pair_acc": [0.9], "rating_acc": [0.6]}, index=["warm"])
    table = results_table(result, ceiling, extra_label=" [x]")
    assert list(table.index) == [
        ("warm", "noise ceiling"),
        ("warm", "ridge (baseline) [x]"),
        ("warm", "PairwiseRanker [x]"),
    ]
    assert list(table.columns[:3]) == ["pair_acc", "spearman", "headroom"]
    assert table.loc[("warm", "noise ceiling"), "headroom"] == 1.0
    assert table.loc[("warm", "ridge (baseline) [x]"), "headroom"] == pytest.approx((0.75 - 0.5) / 0.4)
    assert table.loc[("warm", "PairwiseRanker [x]"), "headroom"] == pytest.approx((0.65 - 0.5) / 0.4)
    assert table.loc[("warm", "PairwiseRanker [x]"), "pair_acc"] == pytest.approx(0.65)


def test_recipes_do_not_import_the_command_line():
    """The call graph runs one way: the command → recipes → the library."""
    code = (
        "import sys, skpercept.recipes; "
        "print(sorted(m for m in sys.modules if m.startswith('skpercept.cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fold_features_are_learned_from_each_folds_training_images_only():
    """``fold_features`` gets each fold's training positions (never a test image) and its Z
    scores that fold; a function that ignores them reproduces the fixed-Z result."""
    data = planted()
    Z = features(data, signal=1.0)
    calls = []

    def learned(train):
        calls.append(np.asarray(train).copy())
        return Z

    result = cross_validate(data, None, SIZES, ["ridge"], folds=3, fold_features=learned)
    fixed = cross_validate(data, Z, SIZES, ["ridge"], folds=3)
    pd.testing.assert_frame_equal(result.metrics, fixed.metrics)
    assert len(calls) == 3
    tested = [set(range(N_IMAGES)) - set(train.tolist()) for train in calls]
    assert sorted(i for test in tested for i in test) == list(range(N_IMAGES))  # each image tested once

    def shifted(train):
        # Features that depend on which images were trained on: noise on the test rows.
        out = Z.copy()
        test = np.setdiff1d(np.arange(N_IMAGES), train)
        out[test] = np.random.default_rng(0).normal(size=out[test].shape)
        return out

    zeroed = cross_validate(data, None, SIZES, ["ridge"], folds=3, fold_features=shifted).summary()
    assert (zeroed["pair_acc"] < fixed.summary()["pair_acc"]).all()
    with pytest.raises(ValueError, match="either Z or fold_features"):
        cross_validate(data, Z, SIZES, ["ridge"], folds=3, fold_features=learned)
    with pytest.raises(ValueError, match="returned 5 rows for fold 0"):
        cross_validate(data, None, SIZES, ["ridge"], folds=3, fold_features=lambda train: Z[:5])


def test_fit_head_takes_a_variant_of_the_preset_head():
    data = planted()
    Z = features(data, signal=1.0)
    means = data.means[ATTRIBUTES].to_numpy(np.float64)
    ratings = ratings_with_face_index(data)
    train = np.arange(40)
    settings = HeadSettings.quick(device="cpu", n_pairs=600, max_epochs=30, patience=5)
    # a linear ranker in smaller batches than the preset's 256 (600 pairs: 2 steps an epoch)
    variant = make_head("ranker", settings).set_params(hidden_layer_sizes=(), batch_size=32)
    fitted = fit_head("ranker", Z, SIZES, train, means, ratings, ATTRIBUTES, settings, None, head=variant)
    head = fitted[-1]
    assert head is not variant and not hasattr(variant, "nets_")  # a clone was fitted
    assert head.hidden_layer_sizes == () and head.batch_size == 32 and head.n_features_in_ == 2 * Z.shape[1]
    # hard labels (se=None) and the variant's own parameters; the preset head is another model
    preset = fit_head("ranker", Z, SIZES, train, means, ratings, ATTRIBUTES, settings, None)
    assert preset[-1].hidden_layer_sizes == settings.hidden
    scores, _ = face_scores("ranker", fitted, Z[40:])
    preset_scores, _ = face_scores("ranker", preset, Z[40:])
    assert scores.shape == preset_scores.shape == (20, len(ATTRIBUTES))
    assert not np.allclose(scores, preset_scores)
