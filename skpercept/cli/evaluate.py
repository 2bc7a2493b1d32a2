"""``skpercept evaluate``: score a saved model on a labelled table, per person when it knows people.

Printed: one row of metrics per attribute (pair accuracy, Brier and ECE for pairs; MAE, Spearman
of the image means, and for a classifier accuracy, QWK and ECE for ratings), precision / recall /
F1 and the confusion matrix of a two-level classifier at its decision threshold, and accuracy
per person. ``--output`` writes the same as a report with plots and ``per_person.csv``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept.cli._common import (
    TableCommand,
    add_runtime_options,
    add_table_options,
    image_errors,
    load_input,
    log,
    match_users,
)
from skpercept.cli._models import (
    MODEL_HELP,
    check_pair_labels,
    image_columns,
    load_model,
    predict_table,
    use_runtime,
)
from skpercept.cli._outputs import check_outputs, report_outputs, table_inputs, written_together
from skpercept.cli._tables import check_trained_range, pick_attributes, refuse_self_comparisons
from skpercept.metrics import (
    brier_score,
    expected_calibration_error,
    pairwise_accuracy,
    per_user_scores,
    quadratic_weighted_kappa,
    rating_mae,
    spearman_rho,
)
from skpercept.report import (
    classification_section,
    classification_tables,
    markdown_table,
    per_person_section,
    per_person_summary,
    reliability_curve,
    write_report,
)


@dataclass(frozen=True)
class EvaluateOptions(TableCommand):
    """``skpercept evaluate``'s options as typed values."""

    model: Path
    output: Path | None

    @classmethod
    def _own_options(cls, options: argparse.Namespace) -> dict:
        return dict(model=Path(options.model), output=Path(options.output) if options.output else None)


def evaluate(options: EvaluateOptions) -> int:
    """Score the model on the table; print the metrics, write the report with ``--output``."""
    model, info = load_model(options.model, log=log)
    loaded = load_input(options.source, info["task"], model_task=True, attributes=info["attributes"])
    table, task, path = loaded.table, loaded.task, options.source.path
    attributes, _ = pick_attributes(table, path, info["attributes"])
    if task == "pairs":
        refuse_self_comparisons(table, path)
        check_pair_labels(table, attributes, path)
    check_trained_range(table, attributes, info, path)
    has_people = "user_id" in table.columns
    check_outputs(
        report_outputs(options.output, attributes, people=bool(info.get("users") and has_people)),
        [*table_inputs(loaded, image_columns(task)), (options.model, "the model")],
    )
    runtime = options.runtime
    use_runtime(model, runtime.cache_dir, runtime.progress, runtime.device)
    match_users(loaded, info)
    with image_errors(loaded):
        pred = predict_table(model, info, table, task)
    frame, curves, scatter = overall_metrics(table, pred, attributes, info, task)
    print(markdown_table(frame))
    output = options.output
    echo = lambda message: print(message, flush=True)  # noqa: E731 - results go to stdout
    with written_together(output, "report") if output is not None else nullcontext():
        sections = classification_reports(table, pred, attributes, info, output, log=echo)
        if info.get("users") and has_people:
            sections += per_person(table, pred, attributes, info, task, output, log=echo)
        if output is not None:
            report = write_report(
                output,
                tables={"Evaluation": frame},
                title="skpercept evaluation",
                intro=f"Model `{options.model}` ({info['task']}) on `{path}` ({len(table)} rows).",
                scatter=scatter or None,
                calibration={"Calibration": curves} if curves else None,
                scatter_ylabel="predicted (mean per image)",
                sections=sections,
            )
    if output is not None:
        log(f"Report: {report}")
    return 0


def overall_metrics(
    table: pd.DataFrame, pred: pd.DataFrame, attributes: Sequence[str], info: dict, task: str
):
    """One row of metrics per attribute, reliability curves and per-image scatter data."""
    rows, curves, scatter = {}, {}, {}
    for attribute in attributes:
        truth = table[attribute].to_numpy(np.float64)
        keep = ~np.isnan(truth)
        if task == "pairs":
            p = pred[f"p_{attribute}_a"].to_numpy()[keep]
            rows[attribute] = {
                "n": int(keep.sum()),
                "pair_acc": pairwise_accuracy(truth[keep], p),
                "brier": brier_score(truth[keep], p),
                "ece": expected_calibration_error(truth[keep], p),
            }
            curves[attribute] = reliability_curve(truth[keep], p)
            continue
        guess = pred[f"pred_{attribute}"].to_numpy()[keep]
        row = {"n": int(keep.sum()), "mae": rating_mae(truth[keep], guess)}
        classifier = info.get("output") == "classes"
        score = pred[f"pred_{attribute}_expected" if classifier else f"pred_{attribute}"]
        per_image = pd.DataFrame({"truth": truth, "score": score.to_numpy(), "image": table["image"]})[keep]
        per_image = per_image.groupby("image").mean()
        row["spearman_image_means"] = spearman_rho(per_image["truth"], per_image["score"])
        scatter[attribute] = (per_image["truth"].to_numpy(), per_image["score"].to_numpy())
        if classifier:
            levels = np.asarray(info["levels"], dtype=np.float64)
            proba = pred[[f"p_{attribute}_{level:g}" for level in levels]].to_numpy()[keep]
            row.update(
                accuracy=float(np.mean(guess == truth[keep])),
                qwk=quadratic_weighted_kappa(truth[keep], guess, labels=levels),
                ece=expected_calibration_error(truth[keep], proba, labels=levels),
            )
            curves[attribute] = reliability_curve(truth[keep], proba, labels=levels)
        rows[attribute] = row
    return pd.DataFrame(rows).T.rename_axis("attribute"), curves, scatter


