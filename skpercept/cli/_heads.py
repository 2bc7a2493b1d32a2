"""Which rating head a table gets, and why: the command's head-choice policy.

A table of ratings gets a head that predicts levels (``output='classes'``, by default
``'classifier'``) or one that predicts numbers (``output='values'``, by default ``'regressor'``),
chosen from the ratings themselves unless ``--head`` names a registered rating head. The choice
is never made around a suspicious value: a rating outside ``--levels``, an integer scale with a
gap, or a few fractions among whole numbers is an error naming the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skpercept.cli._tables import CLIError, levels_text, values_at
from skpercept.heads import get_head

#: Whole-number ratings on more levels than this are learned as numbers (a regressor).
MAX_CLASS_LEVELS = 10
#: The default heads of each kind of rating.
DEFAULT_HEADS = {"classes": "classifier", "values": "regressor"}


def choose_rating_head(
    table: pd.DataFrame,
    attributes: Sequence[str],
    path,
    head: str | None,
    levels: Sequence[float] | None,
    max_levels: int = MAX_CLASS_LEVELS,
) -> tuple[str, np.ndarray | None, str]:
    """The rating head (a registered name), its levels (heads of classes) and why it was chosen.

    ``head`` is ``--head`` (None: chosen here). Never guesses around a suspicious value: a
    rating outside ``--levels``, an integer scale with a gap (``1, 2, 3, 4, 7``) or a few
    fractions among whole numbers is an error naming the rows, since each would otherwise
    silently change the model (extra classes, a regressor).
    """
    output = get_head(head).output if head is not None else None
    classes, values = DEFAULT_HEADS["classes"], DEFAULT_HEADS["values"]
    y = table[list(attributes)].to_numpy(np.float64)
    observed = y[~np.isnan(y)]
    if levels is not None:
        declared = np.unique(np.asarray(levels, dtype=np.float64))
        if output == "values":
            outside = values_at(table, attributes, lambda v: (v < declared[0]) | (v > declared[-1]))
        else:
            outside = values_at(table, attributes, lambda v: ~v.isin(declared))
        if outside:
            raise CLIError(
                f"{path}: ratings outside the declared --levels {levels_text(declared)}: {outside}."
            )
        if len(declared) < 2:
            raise CLIError(f"--levels needs at least two levels, got {levels_text(declared)}.")
        kind = head or classes
        return kind, declared, f"--levels {levels_text(declared)}"
    if output == "values":
        return head, None, f"--head {head}"
    whole = observed == np.round(observed)
    unique = np.unique(observed[whole])
    n_fractions = int((~whole).sum())
    if n_fractions and (output == "classes" or n_fractions <= max(1, 0.05 * len(observed))):
        found = values_at(table, attributes, lambda v: v != np.round(v))
        hint = "" if output == "classes" else f", or pass --head {values} if the ratings are continuous"
        raise CLIError(
            f"{path}: {n_fractions} rating(s) are not whole numbers among whole-number levels "
            f"({found}); fix those cells{hint}."
        )
    if n_fractions:
        example = observed[~whole][0]
        return values, None, f"ratings are not whole numbers (e.g. {example:g})"
    if len(unique) > max_levels and output != "classes":
        return values, None, f"{len(unique)} distinct values, more than {max_levels} levels"
    if len(unique) < 2:
        raise CLIError(
            f"{path}: every rating is {levels_text(unique)}; a model needs at least two different values."
        )
    runs = np.split(unique, np.flatnonzero(np.diff(unique) > 1) + 1)
    if len(runs) > 1:
        counts = [np.isin(observed, run).sum() for run in runs]
        main = runs[int(np.argmax(counts))]
        found = values_at(table, attributes, lambda v: ~v.isin(main))
        example = " ".join(f"{v:g}" for v in np.arange(unique[0], unique[-1] + 1))
        raise CLIError(
            f"{path}: the ratings use levels {levels_text(unique)}, a scale with gaps; outside "
            f"{levels_text(main[[0, -1]]).replace(', ', '-')}: {found}. Fix those cells, or declare the "
            f"scale with --levels (e.g. --levels {example})."
        )
    return head or classes, unique, f"whole-number ratings on {len(unique)} levels"
