"""What the admin page shows about each labeller: how much, how consistent, how much they agree.

The checks are the rater-quality analytics of :mod:`skpercept.raters`, run on the project's
judgments as the plain tables hold them: :func:`~skpercept.raters.filter_raters` (intransitive
3-cycles among a labeller's comparisons, ratings that look like random clicks, too many answers
faster than two seconds) and :func:`~skpercept.raters.agreement_matrix` (how often two labellers
give the same answer to the same question).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from skpercept.raters import agreement_matrix, filter_raters

#: Fewest judgments of a labeller before the random-clicker checks say anything about them.
MIN_CHECKED = 10


def judgment_table(project) -> pd.DataFrame:
    """The project's judgments standing, wide, as the rater analytics read them."""
    frame = project.store.judgments()
    table = pd.DataFrame({"user_id": frame["labeller"]})
    if project.kind == "pairs":
        table["image_a"], table["image_b"] = frame["item_a"], frame["item_b"]
        value = (frame["value"] == 1).astype(float)
    else:
        table["image"] = frame["item_a"]
        value = frame["value"].astype(float)
    for attribute in project.attributes:
        table[attribute] = np.where(frame["attribute"] == attribute, value, np.nan) if len(frame) else []
    table["insert_time"] = frame["created_at"].astype(float) if len(frame) else []
    return table


def labeller_quality(project) -> dict:
    """Per labeller: judgments, agreement with the others, the random-clicker checks and a
    verdict; plus Krippendorff's alpha over the questions several labellers answered.

    Returns a dict with ``rows`` (one dict per labeller: ``labeller``, ``n``,
    ``agreement``, ``shared``, ``cycle_fraction`` / ``random_z``, ``fast_fraction``, ``flag``,
    ``reasons``), ``alpha`` and ``n_units`` (NaN / 0 while no question has two answers).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.label import Judgment, LabelProject
    >>> from skpercept.label._quality import labeller_quality
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "p").mkdir()
    >>> for name in ("a.jpg", "b.jpg"):
    ...     _ = (root / "p" / name).write_bytes(b"")
    >>> project = LabelProject(root / "p", ["smart"], background=False)
    >>> for who in ("ann", "bo"):
    ...     _ = project.store.add_labeller(who)
    ...     _ = project.store.record(Judgment(f"{who}-click-1", who, "smart", "pairs", "a.jpg", "b.jpg", 1))
    >>> quality = labeller_quality(project)
    >>> [(r["labeller"], r["n"], r["agreement"]) for r in quality["rows"]]
    [('ann', 1, 1.0), ('bo', 1, 1.0)]
    >>> project.close()
    """
    table = judgment_table(project)
    people = project.store.labellers()
    counts = table["user_id"].value_counts()
    rows = {
        p: {
            "labeller": p,
            "n": int(counts.get(p, 0)),
            "agreement": np.nan,
            "shared": 0,
            "flag": "",
            "reasons": "",
        }
        for p in people
    }
    alpha, n_units = float("nan"), 0
    if len(table):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few judgments: analytics warn about what they cannot say
            try:
                result = agreement_matrix(table, attributes=project.attributes)
                alpha, n_units = float(result.alpha), int(result.n_units)
                for person, row in result.per_user.iterrows():
                    if person in rows:
                        rows[person]["agreement"] = float(row["agreement_with_others"])
                        rows[person]["shared"] = int(row["n_shared"])
            except ValueError:
                pass
            frames = {"comparisons" if project.kind == "pairs" else "ratings": table}
            try:
                report = filter_raters(**frames, attributes=project.attributes, min_labels=MIN_CHECKED)
            except ValueError:
                report = pd.DataFrame()
        for person, row in report.iterrows():
            if person not in rows:
                continue
            for column in ("cycle_fraction", "random_z", "fast_fraction"):
                if column in report.columns:
                    rows[person][column] = float(row[column])
            if rows[person]["n"] < MIN_CHECKED:
                rows[person]["flag"] = "too few to check"
            elif not bool(row["keep"]):
                rows[person]["flag"], rows[person]["reasons"] = "check", str(row["reasons"])
            else:
                rows[person]["flag"] = "ok"
    return {"rows": list(rows.values()), "alpha": alpha, "n_units": n_units}
