"""UserEncoder: user ids → one-hot context features ("which person is judging").

A head that sees a one-hot user block learns one offset (or more) per person on top of the
consensus. An all-zero block then means "no particular person": the model falls back on what is
shared by everyone, which is why unknown users are encoded as all zeros by default.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._compat import Interval, StrOptions, fit_context
from skpercept._dataframes import as_pandas
from skpercept._utils import SavedFormatMixin, id_text

_OTHER = "other"


def _as_2d_ids(X):
    """Turn a Series, list or 1-D array of ids into a 2-D table; leave 2-D input alone."""
    X = as_pandas(X)  # a polars / pyarrow column or table: named and labelled as pandas would be
    if isinstance(X, pd.Series):
        return X.to_frame()
    if isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=object)
    if isinstance(X, np.ndarray) and X.ndim == 1:
        return X.reshape(-1, 1)
    return X


def _row_label(X, position: int) -> str:
    if isinstance(X, (pd.DataFrame, pd.Series)):
        label = X.index[position]
        label = label.item() if isinstance(label, np.generic) else label
        return f"row {position} (index label {label!r})"
    return f"row {position}"


def _check_no_missing(X_raw, X: np.ndarray, names) -> None:
    """Reject missing/non-finite ids, naming the first offending row and column."""
    missing = pd.isna(X)
    if X.dtype.kind == "f":
        missing |= ~np.isfinite(X)
    if missing.any():
        row, col = np.argwhere(missing)[0]
        column = names[col] if names is not None else col
        raise ValueError(
            f"User id is missing or not finite (NaN/None/inf) at {_row_label(X_raw, row)}, "
            f"column {column!r}; {int(missing.sum())} such value(s) in total. Drop those rows "
            "or give them an explicit id (an unknown id is encoded as the average person)."
        )


def _input_names(estimator, input_features) -> np.ndarray:
    """Input column names as sklearn's get_feature_names_out convention defines them."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if input_features is None:
        if fitted is not None:
            return np.asarray(fitted, dtype=object)
        return np.asarray([f"x{i}" for i in range(estimator.n_features_in_)], dtype=object)
    input_features = np.asarray(input_features, dtype=object)
    if len(input_features) != estimator.n_features_in_:
        raise ValueError(
            f"input_features should have length {estimator.n_features_in_}, got {len(input_features)}."
        )
    if fitted is not None and not np.array_equal(fitted, input_features):
        raise ValueError("input_features is not equal to feature_names_in_.")
    return input_features


class UserIdWarning(UserWarning):
    """User ids arrived in another type than the encoder was fitted on, or differ only by
    leading zeros.

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> from skpercept.personal import UserEncoder, UserIdWarning
    >>> ids = pd.Series(["007", "7", "8"], name="user_id")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     enc = UserEncoder().fit(ids)
    >>> [w.category.__name__ for w in caught]
    ['UserIdWarning']
    >>> with warnings.catch_warnings():  # silence it where two spellings are meant
    ...     warnings.simplefilter("ignore", UserIdWarning)
    ...     enc = UserEncoder().fit(ids)
    >>> len(enc.categories_[0])  # '007' and '7' stay two people
    3
    """


def leading_zero_twins(ids: Any) -> list[tuple[str, str]]:
    """Pairs of distinct ids that differ only by leading zeros (``'007'`` and ``'7'``): two
    people to skpercept, perhaps one person to whoever typed them.

    Examples
    --------
    >>> from skpercept.personal import leading_zero_twins
    >>> leading_zero_twins(["007", "7", "12", 8])
    [('007', '7')]
    """
    groups: dict[str, set[str]] = {}
    for text in {id_text(v) for v in ids}:
        groups.setdefault(text.lstrip("0") or "0", set()).add(text)
    return [tuple(sorted(g))[:2] for g in groups.values() if len(g) > 1]


