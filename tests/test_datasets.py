"""The embedded OMI data and the helpers deriving rating classes and comparisons."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skpercept.datasets import (
    consensus_pairs,
    load_omi,
    omi_attributes,
    rating_frame,
    sample_comparisons,
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
