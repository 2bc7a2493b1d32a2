"""Other libraries' tables at the input boundary: polars, pyarrow and their kin become pandas.

skpercept reads tables with pandas (column names, row labels, ``factorize``, ``groupby``). A
table from another library (a polars ``DataFrame`` or ``Series``, a pyarrow ``Table``,
``RecordBatch`` or ``ChunkedArray``, any object with the dataframe interchange protocol or the
Arrow PyCapsule interface) is converted to pandas once, where a public function or estimator
receives it, so that everything past that point sees the pandas it was written for and gives
the same numbers and the same errors. The conversion is duck-typed: nothing here imports
polars, which stays a user's choice, not a dependency. Output containers are not this module's
business: transformers follow scikit-learn's ``set_output(transform='polars' | 'pandas')``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["as_pandas", "as_pandas_frame", "is_foreign_table"]

#: The protocols by which another library's table or column announces itself: the dataframe
#: interchange protocol and the Arrow PyCapsule interface (tables, streams, arrays).
_PROTOCOLS = ("__dataframe__", "__arrow_c_stream__", "__arrow_c_array__")


def is_foreign_table(X: Any) -> bool:
    """Whether ``X`` is a table or column of another library than pandas (polars, pyarrow, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept._dataframes import is_foreign_table
    >>> is_foreign_table(pd.DataFrame({"a": [1]})), is_foreign_table([1, 2])
    (False, False)
    """
    # pandas itself exports the same protocols (pandas >= 3): it needs no conversion.
    if isinstance(X, (pd.DataFrame, pd.Series, pd.Index, np.ndarray)):
        return False
    # the type, not the instance: an object with a permissive __getattr__ is not a table
    return any(hasattr(type(X), name) for name in _PROTOCOLS)


def as_pandas(X: Any) -> Any:
    """``X`` as a pandas DataFrame or Series when it is another library's table or column.

    Column names, column order and dtypes are kept as the other library maps them to pandas
    (polars and pyarrow strings become pandas strings, integers with nulls become floats with
    NaN, categoricals become ``category``); rows get a fresh ``RangeIndex``. Anything else
    (pandas objects, NumPy arrays, lists, sparse matrices) is returned unchanged.

    Parameters
    ----------
    X : object
        Input as a user gave it.

    Returns
    -------
    X_pandas : DataFrame, Series or ``X`` itself

    Raises
    ------
    ImportError
        The conversion needs pyarrow (polars converts to pandas through Arrow) and it is not
        installed; the message says what to install.
    TypeError
        ``X`` announces a table protocol but converts to neither a DataFrame nor a Series.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from skpercept._dataframes import as_pandas
    >>> as_pandas(pa.table({"image": ["a.jpg", "b.jpg"], "score": [1, 2]}))
       image  score
    0  a.jpg      1
    1  b.jpg      2
    """
    if not is_foreign_table(X):
        return X
    kind = f"{type(X).__module__.split('.')[0]}.{type(X).__name__}"
    try:
        out = _convert(X)
    except ImportError as exc:
        raise ImportError(
            f"Reading a {kind} needs pyarrow, through which it converts to pandas; install it with "
            "`pip install pyarrow` (or pass a pandas DataFrame)."
        ) from exc
    if isinstance(out, pd.Series) and out.name == "":
        # polars names an unnamed Series "" (its default); pandas' unnamed Series has None, and
        # "" would become a column name (and a feature name) that the same pandas input lacks.
        out.name = None
    if not isinstance(out, (pd.DataFrame, pd.Series)):
        raise TypeError(
            f"X is a {kind} that converts to {type(out).__name__}, not to a pandas DataFrame or Series; "
            "convert it to pandas first."
        )
    return out


def _convert(X: Any) -> Any:
    """The conversion itself: the library's own ``to_pandas`` first (it maps its dtypes best),
    then the interchange protocol, then the Arrow PyCapsule interface through pyarrow."""
    to_pandas = getattr(X, "to_pandas", None)
    if callable(to_pandas):
        return to_pandas()
    if hasattr(X, "__dataframe__"):
        return pd.api.interchange.from_dataframe(X)
    pa = importlib.import_module("pyarrow")
    try:
        return pa.table(X).to_pandas()
    except (TypeError, ValueError):  # a stream or array of one column: a Series
        return pa.chunked_array(X).to_pandas()


def as_pandas_frame(X: Any, name: str = "X") -> pd.DataFrame:
    """``X`` as a pandas DataFrame (converted by :func:`as_pandas`), or a TypeError naming ``name``.

    For functions that read a long table by its column names (ratings, comparisons, pairs).

    Examples
    --------
    >>> import pyarrow as pa
    >>> from skpercept._dataframes import as_pandas_frame
    >>> as_pandas_frame(pa.table({"user_id": [1, 2]}), "ratings").columns.tolist()
    ['user_id']
    """
    frame = as_pandas(X)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name} must be a DataFrame (pandas, polars, pyarrow or another with the dataframe "
            f"interchange protocol), got {type(X).__name__}."
        )
    return frame
