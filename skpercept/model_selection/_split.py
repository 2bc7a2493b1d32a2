"""Leak-free cross-validation splitters for rating and pairwise-comparison data.

Splitting judgment tables by row leaks: the same image (and, for multi-attribute judgments,
the same judgment) lands in both train and test, so test scores measure memory, not
generalisation. These splitters keep images, users or judgments on one side of each cut and
plug into scikit-learn anywhere ``cv=`` is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, GroupKFold, GroupShuffleSplit
from sklearn.utils import _safe_indexing, check_random_state

from skpercept._dataframes import as_pandas, is_foreign_table

_PAIR_COLUMNS = ("image_a", "image_b")


def _items_of(X, groups, item_columns) -> np.ndarray:
    """Item ids as an (n_samples, k) object array: k = 2 for pairs, 1 for rating rows."""
    X = as_pandas(X)  # polars / pyarrow: the item columns are read by name
    if groups is not None:
        items = np.asarray(as_pandas(groups), dtype=object)
        items = items.reshape(-1, 1) if items.ndim == 1 else items
    else:
        if not isinstance(X, pd.DataFrame):
            raise ValueError(
                "X must be a DataFrame (pandas, polars, pyarrow) with item columns (e.g. 'image_a', "
                "'image_b' or 'image'), or pass the item ids as groups= (1-D, or 2-D with one column per "
                f"item of a pair); got {type(X).__name__}."
            )
        if item_columns == "auto":
            if all(c in X.columns for c in _PAIR_COLUMNS):
                columns = list(_PAIR_COLUMNS)
            elif "image" in X.columns:
                columns = ["image"]
            else:
                raise ValueError(
                    "Cannot find item columns: X has neither 'image_a'/'image_b' nor 'image'; "
                    f"pass item_columns=. X's columns are {list(X.columns)}."
                )
        else:
            columns = [item_columns] if isinstance(item_columns, str) else list(item_columns)
            missing = [c for c in columns if c not in X.columns]
            if missing:
                raise ValueError(f"item_columns {missing} not in X; X's columns are {list(X.columns)}.")
        items = X[columns].to_numpy(dtype=object)
    if X is not None and hasattr(X, "__len__") and len(items) != len(X):
        raise ValueError(f"groups has {len(items)} rows but X has {len(X)}.")
    if pd.isna(items).any():
        rows = np.flatnonzero(pd.isna(items).any(axis=1))[:10].tolist()
        raise ValueError(f"Missing item ids at rows {rows}.")
    return items


def _image_masks(items: np.ndarray, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # pandas' hash-based isin works for any hashable ids (np.isin sorts, and fails on mixed types)
    in_test = pd.Series(items.ravel()).isin(test_images).to_numpy().reshape(items.shape)
    return ~in_test.any(axis=1), in_test.all(axis=1)


class ImageDisjointSplit(BaseCrossValidator):
    """K-fold cross-validation in which train and test share no image.

    The set of images is shuffled and cut into ``n_splits`` folds. For fold k, the test set is
    the rows whose images are **all** in fold k and the training set the rows with **no**
    image in fold k. A pair with one image on each side of the cut is in neither: it is
    dropped for that fold and counted (``n_dropped_`` after :meth:`split`, or
    :meth:`split_report`). So no test image ever appears in a training row. With a complete
    pair design and 5 folds, about 1/25 of the pairs are tested per fold, 16/25 trained on
    and 8/25 dropped.

    On rating frames (one ``image`` column) nothing is dropped: it is a grouped K-fold on
    images.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (of images), at least 2.
    item_columns : 'auto', str or sequence of str, default='auto'
        Columns of ``X`` naming the images of a row. ``'auto'`` uses ``('image_a',
        'image_b')`` when present, else ``'image'``. Ignored when ``groups`` is passed to
        :meth:`split` (1-D item ids, or 2-D with one column per item of a pair).
    shuffle : bool, default=True
        Shuffle images before cutting them into folds; False keeps sorted-id order.
    random_state : int, RandomState or None, default=None
        Controls the shuffle.

    Attributes
    ----------
    n_dropped_ : list of int
        Rows dropped (straddling the cut) in each fold of the last completed :meth:`split`.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.model_selection import ImageDisjointSplit
    >>> pairs = pd.DataFrame({"image_a": list("aabbcd"), "image_b": list("bcdcdb")})
    >>> cv = ImageDisjointSplit(n_splits=2, random_state=0)
    >>> for train, test in cv.split(pairs):
    ...     test_images = set(pairs.iloc[test][["image_a", "image_b"]].stack())
    ...     train_images = set(pairs.iloc[train][["image_a", "image_b"]].stack())
    ...     assert not test_images & train_images
    """

    # Metadata routing: a search (or cross_validate) passes its groups (item ids) on to split.
    __metadata_request__split = {"groups": True}  # noqa: RUF012 - scikit-learn's convention

    def __init__(
        self,
        n_splits: int = 5,
        *,
        item_columns: str | Sequence[str] = "auto",
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_splits = n_splits
        self.item_columns = item_columns
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds (``n_splits``)."""
        return self.n_splits

    def _folds(self, items: np.ndarray) -> list[np.ndarray]:
        if not isinstance(self.n_splits, Integral) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an int >= 2, got {self.n_splits!r}.")
        images = pd.unique(items.ravel())
        images = images[np.argsort(images.astype(str), kind="stable")]
        if self.n_splits > images.size:
            raise ValueError(f"n_splits={self.n_splits} is more than the {images.size} distinct images.")
        if self.shuffle:
            images = images[check_random_state(self.random_state).permutation(images.size)]
        return np.array_split(images, self.n_splits)

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row indices; no image of a test row is in any train row.

        Raises a ``ValueError`` if a fold has no test rows (too few pairs within a fold's
        images: use fewer folds).
        """
        items = _items_of(X, groups, self.item_columns)
        dropped = []
        for k, test_images in enumerate(self._folds(items)):
            train, test = _image_masks(items, test_images)
            if not test.any():
                raise ValueError(
                    f"Fold {k} has no row whose images are all in that fold: the pairs are too "
                    "sparse for this many folds; use fewer n_splits."
                )
            dropped.append(int((~train & ~test).sum()))
            yield np.flatnonzero(train), np.flatnonzero(test)
        self.n_dropped_ = dropped

    def split_report(self, X, y=None, groups=None) -> pd.DataFrame:
        """Per-fold counts: train/test/dropped rows and train/test images.

        Returns
        -------
        report : DataFrame
            One row per fold with ``n_train``, ``n_test``, ``n_dropped``, ``n_train_images``,
            ``n_test_images``.
        """
        items = _items_of(X, groups, self.item_columns)
        rows = []
        for test_images in self._folds(items):
            train, test = _image_masks(items, test_images)
            rows.append(
                {
                    "n_train": int(train.sum()),
                    "n_test": int(test.sum()),
                    "n_dropped": int((~train & ~test).sum()),
                    "n_train_images": int(pd.unique(items[train].ravel()).size),
                    "n_test_images": int(pd.unique(items[test].ravel()).size),
                }
            )
        return pd.DataFrame(rows).rename_axis("fold")


class _ColumnGroupSplit(BaseCrossValidator):
    """Grouped K-fold / shuffle split with groups taken from a column of X or from groups=."""

    _column_param = ""

    def _groups(self, X, groups) -> np.ndarray:
        X = as_pandas(X)  # polars / pyarrow: the group column is read by name
        if groups is not None:
            groups = np.asarray(as_pandas(groups))
        else:
            column = getattr(self, self._column_param)
            if not isinstance(X, pd.DataFrame) or column not in X.columns:
                cols = list(X.columns) if isinstance(X, pd.DataFrame) else type(X).__name__
                raise ValueError(
                    f"{type(self).__name__} needs a {column!r} column in X (set "
                    f"{self._column_param}=) or groups=; X has {cols}."
                )
            groups = X[column].to_numpy()
        if X is not None and len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} rows but X has {len(X)}.")
        if pd.isna(groups).any():
            rows = np.flatnonzero(pd.isna(groups))[:10].tolist()
            raise ValueError(f"Missing group ids at rows {rows}.")
        return groups

    def _splitter(self):
        if self.test_size is None:
            return GroupKFold(
                n_splits=self.n_splits,
                shuffle=self.shuffle,
                random_state=self.random_state if self.shuffle else None,
            )
        if not isinstance(self.test_size, Real) or not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be a float in (0, 1) or None, got {self.test_size!r}.")
        return GroupShuffleSplit(
            n_splits=self.n_splits, test_size=self.test_size, random_state=self.random_state
        )

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of splits (``n_splits``)."""
        return self.n_splits

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row indices; no group id is on both sides."""
        groups = self._groups(X, groups)
        yield from self._splitter().split(np.zeros((len(groups), 1)), None, groups)


class UserDisjointSplit(_ColumnGroupSplit):
    """Cross-validation for cold-start users: each user's rows are all train or all test.

    A thin wrapper on :class:`~sklearn.model_selection.GroupKFold` (or
    :class:`~sklearn.model_selection.GroupShuffleSplit` when ``test_size`` is set) that reads
    the groups from a column of ``X``.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (or of random splits when ``test_size`` is set).
    user_column : str, default='user_id'
        Column of ``X`` with the user ids; ignored when ``groups=`` is passed to :meth:`split`.
    test_size : float or None, default=None
        None: K-fold over users. A float in (0, 1): ``n_splits`` independent random splits
        holding out this fraction of users.
    shuffle : bool, default=True
        Shuffle users before K-fold (ignored with ``test_size``).
    random_state : int, RandomState or None, default=None
        Controls the shuffle / random splits.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.model_selection import UserDisjointSplit
    >>> X = pd.DataFrame({"user_id": list("aabbccdd"), "image": range(8)})
    >>> [sorted(set(X.user_id.iloc[test])) for _, test in
    ...  UserDisjointSplit(n_splits=2, random_state=0).split(X)]
    [['c', 'd'], ['a', 'b']]
    """

    _column_param = "user_column"

    def __init__(
        self,
        n_splits: int = 5,
        *,
        user_column: str = "user_id",
        test_size: float | None = None,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_splits = n_splits
        self.user_column = user_column
        self.test_size = test_size
        self.shuffle = shuffle
        self.random_state = random_state


class JudgmentGroupedSplit(_ColumnGroupSplit):
    """Cross-validation that keeps all rows of one judgment together.

    When one judgment (one person, one image or pair, one submission) rates several
    attributes and the table has a row per attribute, splitting by row puts the same
    judgment's other attributes in training. This splitter groups rows by judgment id.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (or of random splits when ``test_size`` is set).
    judgment_column : str, default='judgment_id'
        Column of ``X`` with the judgment ids; ignored when ``groups=`` is passed.
    test_size : float or None, default=None
        None: K-fold over judgments; a float in (0, 1): random splits holding out this share.
    shuffle : bool, default=True
        Shuffle judgments before K-fold (ignored with ``test_size``).
    random_state : int, RandomState or None, default=None
        Controls the shuffle / random splits.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.model_selection import JudgmentGroupedSplit
    >>> X = pd.DataFrame({"judgment_id": [1, 1, 2, 2, 3, 3], "attribute": list("ababab")})
    >>> [sorted(set(X.judgment_id.iloc[test])) for _, test in
    ...  JudgmentGroupedSplit(n_splits=3, random_state=0).split(X)]
    [[3], [2], [1]]
    """

    _column_param = "judgment_column"

    def __init__(
        self,
        n_splits: int = 5,
        *,
        judgment_column: str = "judgment_id",
        test_size: float | None = None,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_splits = n_splits
        self.judgment_column = judgment_column
        self.test_size = test_size
        self.shuffle = shuffle
        self.random_state = random_state


def _take(array, index: np.ndarray):
    if isinstance(array, (pd.DataFrame, pd.Series)):
        return array.iloc[index]
    if is_foreign_table(array):  # a polars / pyarrow input gives polars / pyarrow splits
        return _safe_indexing(array, index)
    return np.asarray(array)[index]


def image_disjoint_train_test_split(
    pairs,
    *arrays,
    test_size: float = 0.2,
    item_columns: str | Sequence[str] = "auto",
    groups=None,
    random_state: int | np.random.RandomState | None = None,
) -> list:
    """Hold out a random share of images: like ``train_test_split``, without shared images.

    A share ``test_size`` of the distinct images is held out. Test rows are those whose
    images are all held out, train rows those with none held out; pairs straddling the cut
    are in neither (with a complete pair design about 2·t·(1−t) of the pairs, t = test_size).

    Parameters
    ----------
    pairs : DataFrame
        Pair frame (``image_a``, ``image_b``) or rating frame (``image``).
    *arrays : array-likes
        Further arrays with the same number of rows (e.g. ``y``), split the same way.
    test_size : float, default=0.2
        Share of **images** (not rows) held out, in (0, 1).
    item_columns : 'auto', str or sequence of str, default='auto'
        As in :class:`ImageDisjointSplit`.
    groups : array-like or None, default=None
        Item ids instead of columns (1-D, or 2-D with one column per item of a pair).
    random_state : int, RandomState or None, default=None
        Controls which images are held out.

    Returns
    -------
    splitting : list
        ``[pairs_train, pairs_test, a1_train, a1_test, ...]``; DataFrames keep their index.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.model_selection import image_disjoint_train_test_split
    >>> pairs = pd.DataFrame({"image_a": list("aabbcd"), "image_b": list("bcdcdb")})
    >>> train, test = image_disjoint_train_test_split(pairs, test_size=0.5, random_state=1)
    >>> set(train[["image_a", "image_b"]].stack()) & set(test[["image_a", "image_b"]].stack())
    set()
    """
    if not isinstance(test_size, Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}.")
    items = _items_of(pairs, groups, item_columns)
    for array in arrays:
        if len(array) != len(items):
            raise ValueError(f"All arrays must have {len(items)} rows; got one with {len(array)}.")
    images = pd.unique(items.ravel())
    images = images[np.argsort(images.astype(str), kind="stable")]
    n_test = int(round(test_size * images.size))
    if not 0 < n_test < images.size:
        raise ValueError(f"test_size={test_size} of {images.size} images leaves an empty train or test side.")
    rng = check_random_state(random_state)
    test_images = images[rng.permutation(images.size)[:n_test]]
    train, test = _image_masks(items, test_images)
    if not test.any():
        raise ValueError("No row has all its images in the held-out set; raise test_size.")
    train, test = np.flatnonzero(train), np.flatnonzero(test)
    out = []
    for array in (pairs, *arrays):
        out.extend([_take(array, train), _take(array, test)])
    return out
