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
``per_person.png``, accuracy against the person's number of training judgments; with
:func:`per_person_summary` and :func:`plot_per_person`) and :func:`classification_section`
(precision, recall, F1 and the confusion matrix of a binary target such as keep/delete at a
stated decision threshold, and ``confusion.png``; with :func:`classification_tables` and
:func:`plot_confusion`). :func:`markdown_table` renders any table.

Plots are drawn on matplotlib's Agg canvas without pyplot, so reports are written on servers
without a display and an interactive session's backend is left alone. Binning follows
:func:`skpercept.metrics.expected_calibration_error`, so the curve and the ECE quoted beside it
describe the same bins.
"""

from skpercept.report._classification import classification_section, classification_tables, plot_confusion
from skpercept.report._people import per_person_section, per_person_summary, plot_per_person
from skpercept.report._render import markdown_table
from skpercept.report._write import plot_calibration, plot_scatter, reliability_curve, write_report

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