def threshold_note(info: dict, attribute: str) -> tuple[float, str]:
    """The decision threshold of a binary classifier's attribute and where it came from."""
    thresholds = info.get("thresholds") or {}
    if attribute in thresholds:
        return float(thresholds[attribute]), (
            f"chosen at fit time for {info['threshold_for']} on {info['threshold_folds']} image-disjoint "
            "training folds"
        )
    return 0.5, "the most probable level"


def classification_reports(table, pred, attributes, info, output=None, log=print) -> list[str]:
    """Print precision / recall / F1 and the confusion matrix of each attribute of a binary model.

    Returns the report sections (with ``output``, the confusion-matrix PNGs are written there).
    """
    if info.get("output") != "classes" or len(info.get("levels", ())) != 2:
        return []
    levels = [float(v) for v in info["levels"]]
    labels = [f"{v:g}" for v in levels]
    sections = []
    for attribute in attributes:
        truth = table[attribute].to_numpy(np.float64)
        keep = ~np.isnan(truth)
        y = np.where(truth[keep] == levels[1], labels[1], labels[0])
        p = pred[f"p_{attribute}_{labels[1]}"].to_numpy()[keep]
        threshold, note = threshold_note(info, attribute)
        report, confusion = classification_tables(y, p, threshold=threshold, labels=labels)
        log(
            f"\n{attribute}: predict {labels[1]} when P({labels[1]}) >= {threshold:.3f} ({note})\n"
            + markdown_table(report)
            + "\n\n"
            + markdown_table(confusion)
        )
        if output is not None:
            sections.append(
                classification_section(
                    y,
                    p,
                    output,
                    threshold=threshold,
                    labels=labels,
                    threshold_note=note,
                    heading=f"Classification: {attribute}",
                    name=f"confusion_{attribute}",
                )
            )
    return sections


def per_person(table, pred, attributes, info, task, output=None, log=print) -> list[str]:
    """Print accuracy per person (known vs unseen, training judgments from the model).

    Returns the report section (with ``output``, the per-person plot and CSV are written there).
    """
    if "user_id" not in table.columns:
        return []
    truth = table[list(attributes)].to_numpy(np.float64)
    if task == "pairs":
        guess = pred[[f"p_{a}_a" for a in attributes]].to_numpy()
        kind, chance = "pairs", 0.5
    else:
        guess = pred[[f"pred_{a}" for a in attributes]].to_numpy(np.float64)
        kind = "ratings"
        chance = 1 / len(info["levels"]) if info.get("levels") else None
    counts = info.get("user_counts")
    train_users = np.repeat(list(counts), list(counts.values())) if counts else None
    scores = per_user_scores(truth, guess, table["user_id"].to_numpy(), kind=kind, train_users=train_users)
    if counts:
        # people of the test table the model never saw: 0 training judgments, unseen
        scores["n_train"] = scores["n_train"].fillna(0).astype(int)
        scores["known"] = scores["n_train"] > 0
    judgments = None
    if kind == "pairs":  # each group's ECE pooled over its judgments
        judgments = pd.DataFrame(
            {
                "user": np.repeat(table["user_id"].to_numpy(), len(attributes)),
                "y_true": truth.reshape(-1),
                "y_pred": guess.reshape(-1),
            }
        ).dropna(subset=["y_true"])
    what = "accuracy, Brier score and calibration error" if kind == "pairs" else "accuracy"
    log(f"\nPer person ({what} on this table; n_train = the person's judgments the model was fitted on):")
    log(markdown_table(per_person_summary(scores, judgments)))
    order = [c for c in ("n_train", "n_test") if c in scores]
    log(markdown_table(scores.sort_values(order, ascending=False, kind="stable").head(20)))
    if len(scores) > 20:
        log(f"({len(scores) - 20} more people; all are in the report's per_person.csv with --output.)")
    if output is None:
        return []
    return [per_person_section(scores, output, chance=chance, judgments=judgments)]


def add_parser(subparsers) -> None:
    """Add ``evaluate`` to the command's subparsers."""
    p = subparsers.add_parser(
        "evaluate", help="score a saved model on a labelled table (per person with people)"
    )
    add_table_options(p)
    add_runtime_options(p)
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--output", help="folder for a report (markdown + PNG plots + per-person CSV)")
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Run ``evaluate`` with the parsed command line."""
    return evaluate(EvaluateOptions.from_options(options))
