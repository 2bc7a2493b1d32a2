"""PairFeatures: the ``[left item ‖ context | right item ‖ context]`` layout of pair estimators.

Every pair estimator in skpercept takes ``X`` as two equal halves, the left item's features
(plus context such as a user one-hot) followed by the right item's, and ``y = 1`` where the
LEFT item is preferred. Estimators need not know where the features came from, and anyone can
build ``X`` by hand; :class:`PairFeatures` builds it from a table of pairs.
"""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._compat import HasMethods, StrOptions, fit_context
from skpercept._dataframes import as_pandas
from skpercept._utils import SavedFormatMixin


def swap_halves(X):
    """Swap the left and right halves of pair features: ``[L | R]`` → ``[R | L]``.

    With the label flipped (``1 - y``) this is the same judgment seen from the other side;
    an antisymmetric pair model must give ``P(swapped) = 1 - P(original)``.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, 2 * n_half_features)

    Returns
    -------
    X_swapped : same type as ``X`` (ndarray, sparse matrix, torch tensor or DataFrame)
        For a DataFrame the column names stay in place and the values move.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.preprocessing import swap_halves
    >>> swap_halves(np.array([[1, 2, 3, 4]]))
    array([[3, 4, 1, 2]])
    """
    n_features = X.shape[1]
    if n_features % 2:
        raise ValueError(
            f"Pair features must have an even number of columns ([left | right] halves); got {n_features}."
        )
    half = n_features // 2
    order = np.r_[half:n_features, 0:half]
    if isinstance(X, pd.DataFrame):
        return pd.DataFrame(X.to_numpy()[:, order], index=X.index, columns=X.columns)
    if sp.issparse(X):
        return sp.csr_matrix(X)[:, order]
    if hasattr(X, "index_select"):  # a torch tensor, without importing torch here
        return X.index_select(1, torch.as_tensor(order, device=X.device))
    return np.asarray(X)[:, order]


def _as_columns(columns) -> list:
    if columns is None:
        return []
    return [columns] if isinstance(columns, (str, int, np.integer)) else list(columns)


def _dense(X) -> np.ndarray:
    if sp.issparse(X):
        X = X.toarray()
    X = as_pandas(X)  # an inner transformer set to polars output
    X = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    return X.reshape(-1, 1) if X.ndim == 1 else X


