"""UserEncoder: one-hot users, the average person for unknown users, pooling of rare users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept.personal._users import UserEncoder

USERS = pd.Series(["ann", "bob", "ann", "cy", "ann", "bob"], name="user_id")


def test_one_hot_dense_by_default():
    enc = UserEncoder().fit(USERS)
    Xt = enc.transform(USERS)
    assert isinstance(Xt, np.ndarray) and Xt.dtype == np.float64
    np.testing.assert_array_equal(Xt.sum(axis=1), 1)
    assert enc.get_feature_names_out().tolist() == ["user_id_ann", "user_id_bob", "user_id_cy"]
    np.testing.assert_array_equal(Xt[:, 0], [1, 0, 1, 0, 1, 0])
    assert enc.feature_names_in_.tolist() == ["user_id"]


@pytest.mark.parametrize(
    "as_input",
    [
        lambda s: s,
        lambda s: s.to_frame(),
        lambda s: s.tolist(),
        lambda s: s.to_numpy(),
        lambda s: s.to_numpy().reshape(-1, 1),
    ],
    ids=["series", "frame", "list", "array1d", "array2d"],
)
def test_accepts_every_id_container(as_input):
    expected = UserEncoder().fit_transform(USERS)
    np.testing.assert_array_equal(UserEncoder().fit_transform(as_input(USERS)), expected)


def test_integer_ids():
    enc = UserEncoder().fit([3, 1, 2, 3])
    np.testing.assert_array_equal(enc.transform([3, 7]), [[0, 0, 1], [0, 0, 0]])
    assert enc.get_feature_names_out().tolist() == ["x0_1", "x0_2", "x0_3"]


def test_unknown_user_is_the_average_person():
    enc = UserEncoder().fit(USERS)
    np.testing.assert_array_equal(enc.transform(pd.Series(["zoe"], name="user_id")), [[0, 0, 0]])


def test_unknown_user_error_names_row_and_id():
    enc = UserEncoder(handle_unknown="error").fit(USERS)
    new = pd.Series(["ann", "zoe"], name="user_id", index=[10, 11])
    with pytest.raises(ValueError, match=r"Unknown user id 'zoe' at row 1 \(index label 11\)"):
        enc.transform(new)


def test_min_count_pools_rare_users_but_not_unknown_ones():
    enc = UserEncoder(min_count=2).fit(USERS)  # cy has 1 row -> other
    assert enc.get_feature_names_out().tolist() == ["user_id_ann", "user_id_bob", "user_id_other"]
    assert enc.infrequent_categories_[0].tolist() == ["cy"]
    Xt = enc.transform(pd.Series(["cy", "zoe", "bob"], name="user_id"))
    np.testing.assert_array_equal(Xt, [[0, 0, 1], [0, 0, 0], [0, 1, 0]])


def test_pooled_column_name_does_not_clash_with_a_user_called_other():
    users = pd.Series(["other", "other", "x"], name="u")
    names = UserEncoder(min_count=2).fit(users).get_feature_names_out().tolist()
    assert names == ["u_other", "u_other_pooled"]


def test_sparse_output_matches_dense():
    dense = UserEncoder(min_count=2).fit_transform(USERS)
    sparse = UserEncoder(min_count=2, sparse_output=True).fit_transform(USERS)
    assert sp.issparse(sparse)
    np.testing.assert_array_equal(sparse.toarray(), dense)


def test_pandas_output():
    enc = UserEncoder().set_output(transform="pandas").fit(USERS)
    out = enc.transform(USERS)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == ["user_id_ann", "user_id_bob", "user_id_cy"]


def test_pandas_output_needs_dense():
    enc = UserEncoder(sparse_output=True).set_output(transform="pandas")
    with pytest.raises(ValueError, match="(?i)sparse"):
        enc.fit_transform(USERS)


@pytest.mark.parametrize("missing", [np.nan, None])
def test_missing_id_error_names_the_row(missing):
    users = pd.Series(["ann", missing, "bob"], name="user_id", index=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"row 1 \(index label 'b'\), column 'user_id'"):
        UserEncoder().fit(users)
    enc = UserEncoder().fit(USERS)
    with pytest.raises(ValueError, match="row 1"):
        enc.transform(users)


def test_empty_and_bad_parameters():
    with pytest.raises(ValueError, match="0 sample"):
        UserEncoder().fit(np.array([], dtype=object))
    with pytest.raises(ValueError, match="The 'handle_unknown' parameter of UserEncoder must be a str among"):
        UserEncoder(handle_unknown="ignore").fit(USERS)
    with pytest.raises(
        ValueError, match=r"The 'min_count' parameter of UserEncoder must be an int in the range \[1, inf\)"
    ):
        UserEncoder(min_count=0).fit(USERS)


def test_wrong_number_of_columns_at_transform():
    enc = UserEncoder().fit(np.array([["a", "s1"], ["b", "s2"]], dtype=object))
    assert enc.transform(np.array([["a", "s2"]], dtype=object)).shape == (1, 4)
    with pytest.raises(ValueError, match="2 features"):
        enc.transform(np.array([["a"]], dtype=object))


def test_clone_and_column_transformer():
    enc = clone(UserEncoder(min_count=3))
    assert enc.get_params()["min_count"] == 3
    df = pd.DataFrame({"user_id": USERS, "x": np.arange(6.0)})
    ct = ColumnTransformer([("u", UserEncoder(), ["user_id"]), ("x", StandardScaler(), ["x"])])
    Xt = make_pipeline(ct).fit_transform(df)
    assert Xt.shape == (6, 4)
    assert ct.get_feature_names_out()[0] == "u__user_id_ann"
