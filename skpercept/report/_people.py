"""The per-person section of a report: known vs unseen people, a table and a plot.

Built from :func:`skpercept.metrics.per_user_scores` and passed to
:func:`skpercept.report.write_report` as one of its ``sections``; every name here is also
available from :mod:`skpercept.report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import ScalarFormatter

from skpercept._io import atomic_write
from skpercept.metrics import expected_calibration_error
from skpercept.report._render import agg_figure, markdown_table, save_png


def _pooled(group: pd.DataFrame, column: str) -> float:
    """Mean over the group's judgments (people weighted by how many they have)."""
    scored = group[group["n_test"] > 0]
    return float(np.average(scored[column], weights=scored["n_test"])) if len(scored) else float("nan")


def per_person_summary(scores: pd.DataFrame, judgments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Known people, unseen people and everyone, side by side.

    Parameters
    ----------
    scores : DataFrame
        From :func:`skpercept.metrics.per_user_scores` (``n_test``, ``accuracy``, optionally
        ``brier``, ``ece``, ``mae``, ``n_train`` and ``known``).
    judgments : DataFrame or None, default=None
        Pairs only: one row per scored judgment with columns ``user``, ``y_true`` and
        ``y_pred`` (``P(left ≻ right)``). Given, the ``ece`` of a group is computed over the
        group's judgments pooled (the calibration of what its people were told); without
        it a group has no ``ece`` (a mean of per-person ECEs would mostly measure how few
        judgments each person has).

    Returns
    -------
    summary : DataFrame
        Rows ``known``, ``unseen`` (only with a ``known`` column) and ``all``; columns
        ``people``, ``judgments``, ``accuracy`` (pooled over judgments), ``median``, ``min`` and
        ``max`` of the people's accuracies, ``brier`` (pooled) and ``ece`` (pooled, with
        ``judgments``) when ``scores`` has them, and ``mae`` (pooled) when it has it.

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
        if "brier" in group:
            row["brier"] = _pooled(group, "brier")
        if "ece" in group and judgments is not None:
            mine = judgments[judgments["user"].isin(group.index)]
            row["ece"] = (
                expected_calibration_error(mine["y_true"].to_numpy(), mine["y_pred"].to_numpy())
                if len(mine)
                else float("nan")
            )
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

    Examples
    --------
    Two known people and one without training judgments (drawn on matplotlib's Agg canvas):

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from skpercept.metrics import per_user_scores
    >>> from skpercept.report import plot_per_person
    >>> scores = per_user_scores([1, 0, 1, 1, 0, 1], [0.9, 0.2, 0.4, 0.8, 0.3, 0.7],
    ...                          ["ann", "ann", "bob", "bob", "cy", "cy"], train_users={"ann": 12, "bob": 3})
    >>> scores[["accuracy", "n_train", "known"]].to_dict("list")
    {'accuracy': [1.0, 0.5, 1.0], 'n_train': [12, 3, 0], 'known': [True, True, False]}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plot_per_person(scores, pathlib.Path(folder) / "people.png", chance=0.5)
    ...     with Image.open(path) as png:
    ...         size = png.size
    >>> path.name, size
    ('people.png', (650, 450))
    """
    missing = [c for c in ("n_test", "accuracy", "n_train") if c not in scores]
    if missing:
        raise ValueError(
            f"scores lacks column(s) {missing}; compute them with per_user_scores(..., train_users=...)."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = agg_figure(6.5, 4.5)
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
    return save_png(fig, path)


def per_person_section(
    scores: pd.DataFrame,
    output_dir: str | Path,
    *,
    heading: str = "Per person",
    max_rows: int = 30,
    chance: float | None = None,
    name: str = "per_person",
    floatfmt: str = ".3f",
    judgments: pd.DataFrame | None = None,
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
    judgments : DataFrame or None, default=None
        Pairs: the scored judgments (``user``, ``y_true``, ``y_pred``) for each group's
        pooled ECE (see :func:`per_person_summary`).

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
    parts = [
        f"## {heading}",
        "",
        markdown_table(per_person_summary(scores, judgments), floatfmt=floatfmt),
        "",
    ]
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
