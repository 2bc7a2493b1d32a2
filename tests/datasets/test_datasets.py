"""The embedded OMI data and the helpers deriving rating classes, comparisons and training tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import norm
from sklearn.utils import Bunch

from skpercept.datasets import (
    consensus_pairs,
    load_omi,
    mean_standard_errors,
    omi_attributes,
    rating_frame,
    ratings_with_face_index,
    sample_comparisons,
    sample_rating_rows,
    soft_consensus_pairs,
    subset_faces,
    to_rating_classes,
)
from skpercept.datasets._omi import OMI_DIR


@pytest.fixture(scope="module")
def omi():
    return load_omi()


def test_load_omi_tables(omi):
    assert omi.attributes == ["trustworthy", "attractive", "smart"]
    assert list(omi.images.columns) == ["stimulus", "image"]
    assert len(omi.images) == 1004 and omi.images.stimulus.is_unique
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in omi.images.image)
    assert list(omi.ratings.columns) == ["image", "stimulus", "attribute", "rating", "rating_type"]
    assert set(omi.ratings.attribute) == set(omi.attributes)
    assert omi.ratings.rating.between(0, 100).all()
    assert "repeat" not in set(omi.ratings.rating_type)
    assert set(omi.ratings.image) <= set(omi.images.image)
    assert list(omi.means.columns) == ["image", *omi.attributes]
    assert omi.means.image.tolist() == omi.images.image.tolist()
    assert not omi.means[omi.attributes].isna().any().any()
    # the means are those of the returned ratings
    trust = omi.ratings[omi.ratings.attribute == "trustworthy"]
    expected = trust.groupby("image").rating.mean().reindex(omi.means.image).to_numpy()
    np.testing.assert_allclose(omi.means.trustworthy.to_numpy(), expected)
    assert Path(omi.image_dir).is_dir()


def test_shipped_ratings_reproduce_published_means():
    # The published means include repeat rows: checks the embedded copy is complete and unchanged.
    omi = load_omi("all", include_repeats=True)
    assert len(omi.attributes) == 34 and omi.attributes == omi_attributes()
    assert len(omi.ratings) == 1_324_200  # the source's rows whose faces ship
    published = pd.read_csv(OMI_DIR / "attribute_means.csv.gz").sort_values("stimulus")
    np.testing.assert_allclose(
        omi.means[omi.attributes].to_numpy(), published[omi.attributes].to_numpy(), atol=1e-6
    )


def test_load_omi_repeats_and_unknown_attribute():
    with_repeats = load_omi(["smart"], include_repeats=True)
    without = load_omi("smart")
    assert len(with_repeats.ratings) > len(without.ratings)
    assert "repeat" in set(with_repeats.ratings.rating_type)
    with pytest.raises(ValueError, match="available: .*trustworthy"):
        load_omi(["trustworthy", "kindness"])


def test_load_omi_as_arrays():
    omi = load_omi(["trustworthy", "smart"], as_frame=False)
    assert isinstance(omi.images, np.ndarray) and omi.images.shape == (1004,)
    assert omi.means.shape == (1004, 2) and omi.means.dtype == np.float64
    assert omi.ratings.dtype.names == ("image", "stimulus", "attribute", "rating", "rating_type")


def test_omi_license_attribution_and_size():
    omi = load_omi("smart")
    assert "BY-NC-SA 4.0" in omi.license
    for text in ("Peterson", "10.1073/pnas.2115228119", "github.com/jcpeterson/omi", "changed"):
        assert text in omi.DESCR
    total = sum(p.stat().st_size for p in OMI_DIR.rglob("*") if p.is_file())
    assert total <= 25 * 1024 * 1024
    with Image.open(omi.images.image.iloc[0]) as img:
        assert min(img.size) >= 224


def test_to_rating_classes_uniform_edges():
    out = to_rating_classes([0, 24.9, 25, 49.99, 50, 74, 75, 100])
    np.testing.assert_array_equal(out, [1, 1, 2, 2, 3, 3, 4, 4])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(to_rating_classes([1, 6, 9], bins=2, scale=(0, 10)), [1, 2, 2])
    np.testing.assert_array_equal(to_rating_classes([10, 60, 95], bins=[0, 50, 90, 100]), [1, 2, 3])


def test_to_rating_classes_quantile_nan_and_containers():
    rng = np.random.RandomState(0)
    values = rng.uniform(0, 100, 1000) ** 2 / 100  # skewed, so uniform bins are unbalanced
    counts = np.bincount(to_rating_classes(values, strategy="quantile"))[1:]
    assert counts.min() >= 240
    series = pd.Series([10.0, np.nan, 80.0], index=[5, 6, 7], name="smart")
    out = to_rating_classes(series)
    assert isinstance(out, pd.Series) and out.index.tolist() == [5, 6, 7] and out.name == "smart"
    assert out.iloc[0] == 1 and np.isnan(out.iloc[1]) and out.iloc[2] == 4
    frame = to_rating_classes(pd.DataFrame({"a": [0, 99], "b": [30, 60]}))
    assert frame.to_dict("list") == {"a": [1, 4], "b": [2, 3]}


@pytest.mark.parametrize(
    "values, kwargs, match",
    [
        ([-1, 50], {}, "outside the rating scale"),
        ([50, 101], {}, "outside"),
        ([1, 2], {"bins": 1}, ">= 2"),
        ([1, 2], {"bins": [0, 50, 40]}, "strictly increasing"),
        ([1, 2], {"strategy": "kmeans"}, "uniform' or 'quantile"),
        (["low"], {}, "numeric"),
    ],
)
def test_to_rating_classes_errors(values, kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_rating_classes(values, **kwargs)


def test_consensus_pairs_all_pairs_and_labels():
    means = pd.DataFrame({"image": list("abcde"), "x": [1.0, 2.0, 3.0, 3.0, 5.0], "y": [5.0, 4, 3, 2, 1]})
    pairs = consensus_pairs(means, random_state=0)
    assert list(pairs.columns) == ["image_a", "image_b", "x", "y"]
    assert len(pairs) == 10
    unordered = {frozenset(p) for p in zip(pairs.image_a, pairs.image_b, strict=True)}
    assert len(unordered) == 10
    lookup = means.set_index("image")
    for row in pairs.itertuples():
        diff = lookup.x[row.image_a] - lookup.x[row.image_b]
        assert row.x == (0.5 if diff == 0 else float(diff > 0))
        assert row.y == float(lookup.y[row.image_a] > lookup.y[row.image_b])
    dropped = consensus_pairs(means, "x", ties="drop", random_state=0)
    assert len(dropped) == 9 and not dropped.x.isna().any()
    gap = consensus_pairs(means, ["x"], min_gap=1.5, random_state=0)
    diffs = np.abs(gap.image_a.map(lookup.x) - gap.image_b.map(lookup.x))
    assert (diffs >= 1.5).all() and len(gap) == 6


def test_consensus_pairs_sample_on_omi(omi):
    pairs = consensus_pairs(omi.means, n_pairs=3000, random_state=0)
    again = consensus_pairs(omi.means, n_pairs=3000, random_state=0)
    pd.testing.assert_frame_equal(pairs, again)
    assert len({frozenset(p) for p in zip(pairs.image_a, pairs.image_b, strict=True)}) == 3000
    assert (pairs.image_a != pairs.image_b).all()
    # random left/right order: the left item wins about half the time
    assert 0.45 < pairs.trustworthy.mean() < 0.55
    with pytest.raises(ValueError, match="n_pairs"):
        consensus_pairs(omi.means.head(10), n_pairs=46)
    with pytest.raises(ValueError, match="one row per item"):
        consensus_pairs(pd.concat([omi.means.head(3)] * 2))


def test_sample_comparisons_follow_individual_ratings():
    ratings = pd.DataFrame({"image": ["a", "b", "c", "c"], "attribute": "smart", "rating": [10, 50, 90, 90]})
    pairs = sample_comparisons(ratings, n_pairs=200, random_state=0)
    order = {"a": 0, "b": 1, "c": 2}
    expected = (pairs.image_a.map(order) > pairs.image_b.map(order)).astype(float)
    np.testing.assert_array_equal(pairs.smart, expected)
    assert (pairs.image_a != pairs.image_b).all() and len(pairs) == 200
    tied = pd.DataFrame({"image": ["a", "b"], "attribute": "smart", "rating": [5, 5]})
    assert (sample_comparisons(tied, n_pairs=5, random_state=0).smart == 0.5).all()
    assert sample_comparisons(tied, n_pairs=5, ties="drop", random_state=0).empty


def test_sample_comparisons_on_omi_are_noisier_than_consensus(omi):
    pairs = sample_comparisons(omi.ratings, n_pairs=20000, random_state=0)
    assert list(pairs.columns) == ["image_a", "image_b", *omi.attributes]
    means = omi.means.set_index("image")
    for attribute in omi.attributes:
        decided = pairs[pairs[attribute] != 0.5]
        consensus = means[attribute]
        agree = (
            (decided.image_a.map(consensus) > decided.image_b.map(consensus)) == (decided[attribute] == 1)
        ).mean()
        # individual raters agree with the consensus more than chance, far from always
        assert 0.55 < agree < 0.85, (attribute, agree)


def test_rating_frame_wide_classes(omi):
    frame = rating_frame(omi.ratings)
    assert list(frame.columns) == ["image", *omi.attributes]
    assert len(frame) == len(omi.ratings)
    assert (frame[omi.attributes].notna().sum(axis=1) == 1).all()
    assert set(np.unique(frame.trustworthy.dropna())) == {1.0, 2.0, 3.0, 4.0}
    raw = rating_frame(omi.ratings, ["smart"], bins=None)
    assert raw.smart.notna().sum() == (omi.ratings.attribute == "smart").sum()
    assert raw.smart.max() > 4
    with pytest.raises(ValueError, match="not in ratings"):
        rating_frame(omi.ratings, ["dominant"])


# -- training tables from a load_omi-shaped Bunch --------------------------------------------------
def _tiny_dataset() -> Bunch:
    """Three images, two attributes; image c has a single 'smart' rating."""
    ratings = pd.DataFrame(
        {
            "image": ["a", "a", "a", "b", "b", "c", "a", "b", "b", "c", "c"],
            "attribute": ["smart"] * 6 + ["cute"] * 5,
            "rating": [10, 20, 30, 80, 90, 55, 40, 60, 70, 5, 95],
        }
    )
    means = pd.DataFrame({"image": ["a", "b", "c"], "smart": [20.0, 85.0, 55.0], "cute": [40.0, 65.0, 50.0]})
    images = pd.DataFrame({"stimulus": [1, 2, 3], "image": ["a", "b", "c"]})
    return Bunch(images=images, ratings=ratings, means=means, attributes=["smart", "cute"])


def test_mean_standard_errors_by_hand():
    se = mean_standard_errors(_tiny_dataset())
    assert se.shape == (3, 2)
    assert se[0, 0] == pytest.approx(np.std([10, 20, 30], ddof=1) / np.sqrt(3))
    assert se[1, 1] == pytest.approx(np.std([60, 70], ddof=1) / np.sqrt(2))
    assert np.isnan(se[2, 0])  # one rating: no spread to estimate
    assert np.isnan(se[0, 1])


def test_ratings_with_face_index_and_subset_faces():
    data = _tiny_dataset()
    indexed = ratings_with_face_index(data)
    expected = data.means["image"].tolist()
    assert [expected[f] for f in indexed["face"]] == indexed["image"].tolist()
    assert "face" not in data.ratings.columns  # the input is left alone
    small = subset_faces(data, 2)
    assert small.means["image"].tolist() == ["a", "b"]
    assert set(small.ratings["image"]) == {"a", "b"} and set(small.images["image"]) == {"a", "b"}
    assert len(data.means) == 3 and small.attributes == data.attributes


def test_soft_consensus_pairs_soft_labels_formula():
    rng = np.random.RandomState(0)
    means = pd.DataFrame({"image": [f"i{k}" for k in range(12)], "x": rng.uniform(0, 100, 12)})
    se = rng.uniform(1, 20, size=(12, 1))
    pairs = soft_consensus_pairs(means, ["x"], n_pairs=30, standard_errors=se, random_state=0)
    assert len(pairs) == 30 and not pairs.duplicated(["image_a", "image_b"]).any()
    row = {name: k for k, name in enumerate(means["image"])}
    a, b = pairs["image_a"].map(row).to_numpy(), pairs["image_b"].map(row).to_numpy()
    m = means["x"].to_numpy()
    expected = norm.cdf((m[a] - m[b]) / np.sqrt(se[a, 0] ** 2 + se[b, 0] ** 2))
    np.testing.assert_allclose(pairs["x"].to_numpy(), expected)
    assert 0 < pairs["x"].min() < 0.5 < pairs["x"].max() < 1  # soft, in both directions


def test_soft_consensus_pairs_hard_labels_zero_spread_and_ties():
    means = pd.DataFrame(
        {"image": ["a", "b", "c", "d"], "x": [10.0, 50.0, 50.0, 90.0], "y": [1.0, 2.0, 3.0, 3.0]}
    )
    hard = soft_consensus_pairs(means, ["x", "y"], n_pairs=100, random_state=0)
    assert len(hard) == 6  # capped at every distinct pair; none tied on both attributes
    value = dict(zip(means["image"], means["x"]))
    for _, pair in hard.iterrows():
        diff = value[pair["image_a"]] - value[pair["image_b"]]
        assert np.isnan(pair["x"]) if diff == 0 else pair["x"] == float(diff > 0)
    zero = soft_consensus_pairs(
        means, ["x", "y"], n_pairs=100, standard_errors=np.zeros((4, 2)), random_state=0
    )
    pd.testing.assert_frame_equal(zero, hard)  # zero spread keeps the hard label, ties stay missing


def test_sample_rating_rows_shape_and_classes():
    data = _tiny_dataset()
    ratings = ratings_with_face_index(data)
    faces = np.array([0, 1, 2])
    rows, classes = sample_rating_rows(ratings, faces, ["smart", "cute"], per_face=2, random_state=0)
    # per image: max over attributes of min(per_face, its ratings) rows -> a 2, b 2, c 2
    assert classes.shape == (6, 2) and rows.shape == (6,)
    assert np.bincount(rows).tolist() == [2, 2, 2]
    allowed = {
        (f, attr): set(
            to_rating_classes(
                ratings.loc[(ratings["face"] == f) & (ratings["attribute"] == attr), "rating"].to_numpy(
                    np.float64
                )
            )
        )
        for f in faces
        for attr in ("smart", "cute")
    }
    for r, row in zip(rows, classes):
        for k, attr in enumerate(("smart", "cute")):
            assert np.isnan(row[k]) or row[k] in allowed[(faces[r], attr)]
    # image c has one smart rating: exactly one of its rows has it
    assert np.isnan(classes[rows == 2, 0]).sum() == 1
    # all ratings of a face are used when fewer than per_face; none is drawn twice
    rows_all, classes_all = sample_rating_rows(ratings, faces, ["smart"], per_face=10, random_state=0)
    assert len(rows_all) == 6
    assert sorted(classes_all[:, 0].tolist()) == [1, 1, 2, 3, 4, 4]  # smart: 10 20 30 80 90 55
    # a subset of positions maps rows back into that subset
    sub_rows, _ = sample_rating_rows(ratings, np.array([2, 0]), ["smart"], per_face=5, random_state=0)
    assert sorted(np.bincount(sub_rows).tolist()) == [1, 3]
    again = sample_rating_rows(ratings, faces, ["smart", "cute"], per_face=2, random_state=0)
    np.testing.assert_array_equal(again[1], classes)
