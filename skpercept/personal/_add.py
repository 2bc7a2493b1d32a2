"""Add people to a fitted model without retraining everyone.

A head fitted with ``user_features`` (:class:`~skpercept.heads.PairwiseRanker`,
:class:`~skpercept.heads.RatingClassifier`, :class:`~skpercept.heads.RatingRegressor`,
:class:`~skpercept.heads.JointRatingRanker`) learns
a shared model plus each person's deviation from it. :func:`add_users` takes a new person's few
judgments, gives them columns of their own in the model's :class:`~skpercept.personal.UserEncoder`
(appended after the existing ones) and fits their deviations alone with the shared part frozen
(``head.fit_users``): nobody else's predictions change, and it takes a fraction of a second per
person on a CPU.

Until they are added, new people are unknown to the encoder (all-zero person columns) and get
the shared model: the cold start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from skpercept._dataframes import as_pandas
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing import PairFeatures


def add_users(model: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
    """Fit the people in ``X`` (new or known) from their judgments ``y``; the rest stays as is.

    Parameters
    ----------
    model : fitted head or Pipeline
        A head fitted with ``user_features`` (then ``X`` is its numeric input, possibly with
        new person columns appended, see ``fit_users``); or a Pipeline whose last step is such
        a head and whose first step is either a :class:`~skpercept.preprocessing.PairFeatures` with a
        :class:`~skpercept.personal.UserEncoder` as ``context_transformer`` (pair rows only: a
        JointRatingRanker's rating rows do not pass through PairFeatures), or a
        ``ColumnTransformer`` whose last output block is a UserEncoder. Steps in between must
        keep columns as they are (``'passthrough'``), since new person columns are appended.
    X : DataFrame or array-like
        What ``model.fit`` takes: for a Pipeline, the rows with raw user ids; every row must
        name one person.
    y : array-like
        Their labels, as for ``fit``.
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    model
        The same object, updated in place: ids not seen before get new encoder columns, the
        widths and feature names downstream follow, and the people in ``X`` get their
        deviations re-estimated from these rows (pass all of a person's judgments).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.pipeline import Pipeline
    >>> from skpercept.personal import add_users
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.personal import UserEncoder
    >>> rng = np.random.RandomState(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "user_id": rng.choice(["a", "b"], 200)})
    >>> y = df["x"] * np.where(df["user_id"] == "a", 1.0, -1.0)
    >>> features = ColumnTransformer([("item", "passthrough", ["x"]), ("user", UserEncoder(), ["user_id"])])
    >>> head = RatingRegressor(hidden_layer_sizes=(), user_features=[1, 2], max_epochs=50,
    ...                        early_stopping=False, device="cpu", random_state=0)
    >>> model = Pipeline([("features", features), ("head", head)]).fit(df, y)
    >>> new = pd.DataFrame({"x": [-1.0, 1.0, 2.0], "user_id": "c"})
    >>> model = add_users(model, new, -new["x"])  # c likes what b likes
    >>> model["head"].n_user_features_
    3
    """
    X = as_pandas(X)  # polars / pyarrow: the id columns are read by name, as from pandas
    if not isinstance(model, Pipeline):
        if not hasattr(model, "fit_users"):
            raise TypeError(
                f"add_users needs a fitted head with user_features or a Pipeline; got {type(model).__name__}."
            )
        return model.fit_users(X, y, sample_weight=sample_weight)
    head = model.steps[-1][1]
    if not hasattr(head, "fit_users"):
        raise TypeError(f"The Pipeline's last step ({type(head).__name__}) has no fit_users.")
    for name, step in model.steps[1:-1]:
        if step not in (None, "passthrough"):
            raise ValueError(
                f"add_users appends person columns, which step {name!r} ({type(step).__name__}) "
                "would not pass on; put the user encoding right before the head."
            )
    _extend_encoder(model.steps[0][1], X)
    Xt = model[:-1].transform(X)
    head.fit_users(Xt, y, sample_weight=sample_weight)
    return model


def _extend_encoder(first: Any, X: Any) -> int:
    """Add the unseen ids of ``X`` to the first step's UserEncoder; the number of new columns."""

    if isinstance(first, PairFeatures):
        encoder = first.context_transformer_
        if not isinstance(encoder, UserEncoder):
            raise ValueError(
                "add_users needs the PairFeatures' context_transformer to be a UserEncoder; it is "
                f"{type(encoder).__name__ if encoder is not None else None}."
            )
        new = _add(encoder, _context(X, first.context_columns))
        first.n_context_features_ += new
        first.n_half_features_ += new
        return new
    if isinstance(first, ColumnTransformer):
        for name, transformer, columns in first.transformers_:
            if isinstance(transformer, UserEncoder):
                block = first.output_indices_[name]
                width = max(s.stop for s in first.output_indices_.values())
                if block.stop != width:
                    raise ValueError(
                        f"add_users appends person columns at the end of each row, but the "
                        f"UserEncoder {name!r} is not the ColumnTransformer's last output block; "
                        "list it last (and use remainder='drop')."
                    )
                ids = X[columns] if isinstance(X, pd.DataFrame) else np.asarray(X)[:, columns]
                new = _add(transformer, ids)
                first.output_indices_[name] = slice(block.start, block.stop + new)
                return new
        raise ValueError("add_users found no fitted UserEncoder in the ColumnTransformer.")
    raise ValueError(
        "add_users needs a Pipeline whose first step is a PairFeatures with a UserEncoder context "
        f"or a ColumnTransformer with a UserEncoder; got {type(first).__name__}."
    )


def _context(X: Any, columns: Any) -> pd.DataFrame:
    """The context columns of a pairs table, by name or position (as PairFeatures reads them)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    columns = [columns] if isinstance(columns, (str, int, np.integer)) else list(columns)
    if all(isinstance(c, (int, np.integer)) for c in columns):
        return frame.iloc[:, columns]
    return frame[columns]


def _add(encoder: Any, ids: Any) -> int:
    before = len(encoder.get_feature_names_out())
    encoder.add_users(ids)
    return len(encoder.get_feature_names_out()) - before