class PairFeatures(SavedFormatMixin, TransformerMixin, BaseEstimator):
    """Build pair features ``[left item ‖ context | right item ‖ context]`` from a pairs table.

    One clone of ``item_transformer`` (typically an embedder) is fitted on the items of both
    item columns and applied to each; one clone of ``context_transformer`` (typically a
    :class:`skpercept.personal.UserEncoder`) encodes the context columns, whose features are
    appended to *both* halves. The output is dense, float64, with two halves of
    ``n_half_features_`` columns each.

    Parameters
    ----------
    item_transformer : transformer
        Maps a 1-D pandas Series of items (paths, ids, ...) named ``'item'`` to an
        ``(n_items, d)`` array. It is fitted on the distinct items of both item columns
        together (each distinct item once), and applied to distinct items only, so an image
        that appears in many pairs is embedded once per ``transform``; its output for an item
        must therefore not depend on the other items of the batch.
    context_transformer : transformer, 'passthrough' or None, default=None
        Encodes ``X[context_columns]`` (a DataFrame). ``'passthrough'`` uses those columns as
        numbers. ``None`` uses no context, whatever ``context_columns`` says.
    item_columns : tuple of two str or int, default=('image_a', 'image_b')
        The left and right item columns. Integers select columns by position, which also works
        for NumPy arrays.
    context_columns : tuple of str or int, or None, default=('user_id',)
        The context columns, used only when ``context_transformer`` is not None.

    Attributes
    ----------
    item_transformer_ : transformer
        The fitted clone of ``item_transformer``.
    context_transformer_ : transformer, 'passthrough' or None
        The fitted clone of ``context_transformer``.
    n_item_features_ : int
        Width of one item's features.
    n_context_features_ : int
        Width of the context block (0 without context).
    n_half_features_ : int
        ``n_item_features_ + n_context_features_``: width of each half.
    n_features_in_ : int
        Number of columns of ``X`` seen in fit.
    feature_names_in_ : ndarray of str
        Column names of ``X`` seen in fit, when it had string column names.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skpercept.preprocessing import PairFeatures
    >>> from skpercept.personal import UserEncoder
    >>> table = {"a": [1.0, 0.0], "b": [0.0, 1.0]}  # item id -> 2-d vector
    >>> lookup = FunctionTransformer(lambda s: np.stack([table[i] for i in s]))
    >>> pairs = pd.DataFrame({"image_a": ["a", "b"], "image_b": ["b", "a"],
    ...                       "user_id": ["u1", "u2"]})
    >>> pf = PairFeatures(item_transformer=lookup, context_transformer=UserEncoder())
    >>> pf.fit_transform(pairs)
    array([[1., 0., 1., 0., 0., 1., 1., 0.],
           [0., 1., 0., 1., 1., 0., 0., 1.]])
    >>> pf.n_half_features_
    4
    """

    _parameter_constraints: ClassVar[dict] = {
        "item_transformer": [HasMethods(["fit", "transform"])],
        "context_transformer": [HasMethods(["fit", "transform"]), StrOptions({"passthrough"}), None],
        "item_columns": ["array-like"],
        "context_columns": ["array-like", str, Integral, None],
    }

    def __init__(
        self,
        *,
        item_transformer,
        context_transformer=None,
        item_columns=("image_a", "image_b"),
        context_columns=("user_id",),
    ) -> None:
        self.item_transformer = item_transformer
        self.context_transformer = context_transformer
        self.item_columns = item_columns
        self.context_columns = context_columns

    # -- input handling ---------------------------------------------------------------------
    def _check_input(self, X, *, reset: bool) -> pd.DataFrame:
        # polars / pyarrow: converted before validate_data, which would otherwise make them an
        # array and lose the column names that item_columns and context_columns refer to
        X = as_pandas(X)
        if isinstance(X, pd.Series):
            raise ValueError("PairFeatures needs a table with two item columns (a DataFrame), got a Series.")
        is_frame = isinstance(X, pd.DataFrame)
        X = validate_data(
            self,
            X,
            reset=reset,
            skip_check_array=is_frame,
            dtype=None,
            ensure_all_finite=False,
            accept_sparse=False,
        )
        if not is_frame:
            X = pd.DataFrame(X)
        if len(X) == 0:
            raise ValueError("PairFeatures got 0 pairs; at least one is required.")
        return X

    def _select(self, X: pd.DataFrame, columns: list, role: str) -> pd.DataFrame:
        if all(isinstance(c, (int, np.integer)) for c in columns):
            bad = [c for c in columns if not -X.shape[1] <= c < X.shape[1]]
            if bad:
                raise ValueError(
                    f"{role} positions {bad} out of range: X has {X.shape[1]} feature(s) (columns)."
                )
            return X.iloc[:, columns]
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(
                f"{role} {missing} not found in X. X's columns are {list(X.columns)}; pass "
                f"{role}= to name the right ones."
            )
        return X[columns]

    def _item_columns(self) -> list:
        # The constraints check that item_columns is a sequence; its length is checked here.
        columns = _as_columns(self.item_columns)
        if len(columns) != 2:
            raise ValueError(f"item_columns must name exactly two columns (left, right), got {columns!r}.")
        return columns

    def _uses_context(self) -> bool:
        if self.context_transformer is None:
            return False
        # A cross-parameter check: a context transformer needs context columns.
        if not _as_columns(self.context_columns):
            raise ValueError(
                "context_transformer is set but context_columns is empty; name the context "
                "columns (e.g. context_columns=('user_id',)) or set context_transformer=None."
            )
        return True

    def _items(self, X: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
        """Distinct items of both columns, and each pair's (left, right) index into them."""
        pair_items = self._select(X, self._item_columns(), "item_columns")
        stacked = pd.Series(
            np.concatenate([pair_items.iloc[:, 0].to_numpy(), pair_items.iloc[:, 1].to_numpy()]),
            name="item",
        )
        missing = stacked.isna().to_numpy()
        if missing.any():
            position = int(np.flatnonzero(missing)[0])
            row, side = position % len(X), position // len(X)
            label = X.index[row]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(
                f"Missing item (NaN/None) at row {row} (index label {label!r}), column "
                f"{pair_items.columns[side]!r}."
            )
        try:
            codes, uniques = pd.factorize(stacked)
        except TypeError:  # unhashable items (arrays, images): no de-duplication
            codes, uniques = np.arange(len(stacked)), stacked
        return pd.Series(uniques, name="item"), codes.reshape(2, -1)

    # -- estimator API ----------------------------------------------------------------------
    # Not skipped for the nested transformers: they are clones of user objects.
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None) -> PairFeatures:
        """Fit the item transformer on all items, and the context transformer.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_pairs, n_columns)
            One row per pair, with the item columns and any context columns. A polars or
            pyarrow table is read as its pandas conversion (column names kept).
        y : None
            Ignored.

        Returns
        -------
        self : PairFeatures
        """
        self._fit_transform(X, fit=True)
        return self

    @fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit, then return the pair features (items are transformed once)."""
        return self._fit_transform(X, fit=True)

    def transform(self, X) -> np.ndarray:
        """Return ``[left item ‖ context | right item ‖ context]``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_pairs, n_columns)

        Returns
        -------
        X_pairs : ndarray of shape (n_pairs, 2 * n_half_features)
        """
        check_is_fitted(self, "n_half_features_")
        return self._fit_transform(X, fit=False)

    def _fit_transform(self, X, *, fit: bool) -> np.ndarray:
        X = self._check_input(X, reset=fit)
        uniques, codes = self._items(X)
        if fit:
            self.item_transformer_ = clone(self.item_transformer)
            Z = _dense(self.item_transformer_.fit_transform(uniques))
        else:
            Z = _dense(self.item_transformer_.transform(uniques))
        if Z.shape[0] != len(uniques):
            raise ValueError(
                f"item_transformer returned {Z.shape[0]} rows for {len(uniques)} items; it "
                "must return one row per item."
            )
        context = self._context(X, fit=fit)
        left, right = Z[codes[0]], Z[codes[1]]
        if fit:
            self.n_item_features_ = Z.shape[1]
            self.n_context_features_ = context.shape[1]
            self.n_half_features_ = self.n_item_features_ + self.n_context_features_
        elif Z.shape[1] != self.n_item_features_:
            raise ValueError(
                f"item_transformer returned {Z.shape[1]} features per item; it returned "
                f"{self.n_item_features_} in fit."
            )
        return np.hstack([left, context, right, context]).astype(np.float64, copy=False)

    def _context(self, X: pd.DataFrame, *, fit: bool) -> np.ndarray:
        if not self._uses_context():
            if fit:
                self.context_transformer_ = None
            return np.empty((len(X), 0))
        ctx = self._select(X, _as_columns(self.context_columns), "context_columns")
        if self.context_transformer == "passthrough":
            if fit:
                self.context_transformer_ = "passthrough"
            try:
                return ctx.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    "context_transformer='passthrough' needs numeric context columns; encode "
                    "ids with a UserEncoder instead."
                ) from exc
        if fit:
            self.context_transformer_ = clone(self.context_transformer)
            return _dense(self.context_transformer_.fit_transform(ctx))
        return _dense(self.context_transformer_.transform(ctx))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names ``left__<item feature>``, ``left__<context feature>``, then ``right__...``.

        Item feature names come from the item transformer's ``get_feature_names_out`` when it
        has one, else ``item0, item1, ...``; likewise ``context0, ...`` for the context.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self, "n_half_features_")
        half = list(self._names(self.item_transformer_, "item", self.n_item_features_))
        if self.n_context_features_:
            ctx = self.context_transformer_
            if ctx == "passthrough":
                half += [str(c) for c in _as_columns(self.context_columns)]
            else:
                half += list(self._names(ctx, "context", self.n_context_features_))
        names = [f"{side}__{name}" for side in ("left", "right") for name in half]
        return np.asarray(names, dtype=object)

    @staticmethod
    def _names(transformer, prefix: str, n: int) -> list[str]:
        try:
            names = [str(n) for n in transformer.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            # e.g. a FunctionTransformer without feature_names_out: positional names
            names = []
        return names if len(names) == n else [f"{prefix}{i}" for i in range(n)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.sparse = False
        tags.transformer_tags.preserves_dtype = []
        return tags
