"""Evaluation reports: a markdown summary with tables and PNG plots, written to a folder.

Used by ``skpercept demo`` and ``skpercept evaluate``, and usable on its own: hand it result
tables (DataFrames), out-of-fold predictions next to the consensus, and the probabilities a model
gave with the outcomes that followed, and it writes ``report.md`` plus

- ``calibration.png``: reliability diagrams (predicted probability against the observed rate,
  per equal-width bin, with the diagonal of perfect calibration), one panel per kind of
  probability, one line per curve;
- ``scatter.png``: predicted score against the consensus (mean rating), one panel per attribute,
  with Spearman's ρ in each title.

Two sections are built separately and passed to :func:`write_report` as ``sections``:
:func:`per_person_section` (a summary of known vs unseen people, a table per person and
``per_person.png``, accuracy against the person's number of training judgments) and
:func:`classification_section` (precision, recall, F1 and the confusion matrix of a binary
target such as keep/delete at a stated decision threshold, and ``confusion.png``).

Plots are drawn on matplotlib's Agg canvas without pyplot, so reports are written on servers
without a display and an interactive session's backend is left alone. Binning follows
:func:`skpercept.metrics.expected_calibration_error`, so the curve and the ECE quoted beside it
describe the same bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._io import atomic_write

__all__ = [
    "classification_section",
    "classification_tables",
    "markdown_table",
    "per_person_section",
    "per_person_summary",
    "plot_calibration",
    "plot_confusion",
    "plot_per_person",
    "plot_scatter",
    "reliability_curve",
    "write_report",
]


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = ".3f", index: bool = True) -> str:
    """Render a DataFrame as a GitHub-flavoured markdown table (no extra dependency).

    Parameters
    ----------
    frame : DataFrame
    floatfmt : str, default='.3f'
        Format of float cells; NaN prints as an em dash.
    index : bool, default=True
        Include the index as the first column (a MultiIndex as one column per level).

    Returns
    -------
    table : str

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.report import markdown_table
    >>> print(markdown_table(pd.DataFrame({"acc": [0.8123]}, index=["ridge"])))
    |       | acc   |
    |---|---|
    | ridge | 0.812 |
    """

    if index and isinstance(frame.index, pd.MultiIndex):
        frame, index = frame.reset_index(), False

    def cell(value) -> str:
        if isinstance(value, (float, np.floating)):
            return "—" if math.isnan(value) else format(float(value), floatfmt)
        return str(value).replace("|", "\\|")

    header = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for label, values in zip(frame.index, frame.itertuples(index=False)):
        rows.append(([cell(label)] if index else []) + [cell(v) for v in values])
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


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


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A figure drawn by the Agg canvas directly: no pyplot, so no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_write(path) as file:  # a failed save keeps the previous plot
        fig.savefig(file, format="png")
    return path


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
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = _figure(4.5 * max(1, len(panels)), 4.5, 1, max(1, len(panels)))
    for ax, (title, curves) in zip(axes.ravel(), panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for label, curve in curves.items():
            ax.plot(curve["predicted"], curve["observed"], marker="o", markersize=3, label=str(label))
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_scatter(
    panels: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    xlabel: str = "consensus (mean rating)",
    ylabel: str = "predicted score",
) -> Path:
    """Predicted against consensus, one panel per attribute, saved as PNG.

    Parameters
    ----------
    panels : dict of attribute -> (consensus, predicted)
        Equal-length sequences; pairs with a NaN are skipped.
    path : str or Path
    xlabel, ylabel : str

    Returns
    -------
    path : Path
    """
    from scipy.stats import spearmanr

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = _figure(4 * cols, 4 * rows, rows, cols)
    for ax, (name, (truth, pred)) in zip(axes.ravel(), panels.items()):
        truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
        if truth.shape != pred.shape:
            raise ValueError(f"{name}: consensus has {truth.shape} values but predicted has {pred.shape}.")
        ok = ~(np.isnan(truth) | np.isnan(pred))
        rho = spearmanr(truth[ok], pred[ok]).statistic if ok.sum() > 2 else float("nan")
        ax.scatter(truth[ok], pred[ok], s=6, alpha=0.5)
        ax.set(title=f"{name} (Spearman ρ = {rho:.3f})", xlabel=xlabel, ylabel=ylabel)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    return _save(fig, path)


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
        plot_scatter(scatter, output_dir / "scatter.png", ylabel=scatter_ylabel)
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


# -- per person ---------------------------------------------------------------------------------
def _pooled(group: pd.DataFrame, column: str) -> float:
    """Mean over the group's judgments (people weighted by how many they have)."""
    scored = group[group["n_test"] > 0]
    return float(np.average(scored[column], weights=scored["n_test"])) if len(scored) else float("nan")


