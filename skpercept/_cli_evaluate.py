"""What ``skpercept evaluate`` measures: overall metrics, keep/delete reports, per-person accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def overall_metrics(
    table: pd.DataFrame, pred: pd.DataFrame, attributes: Sequence[str], info: dict, task: str
):
    """One row of metrics per attribute, reliability curves and per-image scatter data."""
    from skpercept.metrics import (
        brier_score,
        expected_calibration_error,
        pairwise_accuracy,
        quadratic_weighted_kappa,
        rating_mae,
        spearman_rho,
    )
    from skpercept.report import reliability_curve

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
        classifier = info.get("head") == "classifier"
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
    from skpercept.report import classification_section, classification_tables, markdown_table

    if info.get("head") != "classifier" or len(info.get("levels", ())) != 2:
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
    from skpercept.metrics import per_user_scores
    from skpercept.report import markdown_table, per_person_section, per_person_summary

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
    log("\nPer person (accuracy on this table; n_train = the person's judgments the model was fitted on):")
    log(markdown_table(per_person_summary(scores)))
    order = [c for c in ("n_train", "n_test") if c in scores]
    log(markdown_table(scores.sort_values(order, ascending=False, kind="stable").head(20)))
    if len(scores) > 20:
        log(f"({len(scores) - 20} more people; all are in the report's per_person.csv with --output.)")
    if output is None:
        return []
    return [per_person_section(scores, output, chance=chance)]
