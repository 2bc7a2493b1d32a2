"""The report folder: ``report.md`` with its tables, reliability diagrams and scatter plots.

:func:`write_report` writes ``report.md`` plus ``calibration.png`` (reliability diagrams,
:func:`plot_calibration` of :func:`reliability_curve` tables) and ``scatter.png`` (prediction
against the consensus, :func:`plot_scatter`), and any extra sections built beforehand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from skpercept._io import atomic_write
from skpercept.report._render import agg_figure, markdown_table, save_png

__all__ = ["plot_calibration", "plot_scatter", "reliability_curve", "write_report"]


def reliability_curve(y_true, y_prob, *, n_bins: int = 10, labels=None) -> pd.DataFrame:
    """Per-bin mean predicted probability and observed rate (the data of a reliability diagram).

    Binary (pairs): ``y_prob`` is 1-D, ``P(y = 1)``; observed is the mean (soft) label in the bin.
    Multi-class (ratings): ``y_prob`` is ``(n, k)``; the top-label probability is binned and
    observed is the share of rows whose most probable class is the true one. NaN labels are
    skipped. Bins are equal-width on [0, 1], the last one closed, as in
    :func:`skpercept.metrics.expected_calibration_error`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary/soft labels in [0, 1], or class labels (multi-class).
    y_prob : array-like of shape (n,) or (n, k)
    n_bins : int, default=10
    labels : array-like or None, default=None
        Multi-class only: the classes in the column order of ``y_prob`` (default: the sorted
        distinct values of ``y_true``, which must then include every class).

    Returns
    -------
    curve : DataFrame
        One row per non-empty bin: ``predicted``, ``observed``, ``count``.

    Examples
    --------
    >>> from skpercept.report import reliability_curve
    >>> reliability_curve([1, 0, 1, 1], [0.9, 0.9, 0.2, 0.3], n_bins=2)
       predicted  observed  count
    0       0.25       1.0      2
    1       0.90       0.5      2
    """
    prob = np.asarray(y_prob, dtype=np.float64)
    truth = np.asarray(y_true)
    if len(truth) != len(prob):
        raise ValueError(f"y_true has {len(truth)} rows but y_prob has {len(prob)}.")
    keep = ~pd.isna(truth)
    truth, prob = truth[keep], prob[keep]
    if prob.ndim == 1:
        confidence, outcome = prob, truth.astype(np.float64)
    elif prob.ndim == 2:
        classes = np.unique(truth) if labels is None else np.asarray(labels)
        if len(classes) != prob.shape[1]:
            raise ValueError(
                f"y_prob has {prob.shape[1]} columns but there are {len(classes)} labels; pass labels=."
            )
        confidence = prob.max(axis=1)
        outcome = (classes[prob.argmax(axis=1)] == truth).astype(np.float64)
    else:
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {prob.shape}.")
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    filled = count > 0
    predicted = np.bincount(bins, confidence, n_bins)[filled] / count[filled]
    observed = np.bincount(bins, outcome, n_bins)[filled] / count[filled]
    return pd.DataFrame({"predicted": predicted, "observed": observed, "count": count[filled]})


def plot_calibration(
    panels: Mapping[str, Mapping[str, pd.DataFrame]],
    path: str | Path,
    *,
    xlabel: str = "predicted probability",
    ylabel: str = "observed frequency",
) -> Path:
    """Reliability diagrams, one panel per group of curves from :func:`reliability_curve`.

    Parameters
    ----------
    panels : dict of panel title -> dict of label -> DataFrame
        Each curve has ``predicted``, ``observed`` and ``count`` columns. Put curves that mean
        the same thing (e.g. pair probabilities) in one panel.
    path : str or Path
        Where to write the PNG (parent folders are created).
    xlabel, ylabel : str

    Returns
    -------
    path : Path

    Examples
    --------
    The figure is drawn on matplotlib's Agg canvas (no pyplot, no display needed):

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skpercept.report import plot_calibration, reliability_curve
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> p = np.clip(0.6 * y + rng.uniform(0, 0.4, 200), 0, 1)
    >>> panels = {"pair probabilities": {"ranker": reliability_curve(y, p, n_bins=5)}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plot_calibration(panels, pathlib.Path(folder) / "calibration.png")
    ...     with Image.open(path) as png:
    ...         size = png.size
    >>> path.name, size  # one 4.5 x 4.5 inch panel at 100 dpi
    ('calibration.png', (450, 450))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = agg_figure(4.5 * max(1, len(panels)), 4.5, 1, max(1, len(panels)))
    for ax, (title, curves) in zip(axes.ravel(), panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for label, curve in curves.items():
            ax.plot(curve["predicted"], curve["observed"], marker="o", markersize=3, label=str(label))
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend(loc="upper left", fontsize=8)
    return save_png(fig, path)


def plot_scatter(
    panels: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    xlabel: str = "consensus (mean rating)",
    ylabel: str = "predicted score",
    rho: Mapping[str, tuple[float, str]] | None = None,
) -> Path:
    """Predicted against consensus, one panel per attribute, saved as PNG.

    Parameters
    ----------
    panels : dict of attribute -> (consensus, predicted)
        Equal-length sequences; pairs with a NaN are skipped.
    path : str or Path
    xlabel, ylabel : str
    rho : dict of attribute -> (value, how), optional
        The rank correlation each panel's title shows, and how it was computed, where a
        results table beside the plot reports another one than the plotted points' own: e.g.
        ``(0.905, 'mean of 5 folds')`` when the points pool out-of-fold scores of several
        folds but the table averages each fold's correlation. Default: Spearman's ρ of the
        plotted points.

    Returns
    -------
    path : Path

    Examples
    --------
    Each panel is titled with its attribute and Spearman's ρ (drawn on matplotlib's Agg canvas):

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from skpercept.report import plot_scatter
    >>> panels = {"smart": ([10, 20, 30, 40], [1.5, 1.0, 3.5, 4.0]), "warm": ([10, 20, 30], [3, 2, 1])}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plot_scatter(panels, pathlib.Path(folder) / "scatter.png")
    ...     with Image.open(path) as png:
    ...         size = png.size
    >>> path.name, size  # two 4 x 4 inch panels side by side at 100 dpi
    ('scatter.png', (800, 400))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = agg_figure(4 * cols, 4 * rows, rows, cols)
    for ax, (name, (truth, pred)) in zip(axes.ravel(), panels.items()):
        truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
        if truth.shape != pred.shape:
            raise ValueError(f"{name}: consensus has {truth.shape} values but predicted has {pred.shape}.")
        ok = ~(np.isnan(truth) | np.isnan(pred))
        if rho is not None and name in rho:
            value, how = rho[name]
            title = f"{name}\n(Spearman ρ = {value:.3f}, {how})"
        else:
            value = spearmanr(truth[ok], pred[ok]).statistic if ok.sum() > 2 else float("nan")
            title = f"{name} (Spearman ρ = {value:.3f})"
        ax.scatter(truth[ok], pred[ok], s=6, alpha=0.5)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    return save_png(fig, path)


def write_report(
    output_dir: str | Path,
    *,
    tables: Mapping[str, pd.DataFrame],
    title: str = "skpercept report",
    intro: str = "",
    scatter: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    calibration: Mapping[str, Mapping[str, pd.DataFrame]] | None = None,
    notes: Sequence[str] = (),
    floatfmt: str = ".3f",
    scatter_ylabel: str = "predicted score",
    sections: Sequence[str] = (),
    scatter_rho: Mapping[str, tuple[float, str]] | None = None,
) -> Path:
    """Write ``report.md`` (and the PNG plots it links) into ``output_dir``.

    Parameters
    ----------
    output_dir : str or Path
        Created if missing; existing files of the same names are replaced.
    tables : dict of heading -> DataFrame
        Each becomes a ``##`` section with a markdown table.
    title : str, default='skpercept report'
    intro : str, default=''
        Markdown paragraph under the title (data, split, hardware...).
    scatter : dict of attribute -> (consensus, predicted), or None
        Written to ``scatter.png`` by :func:`plot_scatter`.
    calibration : dict of panel title -> dict of label -> reliability curve, or None
        Curves from :func:`reliability_curve`, drawn into ``calibration.png`` by
        :func:`plot_calibration`.
    notes : sequence of str
        Bullet points at the end (caveats, what was skipped and why).
    floatfmt : str, default='.3f'
    scatter_ylabel : str, default='predicted score'
        Y-axis label of ``scatter.png`` (say which model's scores they are).
    sections : sequence of str, default=()
        Ready markdown sections placed after the tables, e.g. from :func:`per_person_section`
        and :func:`classification_section` (called with the same ``output_dir``, so the PNGs
        they link sit next to ``report.md``).
    scatter_rho : dict of attribute -> (value, how), optional
        The rank correlation ``scatter.png``'s titles show (``rho`` of :func:`plot_scatter`):
        pass the one the tables report, so the plot and the table agree.

    Returns
    -------
    path : Path
        The written ``report.md``.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from skpercept.report import write_report
    >>> out = write_report(tempfile.mkdtemp(), tables={"Results": pd.DataFrame({"acc": [0.8]})})
    >>> out.name
    'report.md'
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    if intro:
        parts += [intro.strip(), ""]
    for heading, frame in tables.items():
        parts += [f"## {heading}", "", markdown_table(frame, floatfmt=floatfmt), ""]
    for section in sections:
        parts += [section.strip(), ""]
    if scatter:
        plot_scatter(scatter, output_dir / "scatter.png", ylabel=scatter_ylabel, rho=scatter_rho)
        parts += ["## Predicted vs consensus", "", "![predicted vs consensus](scatter.png)", ""]
    if calibration:
        plot_calibration(calibration, output_dir / "calibration.png")
        parts += ["## Calibration", "", "![calibration](calibration.png)", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    path = output_dir / "report.md"
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write("\n".join(parts))
    return path
