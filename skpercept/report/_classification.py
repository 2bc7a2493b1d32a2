"""The section of a report on a binary target such as keep/delete, at a decision threshold.

Precision, recall, F1 and the confusion matrix, passed to :func:`skpercept.report.write_report`
as one of its ``sections``; every name here is also available from :mod:`skpercept.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from skpercept.report._render import agg_figure, markdown_table, save_png


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

    Examples
    --------
    The figure is drawn on matplotlib's Agg canvas (no pyplot, no display needed):

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from skpercept.report import classification_tables, plot_confusion
    >>> _, confusion = classification_tables([0, 0, 1, 1, 1], [0.2, 0.7, 0.9, 0.8, 0.4])
    >>> confusion.to_numpy().tolist()
    [[1, 1], [1, 2]]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plot_confusion(confusion, pathlib.Path(folder) / "confusion.png", title="Trust")
    ...     with Image.open(path) as png:
    ...         size = png.size
    >>> path.name, size
    ('confusion.png', (450, 400))
    """
    counts = confusion.to_numpy(dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion must be a square table, got shape {counts.shape}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # colour by the share of each true class, so a rare class's errors are as visible as a common one's
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, axes = agg_figure(4.5, 4)
    ax = axes[0, 0]
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{int(n)}\n{share[i, j]:.0%}", ha="center", va="center",
                color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in confusion.columns])
    ax.set_yticks(range(counts.shape[0]), [str(r) for r in confusion.index])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class")
    return save_png(fig, path)


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
