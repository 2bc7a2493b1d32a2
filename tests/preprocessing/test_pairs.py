"""PairFeatures and swap_halves: the [left item ‖ context | right item ‖ context] contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.personal._users import UserEncoder
from skpercept.preprocessing._pairs import PairFeatures, swap_halves

TABLE = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0], "d": [1.0, 1.0, 1.0]}


def lookup(items):
    return np.array([TABLE[i] for i in items])


class RecordingLookup(TransformerMixin, BaseEstimator):
    """Item transformer with feature names that records what it was given."""

    def fit(self, X, y=None):
        self.fitted_on_ = list(X)
        return self

    def transform(self, X):
        self.last_transformed_ = list(X)
        return lookup(X)

    def get_feature_names_out(self, input_features=None):
        return np.array(["e0", "e1", "e2"], dtype=object)


PAIRS = pd.DataFrame(
    {
        "image_a": ["a", "b", "a", "c"],
        "image_b": ["b", "c", "c", "a"],
        "user_id": ["u1", "u2", "u1", "u3"],
    }
)


def make_pf(**kwargs):
    return PairFeatures(item_transformer=FunctionTransformer(lookup), **kwargs)


def test_layout_without_context():
    X = make_pf().fit_transform(PAIRS)
    assert X.shape == (4, 6)
    np.testing.assert_array_equal(X[:, :3], lookup(PAIRS["image_a"]))
    np.testing.assert_array_equal(X[:, 3:], lookup(PAIRS["image_b"]))


def test_layout_with_user_context_in_both_halves():
    pf = make_pf(context_transformer=UserEncoder())
    X = pf.fit_transform(PAIRS)
    assert (pf.n_item_features_, pf.n_context_features_, pf.n_half_features_) == (3, 3, 6)
    users = UserEncoder().fit_transform(PAIRS[["user_id"]])
    np.testing.assert_array_equal(X[:, :6], np.hstack([lookup(PAIRS["image_a"]), users]))
    np.testing.assert_array_equal(X[:, 6:], np.hstack([lookup(PAIRS["image_b"]), users]))
    assert X.dtype == np.float64


def test_one_clone_fitted_on_the_distinct_items_of_both_columns():
    item = RecordingLookup()
    pf = PairFeatures(item_transformer=item).fit(PAIRS)
    assert not hasattr(item, "fitted_on_")  # the parameter itself stays unfitted
    assert sorted(pf.item_transformer_.fitted_on_) == ["a", "b", "c"]
    pf.transform(PAIRS)
    # each distinct image is transformed once, however many pairs it appears in
    assert sorted(pf.item_transformer_.last_transformed_) == ["a", "b", "c"]


def test_feature_names_and_pandas_output():
    pf = PairFeatures(item_transformer=RecordingLookup(), context_transformer=UserEncoder())
    pf.set_output(transform="pandas")
    out = pf.fit_transform(PAIRS)
    assert isinstance(out, pd.DataFrame)
    names = out.columns.tolist()
    assert names[:4] == ["left__e0", "left__e1", "left__e2", "left__user_id_u1"]
    assert names[6:10] == ["right__e0", "right__e1", "right__e2", "right__user_id_u1"]
    # a transformer without feature names gets positional ones
    plain = make_pf().fit(PAIRS).get_feature_names_out().tolist()
    assert plain == [
        "left__item0",
        "left__item1",
        "left__item2",
        "right__item0",
        "right__item1",
        "right__item2",
    ]


def test_sparse_context_becomes_dense_and_unknown_user_is_zero():
    pf = make_pf(context_transformer=UserEncoder(sparse_output=True)).fit(PAIRS)
    new = pd.DataFrame({"image_a": ["d"], "image_b": ["a"], "user_id": ["zoe"]})
    X = pf.transform(new)
    assert isinstance(X, np.ndarray)
    np.testing.assert_array_equal(X, [[1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]])


def test_passthrough_context_and_integer_columns_on_arrays():
    arr = np.array([["a", "b", 0.5], ["c", "a", 2.0]], dtype=object)
    pf = make_pf(item_columns=(0, 1), context_transformer="passthrough", context_columns=(2,))
    X = pf.fit_transform(arr)
    np.testing.assert_array_equal(X[:, 3], [0.5, 2.0])
    np.testing.assert_array_equal(X[:, 7], [0.5, 2.0])


def test_swap_of_features_equals_features_of_swapped_pairs():
    pf = make_pf(context_transformer=UserEncoder()).fit(PAIRS)
    swapped = PAIRS.rename(columns={"image_a": "image_b", "image_b": "image_a"})[PAIRS.columns]
    np.testing.assert_array_equal(swap_halves(pf.transform(PAIRS)), pf.transform(swapped))


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"item_columns \['image_b'\] not found"):
        make_pf().fit(PAIRS.drop(columns="image_b"))
    with pytest.raises(ValueError, match=r"context_columns \['user_id'\] not found"):
        make_pf(context_transformer=UserEncoder()).fit(PAIRS.drop(columns="user_id"))


def test_bad_configuration_and_input():
    with pytest.raises(ValueError, match="exactly two"):
        make_pf(item_columns=("image_a",)).fit(PAIRS)
    with pytest.raises(ValueError, match="context_columns is empty"):
        make_pf(context_transformer=UserEncoder(), context_columns=None).fit(PAIRS)
    with pytest.raises(ValueError, match="The 'context_transformer' parameter of PairFeatures must be"):
        make_pf(context_transformer="drop").fit_transform(PAIRS)
    with pytest.raises(TypeError, match="The 'item_transformer' parameter of PairFeatures must be"):
        PairFeatures(item_transformer=len).fit(PAIRS)
    bad = PAIRS.copy()
    bad.loc[2, "image_b"] = None
    with pytest.raises(ValueError, match=r"row 2 \(index label 2\), column 'image_b'"):
        make_pf().fit(bad)
    with pytest.raises(ValueError, match="0 pairs|0 sample"):
        make_pf().fit(PAIRS.iloc[:0])
    with pytest.raises(ValueError, match="Series"):
        make_pf().fit(PAIRS["image_a"])
    wrong_rows = FunctionTransformer(lambda s: np.zeros((1, 2)))
    with pytest.raises(ValueError, match="one row per item"):
        PairFeatures(item_transformer=wrong_rows).fit(PAIRS)


def test_nan_user_is_reported_through_the_context_transformer():
    bad = PAIRS.copy()
    bad.loc[1, "user_id"] = np.nan
    with pytest.raises(ValueError, match="row 1"):
        make_pf(context_transformer=UserEncoder()).fit(bad)


def test_pipeline_and_pickle_round_trip():
    y = np.array([1, 0, 1, 0])
    pipe = make_pipeline(make_pf(context_transformer=UserEncoder()), LogisticRegression())
    pipe.fit(PAIRS, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict_proba(PAIRS), pipe.predict_proba(PAIRS))


@pytest.mark.parametrize(
    "kind",
    ["numpy", "dataframe", "sparse", "torch"],
)
def test_swap_halves_on_every_container(kind):
    base = np.arange(12.0).reshape(2, 6)
    expected = base[:, [3, 4, 5, 0, 1, 2]]
    X = {
        "numpy": base,
        "dataframe": pd.DataFrame(base, columns=list("abcdef")),
        "sparse": sp.csr_matrix(base),
        "torch": torch.as_tensor(base),
    }[kind]
    out = swap_halves(X)
    dense = {
        "numpy": lambda o: o,
        "dataframe": lambda o: o.to_numpy(),
        "sparse": lambda o: o.toarray(),
        "torch": lambda o: o.numpy(),
    }[kind](out)
    np.testing.assert_array_equal(dense, expected)
    assert type(out) is type(X) or (kind == "sparse" and sp.issparse(out))
    np.testing.assert_array_equal(np.asarray(swap_halves(base[None][0])), expected)


def test_swap_halves_twice_is_identity_and_odd_width_fails():
    X = np.random.default_rng(0).normal(size=(5, 8))
    np.testing.assert_array_equal(swap_halves(swap_halves(X)), X)
    with pytest.raises(ValueError, match="even number"):
        swap_halves(np.zeros((2, 5)))


def test_grid_search_over_the_context_encoder():
    from sklearn.model_selection import GridSearchCV

    from skpercept.metrics import pairwise_accuracy_scorer

    pairs = pd.concat([PAIRS] * 6, ignore_index=True)
    y = np.tile([1, 0, 1, 0], 6)
    pipe = make_pipeline(make_pf(context_transformer=UserEncoder()), LogisticRegression())
    grid = {"pairfeatures__context_transformer__min_count": [1, 7]}
    search = GridSearchCV(pipe, grid, cv=3, scoring=pairwise_accuracy_scorer).fit(pairs, y)
    assert search.cv_results_["mean_test_score"].shape == (2,)
