"""Drawing primitives of reports: markdown tables, and PNG figures drawn without pyplot.

Figures are drawn on matplotlib's Agg canvas directly, so reports are written on servers
without a display and an interactive session's backend is left alone; a PNG is written to a
temporary file and renamed into place, so a failed save keeps the previous plot.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skpercept._io import atomic_write


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = ".3f", index: bool = True) -> str:
    """Render a DataFrame as a GitHub-flavoured markdown table (no extra dependency).

    Parameters
    ----------
    frame : DataFrame
    floatfmt : str, default='.3f'
        Format of float cells; NaN prints as an em dash. A float column whose every value is a
        whole number, some above 1, holds counts and prints them as integers.
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

    def whole(values) -> bool:
        # a float column of whole numbers holds counts (floats only because of a NaN or a sum)
        floats = [float(v) for v in values if isinstance(v, (float, np.floating)) and not math.isnan(v)]
        # (scores are mostly fractions; one of only 0s and 1s could be either, and stays a score)
        return bool(floats) and all(v.is_integer() for v in floats) and max(abs(v) for v in floats) > 1

    def cell(value, counts: bool = False) -> str:
        if isinstance(value, (float, np.floating)):
            if math.isnan(value):
                return "—"
            return str(int(value)) if counts else format(float(value), floatfmt)
        return str(value).replace("|", "\\|")

    header = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    counts = [whole(frame.iloc[:, k]) for k in range(frame.shape[1])]
    rows = []
    for label, values in zip(frame.index, frame.itertuples(index=False)):
        rows.append(([cell(label)] if index else []) + [cell(v, c) for v, c in zip(values, counts)])
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def agg_figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A figure drawn by the Agg canvas directly: no pyplot, so no global backend change."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_png(fig, path: Path) -> Path:
    """Lay ``fig`` out and write it to ``path`` as PNG."""
    fig.tight_layout()
    with atomic_write(path) as file:  # a failed save keeps the previous plot
        fig.savefig(file, format="png")
    return path