def per_person_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Known people, unseen people and everyone, side by side.

    Parameters
    ----------
    scores : DataFrame
        From :func:`skpercept.metrics.per_user_scores` (``n_test``, ``accuracy``, optionally
        ``mae``, ``n_train`` and ``known``).

    Returns
    -------
    summary : DataFrame
        Rows ``known``, ``unseen`` (only with a ``known`` column) and ``all``; columns
        ``people``, ``judgments``, ``accuracy`` (pooled over judgments), ``median``, ``min`` and
        ``max`` of the people's accuracies, and ``mae`` (pooled) when ``scores`` has it.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.report import per_person_summary
    >>> scores = pd.DataFrame({"n_test": [3, 1], "accuracy": [1.0, 0.0], "known": [True, False]})
    >>> per_person_summary(scores)[["people", "judgments", "accuracy"]]  # doctest: +NORMALIZE_WHITESPACE
            people  judgments  accuracy
    group
    known        1          3      1.00
    unseen       1          1      0.00
    all          2          4      0.75
    """
    groups = {"all": scores}
    if "known" in scores:
        known = scores["known"].astype(bool)
        groups = {"known": scores[known], "unseen": scores[~known], "all": scores}
    rows = {}
    for name, group in groups.items():
        spread = group["accuracy"].dropna().agg(["median", "min", "max"]).astype(float)  # NaN if empty
        row = {
            "people": len(group),
            "judgments": int(group["n_test"].sum()),
            "accuracy": _pooled(group, "accuracy"),
        }
        row.update(spread.to_dict())
        if "mae" in group:
            row["mae"] = _pooled(group, "mae")
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("group")


def plot_per_person(
    scores: pd.DataFrame, path: str | Path, *, chance: float | None = None, title: str = "Accuracy per person"
) -> Path:
    """Each person's accuracy against their number of training judgments, saved as PNG.

    Known people are filled dots, unseen people (no training judgment, drawn at 0) hollow
    squares; a dot's area grows with the person's number of scored judgments. Dashed lines mark
    each group's pooled accuracy. The x axis is linear up to 1 and logarithmic beyond, so people
    with 0, 5 and 500 judgments all stay readable.

    Parameters
    ----------
    scores : DataFrame
        From :func:`skpercept.metrics.per_user_scores` with ``train_users`` given (it needs
        ``n_test``, ``accuracy``, ``n_train``).
    path : str or Path
    chance : float or None, default=None
        Draw the chance level (e.g. 0.5 for pairs, 1 / n_levels for ratings).
    title : str

    Returns
    -------
    path : Path
    """
    from matplotlib.ticker import ScalarFormatter

    missing = [c for c in ("n_test", "accuracy", "n_train") if c not in scores]
    if missing:
        raise ValueError(
            f"scores lacks column(s) {missing}; compute them with per_user_scores(..., train_users=...)."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = _figure(6.5, 4.5)
    ax = axes[0, 0]
    scored = scores[scores["n_test"] > 0]
    known = scored["n_train"] > 0
    for mask, label, style in (
        (known, "known", dict(marker="o", color="tab:blue")),
        (~known, "unseen", dict(marker="s", facecolors="none", edgecolors="tab:orange")),
    ):
        group = scored[mask]
        if not len(group):
            continue
        ax.scatter(group["n_train"], group["accuracy"], s=12 + 8 * np.sqrt(group["n_test"]), alpha=0.7,
                   label=f"{label} ({len(group)})", **style)  # fmt: skip
        line = dict(color=style.get("color", "tab:orange"), linestyle="--", linewidth=1)
        ax.axhline(_pooled(group, "accuracy"), **line, label=f"{label}, pooled")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(-0.5, max(2.0, float(scored["n_train"].max()) * 1.3) if len(scored) else 2.0)
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 0, 1, 10, 100 rather than 10^0, 10^1
    ax.set(xlabel="training judgments of the person", ylabel="accuracy on held-out judgments",
           ylim=(-0.03, 1.03), title=title)  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def per_person_section(
    scores: pd.DataFrame,
    output_dir: str | Path,
    *,
    heading: str = "Per person",
    max_rows: int = 30,
    chance: float | None = None,
    name: str = "per_person",
    floatfmt: str = ".3f",
) -> str:
    """Markdown section on per-person results; writes ``<name>.csv`` (and ``<name>.png``).

    Parameters
    ----------
    scores : DataFrame
        From :func:`skpercept.metrics.per_user_scores`. With ``n_train`` (``train_users=``
        given) the section also compares known and unseen people and draws
        :func:`plot_per_person`; without it, it has the table only.
    output_dir : str or Path
        Folder of the report (created if missing).
    heading : str, default='Per person'
    max_rows : int, default=30
        People listed in the markdown table (those with the most training judgments, then
        the most scored ones); all of them are in the CSV.
    chance : float or None, default=None
        Chance level drawn in the plot.
    name : str, default='per_person'
        Stem of the PNG and CSV files (use one per attribute or model to keep several).
    floatfmt : str, default='.3f'

    Returns
    -------
    markdown : str
        A ``##`` section for ``write_report(sections=...)``, or to print.

    Examples
    --------
    >>> import tempfile
    >>> from skpercept.metrics import per_user_scores
    >>> from skpercept.report import per_person_section
    >>> scores = per_user_scores([1, 0, 1], [0.8, 0.3, 0.4], ["a", "a", "b"], train_users=["a"])
    >>> text = per_person_section(scores, tempfile.mkdtemp())
    >>> text.splitlines()[0], "![accuracy per person](per_person.png)" in text
    ('## Per person', True)
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(output_dir / f"{name}.csv", "w", encoding="utf-8", newline="") as file:
        scores.to_csv(file)
    parts = [f"## {heading}", "", markdown_table(per_person_summary(scores), floatfmt=floatfmt), ""]
    if "n_train" in scores:
        plot_per_person(scores, output_dir / f"{name}.png", chance=chance)
        parts += [f"![accuracy per person]({name}.png)", ""]
    order = [c for c in ("n_train", "n_test") if c in scores]
    shown = scores.sort_values(order, ascending=False, kind="stable").head(max_rows)
    if len(shown) < len(scores):
        parts += [
            f"The {len(shown)} of {len(scores)} people with the most judgments; all are in `{name}.csv`.",
            "",
        ]
    parts += [markdown_table(shown, floatfmt=floatfmt), ""]
    return "\n".join(parts)


