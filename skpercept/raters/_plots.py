"""Matplotlib views of rater-quality results (no pyplot state: figures are created directly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from skpercept._dataframes import as_pandas


def _axes(ax, figsize):
    if ax is not None:
        return ax

    return Figure(figsize=figsize).add_subplot()


def plot_rater_scores(
    scores: pd.DataFrame | pd.Series,
    column: str | None = None,
    *,
    flag: str | np.ndarray | None = None,
    threshold: float | None = None,
    ax=None,
):
    """Bar chart of one per-user score, sorted, with flagged users in another colour.

    Parameters
    ----------
    scores : DataFrame or Series
        Per-user table (e.g. from :func:`random_rater_scores`) or one score Series.
    column : str, optional
        Column of ``scores`` to draw (required for a DataFrame).
    flag : str or bool array, optional
        Boolean column name (or mask aligned with ``scores``) of users to highlight.
    threshold : float, optional
        Draw a horizontal line at this value.
    ax : matplotlib Axes, optional
        Where to draw; a new Figure (not registered with pyplot) is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import plot_rater_scores
    >>> ax = plot_rater_scores(pd.Series([3.0, 0.1, 5.0], name="random_z"), threshold=2)
    >>> len(ax.patches)
    3
    """
    scores = as_pandas(scores)  # a polars / pyarrow table or column: read by name as pandas
    if isinstance(scores, pd.DataFrame):
        if column is None or column not in scores.columns:
            raise ValueError(f"column must name a column of scores, got {column!r}.")
        values = scores[column]
        mask = scores[flag].to_numpy(bool) if isinstance(flag, str) else flag
    else:
        values, mask = scores, flag
        column = column or values.name
    mask = np.zeros(len(values), bool) if mask is None else np.asarray(mask, bool)
    order = np.argsort(values.to_numpy(dtype=float), kind="stable")
    ax = _axes(ax, (max(4.0, 0.08 * len(values)), 3.0))
    colors = np.where(mask[order], "tab:red", "tab:blue")
    ax.bar(np.arange(len(values)), values.to_numpy(dtype=float)[order], color=colors, width=0.9)
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("user (sorted)")
    ax.set_ylabel(str(column))
    if len(values) <= 40:
        ax.set_xticks(np.arange(len(values)))
        ax.set_xticklabels([str(u) for u in values.index[order]], rotation=90, fontsize=7)
    return ax


def plot_agreement(result, *, ax=None, cmap: str = "viridis"):
    """Heat map of the user x user agreement matrix (users ordered by agreement with others).

    Parameters
    ----------
    result : AgreementResult or DataFrame
        Output of :func:`agreement_matrix`, or a square agreement DataFrame.
    ax : matplotlib Axes, optional
    cmap : str, default='viridis'

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import plot_agreement
    >>> ax = plot_agreement(pd.DataFrame([[1.0, 0.7], [0.7, 1.0]]))
    >>> ax.get_title()
    'rater agreement'
    """
    mat = result if isinstance(result, pd.DataFrame) else result.agreement
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(f"agreement matrix must be square, got shape {mat.shape}.")
    order = np.argsort(
        -np.nanmean(np.where(np.eye(len(mat), dtype=bool), np.nan, mat.to_numpy(float)), axis=1)
        if len(mat) > 1
        else np.zeros(len(mat)),
        kind="stable",
    )
    data = mat.to_numpy(dtype=float)[np.ix_(order, order)]
    ax = _axes(ax, (5.0, 4.2))
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="agreement on shared units")
    ax.set_title("rater agreement")
    if len(mat) <= 40:
        labels = [str(u) for u in mat.index[order]]
        ax.set_xticks(np.arange(len(mat)))
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
        ax.set_yticks(np.arange(len(mat)))
        ax.set_yticklabels(labels, fontsize=7)
    return ax
