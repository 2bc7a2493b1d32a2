"""polars and pyarrow tables wherever pandas is accepted: the same numbers, names and errors.

Inputs are converted to pandas once, at the boundary (``skpercept._dataframes``); outputs
follow scikit-learn's ``set_output``. Each test compares a polars (or pyarrow) run with the
same run on pandas, so a difference in dtype handling, column names or row order shows up as
a difference in numbers or messages.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from skpercept._dataframes import as_pandas, as_pandas_frame
from skpercept.datasets import consensus_pairs
from skpercept.embed import CLIPEmbedder, TimmEmbedder
from skpercept.heads import PairwiseRanker
from skpercept.metrics import noise_ceiling
from skpercept.model_selection import ImageDisjointSplit, UserDisjointSplit, image_disjoint_train_test_split
from skpercept.personal import UserEncoder, add_users
from skpercept.preprocessing import PairFeatures
from skpercept.raters import agreement_matrix, filter_raters
from tests._images import TINY_TIMM, photo, register_tiny_clip

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")  # polars converts to pandas through Arrow

RANKER = dict(hidden_layer_sizes=(8,), max_epochs=3, early_stopping=False, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("images")
    out = []
    for i in range(6):
        path = folder / f"img{i}.png"
        Image.fromarray(photo(seed=i, size=(32, 32))).save(path)
        out.append(str(path))
    return out


@pytest.fixture(scope="module")
def pairs(paths) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    a, b = rng.randint(0, len(paths), size=(2, 40))
    b = np.where(a == b, (b + 1) % len(paths), b)
    frame = pd.DataFrame(
        {
            "image_a": [paths[i] for i in a],
            "image_b": [paths[i] for i in b],
            "user_id": rng.choice(["ann", "bob", "cy"], 40),
        }
    )
    return frame, (a < b).astype(float)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    return register_tiny_clip(tmp_path_factory.mktemp("clip_cfg"))


def _timm() -> TimmEmbedder:
    return TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", num_workers=0)


@pytest.fixture(params=["timm", "clip"])
def embedder(request, tiny_clip):
    if request.param == "timm":
        return _timm()
    return CLIPEmbedder(model_name=tiny_clip, pretrained=None, device="cpu", num_workers=0)


def _pair_pipeline(context: bool) -> Pipeline:
    features = PairFeatures(item_transformer=_timm(), context_transformer=UserEncoder() if context else None)
    head = PairwiseRanker(**RANKER, user_features="auto" if context else None, user_alpha=1.0)
    return Pipeline([("pairs", features), ("head", head)])


# -- the embedders ---------------------------------------------------------------------------------
def test_embedder_reads_polars_and_pyarrow_like_pandas(embedder, pairs):
    frame = pairs[0][["image_a", "image_b"]]
    fitted = clone(embedder).fit(frame)
    expected = fitted.transform(frame)
    for table in (pl.from_pandas(frame), pa.Table.from_pandas(frame, preserve_index=False)):
        np.testing.assert_array_equal(fitted.transform(table), expected)
        refit = clone(embedder).fit(table)
        np.testing.assert_array_equal(refit.transform(table), expected)
        np.testing.assert_array_equal(refit.feature_names_in_, fitted.feature_names_in_)
        np.testing.assert_array_equal(refit.get_feature_names_out(), fitted.get_feature_names_out())


def test_embedder_reads_a_polars_series_like_pandas(embedder, pairs):
    column = pairs[0]["image_a"]
    expected = clone(embedder).fit_transform(column)
    got = clone(embedder).fit(pl.from_pandas(column)).transform(pl.Series("image_a", column.tolist()))
    np.testing.assert_array_equal(got, expected)
    # an unnamed polars Series (named '' by polars) names no output column, as in pandas
    unnamed = clone(embedder).fit(pl.Series(column.tolist()))
    assert not hasattr(unnamed, "feature_names_in_")
    assert unnamed.get_feature_names_out()[0] == f"{type(embedder).__name__.lower()}0"


def test_embedder_set_output_polars(embedder, pairs):
    frame = pairs[0][["image_a", "image_b"]]
    expected = clone(embedder).fit_transform(frame)
    model = clone(embedder).set_output(transform="polars").fit(pl.from_pandas(frame))
    out = model.transform(pl.from_pandas(frame))
    assert isinstance(out, pl.DataFrame)
    assert out.columns == model.get_feature_names_out().tolist()
    np.testing.assert_array_equal(out.to_numpy(), expected)


# -- PairFeatures, UserEncoder and the pair pipeline ---------------------------------------------
def test_pair_features_polars_like_pandas(pairs):
    frame = pairs[0]
    model = PairFeatures(item_transformer=_timm(), context_transformer=UserEncoder())
    expected = clone(model).fit_transform(frame)
    fitted = clone(model).fit(pl.from_pandas(frame))
    np.testing.assert_array_equal(fitted.transform(pl.from_pandas(frame)), expected)
    np.testing.assert_array_equal(fitted.transform(frame), expected)
    np.testing.assert_array_equal(
        fitted.transform(pa.Table.from_pandas(frame, preserve_index=False)), expected
    )
    np.testing.assert_array_equal(fitted.feature_names_in_, ["image_a", "image_b", "user_id"])


@pytest.mark.parametrize("output", ["polars", "pandas"])
def test_pair_features_set_output(pairs, output):
    frame = pairs[0]
    model = PairFeatures(item_transformer=_timm(), context_transformer=UserEncoder())
    expected = clone(model).fit_transform(frame)
    model = clone(model).set_output(transform=output)
    out = model.fit_transform(pl.from_pandas(frame))
    kind = pl.DataFrame if output == "polars" else pd.DataFrame
    assert isinstance(out, kind)
    assert list(out.columns) == model.get_feature_names_out().tolist()
    assert "left__user_id_ann" in out.columns and "right__user_id_cy" in out.columns
    np.testing.assert_array_equal(out.to_numpy(), expected)
    assert isinstance(model.transform(pl.from_pandas(frame)), kind)


def test_user_encoder_polars_like_pandas(pairs):
    ids = pairs[0]["user_id"]
    expected = UserEncoder().fit(ids)
    for column in (pl.from_pandas(ids), pl.from_pandas(ids.to_frame())):
        encoder = UserEncoder().fit(column)
        np.testing.assert_array_equal(encoder.transform(column), expected.transform(ids))
        np.testing.assert_array_equal(encoder.get_feature_names_out(), expected.get_feature_names_out())
    out = UserEncoder().set_output(transform="polars").fit(pl.from_pandas(ids)).transform(pl.from_pandas(ids))
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["user_id_ann", "user_id_bob", "user_id_cy"]
    np.testing.assert_array_equal(out.to_numpy(), expected.transform(ids))


@pytest.mark.parametrize("context", [False, True], ids=["items", "items+user"])
def test_pair_pipeline_polars_like_pandas(pairs, context):
    frame, y = pairs
    if not context:
        frame = frame[["image_a", "image_b"]]
    expected = _pair_pipeline(context).fit(frame, y).predict_proba(frame)
    model = _pair_pipeline(context).fit(pl.from_pandas(frame), pl.Series("y", y))
    np.testing.assert_array_equal(model.predict_proba(pl.from_pandas(frame)), expected)
    np.testing.assert_array_equal(
        model.predict_proba(pa.Table.from_pandas(frame, preserve_index=False)), expected
    )
    # polars between the steps too: the head reads the pair features with their names
    polars_steps = _pair_pipeline(context).set_output(transform="polars").fit(pl.from_pandas(frame), y)
    np.testing.assert_allclose(polars_steps.predict_proba(pl.from_pandas(frame)), expected, rtol=1e-6)


def test_add_users_from_polars(pairs):
    frame, y = pairs
    new = frame.iloc[:8].assign(user_id="dee")
    expected = add_users(_pair_pipeline(True).fit(frame, y), new, y[:8]).predict_proba(new)
    model = add_users(_pair_pipeline(True).fit(frame, y), pl.from_pandas(new), pl.Series(y[:8]))
    np.testing.assert_array_equal(model.predict_proba(pl.from_pandas(new)), expected)
    assert model["head"].n_user_features_ == 4


# -- the same errors ------------------------------------------------------------------------------
def _message(fn, X) -> str:
    with pytest.raises(ValueError) as info:
        fn(X)
    return str(info.value)


def test_missing_columns_give_the_pandas_errors(pairs):
    frame = pairs[0]
    model = PairFeatures(item_transformer=_timm(), context_transformer=UserEncoder())
    for columns in (["image_a", "user_id"], ["image_a", "image_b"]):
        part = frame[columns]
        expected = _message(clone(model).fit, part)
        assert "not found in X" in expected
        assert _message(clone(model).fit, pl.from_pandas(part)) == expected
        assert _message(clone(model).fit, pa.Table.from_pandas(part, preserve_index=False)) == expected
    fitted = _timm().fit(frame[["image_a", "image_b"]])
    expected = _message(fitted.transform, frame[["image_a"]])
    assert _message(fitted.transform, pl.from_pandas(frame[["image_a"]])) == expected
    split = UserDisjointSplit(n_splits=2)
    expected = _message(lambda X: next(split.split(X)), frame[["image_a"]])
    assert _message(lambda X: next(split.split(X)), pl.from_pandas(frame[["image_a"]])) == expected


# -- the other entry points that read tables by column name ---------------------------------------
def test_table_functions_polars_like_pandas(pairs):
    frame, y = pairs
    polars = pl.from_pandas(frame)
    split = ImageDisjointSplit(n_splits=2, random_state=0)
    for (train_a, test_a), (train_b, test_b) in zip(split.split(frame), split.split(polars)):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)
    users = UserDisjointSplit(n_splits=3, random_state=0)
    assert [t.tolist() for _, t in users.split(frame)] == [t.tolist() for _, t in users.split(polars)]
    train, test, y_train, _ = image_disjoint_train_test_split(
        polars, pl.Series(y), test_size=0.5, random_state=0
    )
    assert isinstance(train, pl.DataFrame) and isinstance(y_train, pl.Series)  # as the input came
    expected = image_disjoint_train_test_split(frame, y, test_size=0.5, random_state=0)
    np.testing.assert_array_equal(train.to_numpy(), expected[0].to_numpy())
    np.testing.assert_array_equal(test.to_numpy(), expected[1].to_numpy())

    judged = frame.assign(trust=y)
    pd.testing.assert_frame_equal(
        filter_raters(comparisons=pl.from_pandas(judged)), filter_raters(comparisons=judged)
    )
    pd.testing.assert_frame_equal(
        agreement_matrix(pl.from_pandas(judged)).agreement, agreement_matrix(judged).agreement
    )
    ratings = pd.DataFrame({"image": np.repeat(np.arange(20), 5), "trust": np.arange(100.0) % 7})
    pd.testing.assert_frame_equal(
        noise_ceiling(pl.from_pandas(ratings), random_state=0), noise_ceiling(ratings, random_state=0)
    )
    means = ratings.groupby("image", as_index=False)["trust"].mean()
    pd.testing.assert_frame_equal(
        consensus_pairs(pa.Table.from_pandas(means, preserve_index=False), random_state=0),
        consensus_pairs(means, random_state=0),
    )


# -- the conversion itself --------------------------------------------------------------------------
def test_as_pandas_keeps_names_and_dtypes():
    table = pl.DataFrame(
        {"image": ["a", "b"], "n": [1, None], "kind": pl.Series(["x", "y"], dtype=pl.Categorical)}
    )
    frame = as_pandas(table)
    assert list(frame.columns) == ["image", "n", "kind"]
    assert frame["n"].isna().tolist() == [False, True]
    assert isinstance(frame["kind"].dtype, pd.CategoricalDtype)
    assert as_pandas(pl.Series("user_id", [1, 2])).name == "user_id"
    assert as_pandas(pa.chunked_array([[1, 2]])).tolist() == [1, 2]
    plain = pd.DataFrame({"a": [1]})
    assert as_pandas(plain) is plain and as_pandas([1, 2]) == [1, 2]
    with pytest.raises(TypeError, match="ratings must be a DataFrame"):
        as_pandas_frame([1, 2], "ratings")


class _ArrowOnly:
    """A table that only speaks the Arrow PyCapsule interface (as some libraries do)."""

    def __init__(self, table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


class _NeedsPyarrow(_ArrowOnly):
    """A table whose own ``to_pandas`` needs pyarrow (as polars' does)."""

    def to_pandas(self):
        raise ModuleNotFoundError("No module named 'pyarrow'")


def test_arrow_only_tables_and_a_missing_pyarrow(monkeypatch):
    table = pa.table({"image": ["a", "b"], "score": [1.0, 2.0]})
    pd.testing.assert_frame_equal(as_pandas(_ArrowOnly(table)), table.to_pandas())
    with pytest.raises(ImportError, match=r"_NeedsPyarrow needs pyarrow.*pip install pyarrow"):
        as_pandas(_NeedsPyarrow(table))
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(ImportError, match="pip install pyarrow"):
        as_pandas(_ArrowOnly(table))