# -- binary targets (keep / delete) -------------------------------------------------------------
def classification_tables(
    y_true, y_prob, *, threshold: float = 0.5, labels: Sequence | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision, recall, F1 and the confusion matrix of a binary target at a threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        The two classes (numbers or strings, e.g. ``'keep'`` / ``'delete'``); missing labels
        (NaN/None) are skipped.
    y_prob : array-like of shape (n_samples,) or (n_samples, 2)
        Probability of the positive class ``labels[1]``, or a ``predict_proba`` matrix whose
        columns follow ``labels``.
    threshold : float, default=0.5
        A row is predicted positive when its probability is at least ``threshold``.
    labels : sequence of two or None, default=None
        ``(negative, positive)``, as a classifier's ``classes_``; default: the two sorted
        distinct values of ``y_true``. Pass it when a class may be absent from ``y_true`` or
        to choose which class is positive.

    Returns
    -------
    report : DataFrame
        One row per class, then ``macro avg`` and ``weighted avg``; columns ``precision``,
        ``recall``, ``f1``, ``support`` (from :func:`sklearn.metrics.precision_recall_fscore_support`;
        an undefined precision, with no row predicted in that class, is 0).
    confusion : DataFrame
        Counts; rows ``true <class>``, columns ``predicted <class>``.

    Examples
    --------
    >>> from skpercept.report import classification_tables
    >>> report, confusion = classification_tables(["keep", "keep", "delete"], [0.9, 0.2, 0.6],
    ...                                           labels=["delete", "keep"])
    >>> report.loc["keep", ["precision", "recall"]].tolist()
    [0.5, 0.5]
    >>> confusion.to_numpy().tolist()
    [[0, 1], [1, 1]]
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}.")
    truth = np.asarray(y_true, dtype=object).reshape(-1)
    prob = np.asarray(y_prob, dtype=np.float64)
    if prob.ndim == 2 and prob.shape[1] == 2:
        prob = prob[:, 1]
    if prob.shape != truth.shape:
        raise ValueError(f"y_prob must have shape ({len(truth)},) or ({len(truth)}, 2), got {prob.shape}.")
    keep = ~pd.isna(truth)
    truth, prob = truth[keep], prob[keep]
    if np.isnan(prob).any() or (prob < 0).any() or (prob > 1).any():
        raise ValueError("y_prob must hold probabilities in [0, 1] (no NaN) for every labelled row.")
    present = sorted(pd.unique(truth).tolist())
    labels = present if labels is None else list(labels)
    if len(labels) != 2:
        raise ValueError(
            f"A binary report needs exactly two classes; got {labels}"
            + (" in y_true: pass labels=(negative, positive)." if len(present) < 2 else ".")
        )
    unknown = [v for v in present if v not in labels]
    if unknown:
        raise ValueError(f"y_true has {unknown}, not one of labels {labels}.")
    # scored as codes 0 / 1: sklearn cannot infer the target type of an object array of numbers
    truth = (truth == labels[1]).astype(np.int64)
    pred = (prob >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, pred, labels=[0, 1], zero_division=0
    )
    report = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index([str(v) for v in labels], name="class"),
    )
    weights = support / support.sum() if support.sum() else np.full(2, 0.5)
    averages = report[["precision", "recall", "f1"]]
    report.loc["macro avg"] = [*averages.mean(), support.sum()]
    report.loc["weighted avg"] = [*(averages.mul(weights, axis=0).sum()), support.sum()]
    report["support"] = report["support"].astype(np.int64)
    confusion = pd.DataFrame(
        confusion_matrix(truth, pred, labels=[0, 1]),
        index=pd.Index([f"true {v}" for v in labels], name=""),
        columns=[f"predicted {v}" for v in labels],
    )
    return report, confusion