def _kind(values: np.ndarray) -> str:
    """'number' or 'text' (or 'mixed'): what a column of ids holds."""
    kinds = {"text" if isinstance(v, (str, np.str_)) else "number" for v in values.tolist()}
    return kinds.pop() if len(kinds) == 1 else "mixed"


class UserEncoder(SavedFormatMixin, TransformerMixin, BaseEstimator):
    """One-hot encode user ids, with the average person for unknown users.

    Built on :class:`sklearn.preprocessing.OneHotEncoder`; this class fixes the policies that
    matter for people: what an unseen user becomes, how rare users are pooled, and that a
    missing id is an error rather than a category.

    Parameters
    ----------
    sparse_output : bool, default=False
        Return a SciPy CSR matrix instead of a dense array. The torch heads and
        :class:`skpercept.preprocessing.PairFeatures` need dense features, hence the default.
        Pandas output (``set_output(transform='pandas')``) requires ``sparse_output=False``.
    handle_unknown : {'average', 'error'}, default='average'
        What to do with a user id not seen in ``fit``. ``'average'`` encodes it as an all-zero
        row: the model's prediction for "the average person", with no per-user offset.
        ``'error'`` raises a ValueError naming the row and the id.
    min_count : int, default=1
        Users with fewer than ``min_count`` rows in the training data are pooled into one
        ``'<column>_other'`` column, so that the head learns one shared offset for rare
        raters instead of noisy per-person ones. ``1`` disables pooling.

        Pooling applies to users *seen* in ``fit``: they did contribute training rows, and the
        "other" column learns from them. A user never seen in ``fit`` is handled by
        ``handle_unknown`` (all zeros by default), not put into "other": nothing was learned
        about them, and the rare-user offset is not the same thing as the consensus.

    Attributes
    ----------
    encoder_ : OneHotEncoder
        The fitted underlying encoder.
    categories_ : list of ndarray
        The ids seen in ``fit``, one array per input column.
    infrequent_categories_ : list of ndarray or None
        The ids pooled into the "other" column, per input column (``None`` without pooling).
    added_categories_ : list of ndarray
        Per input column, the ids added after ``fit`` by :meth:`add_users` (empty arrays
        until then); they are also in ``categories_``.
    n_features_in_ : int
        Number of id columns (usually 1).
    feature_names_in_ : ndarray of str
        Input column names, when the input had string column names (a named Series counts).

    Notes
    -----
    :meth:`add_users` gives ids unseen in ``fit`` columns of their own, appended after all
    existing columns, so a fitted model downstream keeps its inputs and can learn the new
    people alone (:func:`skpercept.personal.add_users`).

    Input may be a Series, a 1-column DataFrame (pandas, or polars / pyarrow, read as their
    pandas conversions), a list, or a 1-D or 2-D array of ids (ints or strings). Several
    columns (e.g. user and session) are encoded independently and concatenated. Ids of mixed
    types in one column (``1`` and ``'1'``) are rejected by the underlying encoder: convert
    them to one type first.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.personal import UserEncoder
    >>> users = pd.Series(["ann", "bob", "ann", "cy"], name="user_id")
    >>> enc = UserEncoder(min_count=2).fit(users)
    >>> enc.get_feature_names_out().tolist()
    ['user_id_ann', 'user_id_other']
    >>> enc.transform(pd.Series(["bob", "zoe"], name="user_id"))  # rare bob, unknown zoe
    array([[0., 1.],
           [0., 0.]])
    """

    _parameter_constraints: ClassVar[dict] = {
        "sparse_output": ["boolean"],
        "handle_unknown": [StrOptions({"average", "error"})],
        "min_count": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, *, sparse_output: bool = False, handle_unknown: str = "average", min_count: int = 1
    ) -> None:
        self.sparse_output = sparse_output
        self.handle_unknown = handle_unknown
        self.min_count = min_count

    def _validate_ids(self, X, *, reset: bool) -> np.ndarray:
        X_raw = _as_2d_ids(X)
        X_arr = validate_data(self, X_raw, dtype=None, ensure_all_finite=False, reset=reset)
        if X_arr.dtype.kind not in "biufUSO":
            raise TypeError(f"User ids must be integers or strings, got dtype {X_arr.dtype}.")
        names = getattr(self, "feature_names_in_", None)
        _check_no_missing(X_raw, X_arr, names)
        return X_arr

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> UserEncoder:
        """Learn the user ids (and which are rare).

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_columns)
            User ids.
        y : None
            Ignored.

        Returns
        -------
        self : UserEncoder
        """
        X_arr = self._validate_ids(X, reset=True)
        self.encoder_ = OneHotEncoder(
            # 'ignore' + min_frequency: rare seen users -> pooled column, unseen -> all zeros.
            # handle_unknown='error' is enforced by _raise_on_unknown (ids added later are known).
            handle_unknown="ignore",
            min_frequency=self.min_count if self.min_count > 1 else None,
            sparse_output=self.sparse_output,
            dtype=np.float64,
        ).fit(X_arr)
        self.categories_ = list(self.encoder_.categories_)
        self.infrequent_categories_ = self.encoder_.infrequent_categories_ if self.min_count > 1 else None
        self.added_categories_ = [c[:0] for c in self.categories_]
        self.id_kinds_ = [_kind(X_arr[:, j]) for j in range(X_arr.shape[1])]
        for j in range(X_arr.shape[1]):
            twins = leading_zero_twins(self.categories_[j])
            if twins:
                warnings.warn(
                    f"User ids {twins[0][0]!r} and {twins[0][1]!r} differ only by leading zeros "
                    f"({len(twins)} such pair(s) in column {j}); they are different people here. Make them "
                    "one spelling if they are one person.",
                    UserIdWarning,
                    stacklevel=2,
                )
        return self

    def _match_kinds(self, X_arr: np.ndarray) -> np.ndarray:
        """Ids of another type than in fit (``'7'`` for ``7``) matched to the fitted ids they
        stand for (:func:`id_text`), with one warning; ids of the fitted type pass unchanged."""
        out = X_arr
        for j, seen in enumerate(self.categories_):
            column = X_arr[:, j]
            kind = _kind(column)
            if kind == self.id_kinds_[j] or not len(column):
                continue
            fitted = [*seen.tolist(), *self.added_categories_[j].tolist()]
            known = {id_text(v): v for v in fitted}
            texts = [id_text(v) for v in column.tolist()]
            if self.id_kinds_[j] == "text":
                stranger = None  # an unmatched id stays an unknown text id
            else:  # an unmatched id becomes a number no one has: the average person
                stranger = max((v for v in fitted if not isinstance(v, str)), default=0) + 1
            matched = np.asarray(
                [known.get(text, text if stranger is None else stranger) for text in texts], dtype=object
            )
            n_matched = sum(text in known for text in texts)
            if self.handle_unknown == "error" and n_matched < len(texts):
                row = next(k for k, text in enumerate(texts) if text not in known)
                raise ValueError(
                    f"Unknown user id {column[row]!r} at row {row} ({len(texts) - n_matched} row(s) with ids "
                    "not seen in fit). Use handle_unknown='average' to encode unknown users as the average person."
                )
            warnings.warn(
                f"User ids of column {j} arrived as {kind} ({column[0]!r}, ...) but the encoder was fitted on "
                f"{self.id_kinds_[j]} ids; {n_matched} of {len(column)} row(s) were matched to the fitted ids "
                "they stand for (7, 7.0 and '7' are one person; '007' is not). Pass ids of one type.",
                UserIdWarning,
                stacklevel=3,
            )
            if out is X_arr:
                out = X_arr.astype(object, copy=True)
            out[:, j] = matched
        return out

    def add_users(self, X) -> UserEncoder:
        """Give user ids not seen so far columns of their own, appended after the existing ones.

        Existing columns and their order are untouched, so whatever was fitted on this
        encoder's output still reads it; a still unknown id stays all zeros (or an error, with
        ``handle_unknown='error'``). Ids already known, pooled rare users included, are
        left as they are. For a fitted model, :func:`skpercept.personal.add_users` extends the
        encoder and fits the new people's deviations.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_columns)
            User ids, laid out as for :meth:`transform`.

        Returns
        -------
        self : UserEncoder

        Examples
        --------
        >>> import pandas as pd
        >>> from skpercept.personal import UserEncoder
        >>> enc = UserEncoder().fit(pd.Series(["ann", "bob"], name="user_id"))
        >>> enc.add_users(pd.Series(["zoe", "ann"], name="user_id")).get_feature_names_out().tolist()
        ['user_id_ann', 'user_id_bob', 'user_id_zoe']
        """
        check_is_fitted(self, "encoder_")
        X_arr = self._validate_ids(X, reset=False)
        added = list(self.added_categories_)
        for j, seen in enumerate(self.categories_):
            ids = pd.unique(X_arr[:, j])
            try:
                new = ids[~np.isin(ids, seen)]
            except TypeError:
                raise TypeError(
                    f"User ids of column {j} must be of the type seen in fit ({seen.dtype}); convert "
                    "them first."
                ) from None
            if len(new):
                new = np.asarray(new, dtype=seen.dtype if seen.dtype.kind in "OiufbM" else None)
                added[j] = np.concatenate([added[j], new])
                self.categories_[j] = np.concatenate([seen, new])
        self.added_categories_ = added
        return self

    def _added_columns(self, X_arr: np.ndarray) -> np.ndarray | None:
        added = self.added_categories_
        if not added or not sum(len(a) for a in added):
            return None
        blocks = []
        for j, ids in enumerate(added):
            try:
                blocks.append((X_arr[:, j][:, None] == ids[None, :]).astype(np.float64))
            except TypeError:
                blocks.append(np.zeros((len(X_arr), len(ids))))
        return np.hstack(blocks)

    def transform(self, X):
        """Encode user ids.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, n_columns)
            User ids.

        Returns
        -------
        X_out : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_features_out)
        """
        check_is_fitted(self, "encoder_")
        X_arr = self._match_kinds(self._validate_ids(X, reset=False))
        if self.handle_unknown == "error":
            self._raise_on_unknown(X, X_arr)
        out = self.encoder_.transform(X_arr)
        extra = self._added_columns(X_arr)
        if extra is None:
            return out
        return (
            sp.hstack([out, sp.csr_matrix(extra)], format="csr")
            if sp.issparse(out)
            else np.hstack([out, extra])
        )

    def _raise_on_unknown(self, X, X_arr: np.ndarray) -> None:
        for j, seen in enumerate(self.categories_):
            try:
                unknown = ~np.isin(X_arr[:, j], seen)
            except TypeError:  # ids of another type than in fit: all unknown
                unknown = np.ones(len(X_arr), dtype=bool)
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0])
                raise ValueError(
                    f"Unknown user id {X_arr[row, j]!r} at {_row_label(_as_2d_ids(X), row)} "
                    f"({int(unknown.sum())} row(s) with ids not seen in fit). Use "
                    "handle_unknown='average' to encode unknown users as the average person."
                )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output column names: ``'<column>_<id>'``, pooled rare users as ``'<column>_other'``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; defaults to ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self, "encoder_")
        input_features = _input_names(self, input_features)
        names = self.encoder_.get_feature_names_out(input_features)
        out = []
        for name in names:
            if name.endswith("_infrequent_sklearn"):
                prefix = name[: -len("_infrequent_sklearn")]
                pooled = f"{prefix}_{_OTHER}"
                # a real user literally called "other" keeps its name; the pool gets a suffix
                out.append(pooled + "_pooled" if pooled in names else pooled)
            else:
                out.append(name)
        for column, ids in zip(input_features, self.added_categories_):
            out.extend(f"{column}_{i}" for i in ids.tolist())
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        # output is float64 whatever the id dtype: nothing to preserve
        tags.transformer_tags.preserves_dtype = []
        return tags
