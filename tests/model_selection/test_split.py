"""Leak-free splitters: guarantees over many seeds, and use inside scikit-learn."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.model_selection import (
    ImageDisjointSplit,
    JudgmentGroupedSplit,
    UserDisjointSplit,
    image_disjoint_train_test_split,
)


def _random_pairs(seed: int, n_images: int = 30, n_pairs: int = 300) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    a = rng.randint(0, n_images, n_pairs)
    b = (a + rng.randint(1, n_images, n_pairs)) % n_images
    return pd.DataFrame(
        {
            "image_a": [f"img{i}.jpg" for i in a],
            "image_b": [f"img{i}.jpg" for i in b],
            "user_id": rng.randint(0, 7, n_pairs),
        }
    )


def _images(frame: pd.DataFrame, rows: np.ndarray) -> set:
    return set(frame.iloc[rows][["image_a", "image_b"]].to_numpy().ravel())


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_image_disjoint_guarantees_over_seeds(n_splits):
    for seed in range(15):
        pairs = _random_pairs(seed)
        cv = ImageDisjointSplit(n_splits, random_state=seed)
        folds = list(cv.split(pairs))
        assert len(folds) == cv.get_n_splits() == n_splits
        tested = np.zeros(len(pairs), dtype=int)
        test_image_sets = []
        for (train, test), n_dropped in zip(folds, cv.n_dropped_, strict=True):
            assert len(test) > 0 and len(train) > 0
            assert not _images(pairs, train) & _images(pairs, test)
            assert len(np.intersect1d(train, test)) == 0
            assert len(train) + len(test) + n_dropped == len(pairs)
            tested[test] += 1
            test_image_sets.append(_images(pairs, test))
        assert tested.max() == 1  # a pair is tested at most once
        for s, t in itertools.combinations(test_image_sets, 2):
            assert not s & t  # test images of different folds are disjoint
        report = cv.split_report(pairs)
        assert report.n_dropped.tolist() == cv.n_dropped_
        assert report.n_test.tolist() == [len(test) for _, test in folds]


def test_image_disjoint_reproducible_and_shuffle():
    pairs = _random_pairs(0)
    first = [t.tolist() for _, t in ImageDisjointSplit(3, random_state=1).split(pairs)]
    again = [t.tolist() for _, t in ImageDisjointSplit(3, random_state=1).split(pairs)]
    other = [t.tolist() for _, t in ImageDisjointSplit(3, random_state=2).split(pairs)]
    assert first == again and first != other


def test_image_disjoint_on_rating_frames_is_grouped_kfold():
    rng = np.random.RandomState(0)
    ratings = pd.DataFrame({"image": rng.randint(0, 20, 200), "smart": rng.randint(1, 5, 200)})
    cv = ImageDisjointSplit(4, random_state=0)
    tested = np.zeros(len(ratings), dtype=int)
    for train, test in cv.split(ratings):
        assert not set(ratings.image.iloc[train]) & set(ratings.image.iloc[test])
        assert len(train) + len(test) == len(ratings)
        tested[test] += 1
    assert (tested == 1).all() and cv.n_dropped_ == [0, 0, 0, 0]


def test_image_disjoint_groups_argument_and_numpy_x():
    pairs = _random_pairs(3)
    items = pairs[["image_a", "image_b"]].to_numpy()
    X = np.zeros((len(pairs), 4))
    by_column = [t.tolist() for _, t in ImageDisjointSplit(3, random_state=0).split(pairs)]
    by_groups = [t.tolist() for _, t in ImageDisjointSplit(3, random_state=0).split(X, groups=items)]
    assert by_column == by_groups
    custom = pairs.rename(columns={"image_a": "left", "image_b": "right"})
    by_names = ImageDisjointSplit(3, item_columns=["left", "right"], random_state=0).split(custom)
    assert [t.tolist() for _, t in by_names] == by_column


@pytest.mark.parametrize(
    "X, cv, match",
    [
        (pd.DataFrame({"a": [1, 2]}), ImageDisjointSplit(2), "Cannot find item columns"),
        (np.zeros((4, 2)), ImageDisjointSplit(2), "DataFrame"),
        (pd.DataFrame({"image": [1, 2, 3]}), ImageDisjointSplit(5), "more than the 3"),
        (pd.DataFrame({"image": [1, None, 3]}), ImageDisjointSplit(2), "Missing item ids"),
        (pd.DataFrame({"image": [1, 2]}), ImageDisjointSplit(1), "n_splits"),
        (
            pd.DataFrame({"image_a": [1, 3], "image_b": [2, 4]}),
            ImageDisjointSplit(4, random_state=0),
            "no row whose images",
        ),
        (pd.DataFrame({"image": [1, 2]}), UserDisjointSplit(2), "'user_id' column"),
    ],
)
def test_splitter_errors(X, cv, match):
    with pytest.raises(ValueError, match=match):
        list(cv.split(X))


def test_user_disjoint_split():
    for seed in range(10):
        pairs = _random_pairs(seed)
        tested = np.zeros(len(pairs), dtype=int)
        for train, test in UserDisjointSplit(3, random_state=seed).split(pairs):
            assert not set(pairs.user_id.iloc[train]) & set(pairs.user_id.iloc[test])
            tested[test] += 1
        assert (tested == 1).all()
        shuffled = UserDisjointSplit(4, test_size=0.3, random_state=seed)
        for train, test in shuffled.split(pairs):
            assert not set(pairs.user_id.iloc[train]) & set(pairs.user_id.iloc[test])
        assert shuffled.get_n_splits() == 4
    groups = pairs.user_id.to_numpy()
    via_groups = [
        t.tolist()
        for _, t in UserDisjointSplit(3, random_state=0).split(np.zeros((len(pairs), 1)), groups=groups)
    ]
    via_column = [t.tolist() for _, t in UserDisjointSplit(3, random_state=0).split(pairs)]
    assert via_groups == via_column


def test_judgment_grouped_split_keeps_attributes_together():
    long = pd.DataFrame(
        {
            "judgment_id": np.repeat(np.arange(40), 3),
            "attribute": np.tile(["attractive", "smart", "trustworthy"], 40),
            "rating": np.random.RandomState(0).randint(1, 5, 120),
        }
    )
    for seed in range(10):
        tested = np.zeros(len(long), dtype=int)
        for train, test in JudgmentGroupedSplit(5, random_state=seed).split(long):
            assert not set(long.judgment_id.iloc[train]) & set(long.judgment_id.iloc[test])
            tested[test] += 1
        assert (tested == 1).all()
    renamed = long.rename(columns={"judgment_id": "_id"})
    assert len(list(JudgmentGroupedSplit(2, judgment_column="_id").split(renamed))) == 2


def test_image_disjoint_train_test_split():
    for seed in range(10):
        pairs = _random_pairs(seed)
        y = np.arange(len(pairs))
        p_train, p_test, y_train, y_test = image_disjoint_train_test_split(
            pairs, y, test_size=0.3, random_state=seed
        )
        train_images = _images(p_train, np.arange(len(p_train)))
        assert not train_images & _images(p_test, np.arange(len(p_test)))
        np.testing.assert_array_equal(p_train.index.to_numpy(), y_train)
        np.testing.assert_array_equal(p_test.index.to_numpy(), y_test)
        assert len(p_test) > 0 and len(p_train) > len(p_test)
    with pytest.raises(ValueError, match="test_size"):
        image_disjoint_train_test_split(pairs, test_size=1.5)
    with pytest.raises(ValueError, match="rows"):
        image_disjoint_train_test_split(pairs, y[:-1])


def _pair_problem(seed: int = 0, n_images: int = 40):
    """Pairs of images with a hidden per-image score; y = 1 when image_a scores higher."""
    rng = np.random.RandomState(seed)
    names = [f"img{i}" for i in range(n_images)]
    features = pd.DataFrame(rng.normal(size=(n_images, 3)), index=names)
    score = features.to_numpy() @ np.array([2.0, -1.0, 0.5])
    a, b = np.triu_indices(n_images, 1)
    swap = rng.rand(a.size) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    pairs = pd.DataFrame({"image_a": features.index[a], "image_b": features.index[b]})
    return pairs, (score[a] > score[b]).astype(int), features


def test_splitters_in_gridsearch_and_cross_val_score():
    pairs, y, features = _pair_problem()

    def difference(frame: pd.DataFrame) -> np.ndarray:
        left, right = features.loc[frame["image_a"]], features.loc[frame["image_b"]]
        return left.to_numpy() - right.to_numpy()

    model = make_pipeline(
        ColumnTransformer([("diff", FunctionTransformer(difference), ["image_a", "image_b"])]),
        LogisticRegression(),
    )
    cv = ImageDisjointSplit(3, random_state=0)
    search = GridSearchCV(model, {"logisticregression__C": [0.01, 1.0]}, cv=cv).fit(pairs, y)
    assert search.best_params_ == {"logisticregression__C": 1.0}
    assert search.best_score_ > 0.9
    assert len(cv.n_dropped_) == 3 and all(n > 0 for n in cv.n_dropped_)
    pairs["user_id"] = np.arange(len(pairs)) % 9
    scores = cross_val_score(model, pairs, y, cv=UserDisjointSplit(3, random_state=0))
    assert scores.shape == (3,) and scores.min() > 0.8
    assert "ImageDisjointSplit(item_columns='auto', n_splits=3" in repr(cv)