def plot_confusion(confusion: pd.DataFrame, path: str | Path, *, title: str = "Confusion matrix") -> Path:
    """A confusion matrix as a heat map of row shares (recall), annotated with counts.

    Parameters
    ----------
    confusion : DataFrame
        Square counts, true classes as rows (from :func:`classification_tables`).
    path : str or Path
    title : str

    Returns
    -------
    path : Path
    """
    counts = confusion.to_numpy(dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion must be a square table, got shape {counts.shape}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # colour by the share of each true class, so a rare class's errors are as visible as a common one's
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, axes = _figure(4.5, 4)
    ax = axes[0, 0]
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{int(n)}\n{share[i, j]:.0%}", ha="center", va="center",
                color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in confusion.columns])
    ax.set_yticks(range(counts.shape[0]), [str(r) for r in confusion.index])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class")
    return _save(fig, path)


def classification_section(
    y_true,
    y_prob,
    output_dir: str | Path,
    *,
    threshold: float = 0.5,
    labels: Sequence | None = None,
    threshold_note: str = "",
    heading: str = "Classification",
    name: str = "confusion",
    floatfmt: str = ".3f",
) -> str:
    """Markdown section for a binary target (e.g. keep/delete); writes ``<name>.png``.

    States the decision threshold, the accuracy and balanced accuracy, the per-class table and
    the confusion matrix of :func:`classification_tables`, and draws :func:`plot_confusion`.

    Parameters
    ----------
    y_true, y_prob, threshold, labels
        As in :func:`classification_tables`.
    output_dir : str or Path
        Folder of the report (created if missing).
    threshold_note : str, default=''
        Where the threshold came from, e.g. ``'chosen on training folds for recall ≥ 0.9'``.
    heading : str, default='Classification'
    name : str, default='confusion'
        Stem of the PNG (use one per attribute to keep several).
    floatfmt : str, default='.3f'

    Returns
    -------
    markdown : str

    Examples
    --------
    >>> import tempfile
    >>> from skpercept.report import classification_section
    >>> text = classification_section([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1], tempfile.mkdtemp())
    >>> print(text.splitlines()[2])
    Decision threshold: predict 1 when P(1) ≥ 0.500. Accuracy 0.750, balanced accuracy 0.750 (n = 4).
    """
    report, confusion = classification_tables(y_true, y_prob, threshold=threshold, labels=labels)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(confusion, output_dir / f"{name}.png", title=f"{heading} (threshold {threshold:.3g})")
    counts = confusion.to_numpy()
    n = int(counts.sum())
    accuracy = np.trace(counts) / n if n else float("nan")
    balanced = report["recall"].iloc[:2][report["support"].iloc[:2] > 0].mean()
    positive = report.index[1]
    line = (
        f"Decision threshold: predict {positive} when P({positive}) ≥ {threshold:.3f}"
        + (f" ({threshold_note})" if threshold_note else "")
        + f". Accuracy {accuracy:.3f}, balanced accuracy {balanced:.3f} (n = {n})."
    )
    tables = [markdown_table(report, floatfmt=floatfmt), markdown_table(confusion)]
    return "\n\n".join([f"## {heading}", line, *tables, f"![confusion matrix]({name}.png)"]) + "\n"
