"""Benchmark: does unlabelled data help a head learn from a few labelled images?

The photo-keeping scenario: a person labels a handful of photos keep / delete and has hundreds
more unlabelled. Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the
shipped backbone (``TimmEmbedder()``, EfficientNet-Lite0, 1280-d, cached). Task per attribute
(trustworthy, attractive, smart): "keep" = the face's mean rating is above the median of all
faces. Split, per repetition (``--reps``, seeds 0…): 20 % of the faces held out (image-disjoint
test set); of the other faces, ``--labelled`` (default 45) random ones carry their label and the
rest (~760) are unlabelled. Metric: accuracy and ROC AUC on the held-out faces, mean ± sd over
repetitions.

Rows, each given the same labelled faces:

- head: ``RatingClassifier`` (linear, ``hidden_layer_sizes=()``) and with its default hidden layer,
  on the labelled faces only;
- the same heads inside scikit-learn's ``SelfTrainingClassifier`` (pseudo-labels of confidence
  ≥ ``threshold`` added for up to 10 rounds; and ``criterion='k_best'``, 50 per round);
- references: ``LogisticRegression`` on the labelled faces, its self-training, and
  ``LabelSpreading`` (k-nearest-neighbour graph over labelled and unlabelled faces).

Hardware: printed. Ends with one JSON line; the table and figures also go to
``benchmarks/results/semi_supervised[-labelledN][-quick].json`` (``--no-save``: no file). Usage:
``python benchmarks/semi_supervised.py [--quick] [--reps 5] [--labelled 45] [--no-save]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

from skpercept.heads import RatingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, omi_embeddings, result_name, save_result, table_record

ATTRIBUTES = ["trustworthy", "attractive", "smart"]


def models(quick: bool) -> dict:
    """Row label -> (estimator, uses the unlabelled faces)."""
    linear = RatingClassifier(hidden_layer_sizes=(), random_state=0)
    hidden = RatingClassifier(random_state=0)
    logistic = LogisticRegression(C=1.0, max_iter=2000)
    rows = {
        "head, linear": (linear, False),
        "head, linear + self-training p≥0.8": (SelfTrainingClassifier(linear, threshold=0.8), True),
        "head, linear + self-training 50/round": (
            SelfTrainingClassifier(linear, criterion="k_best", k_best=50),
            True,
        ),
        "head, hidden (64,)": (hidden, False),
        "head, hidden + self-training p≥0.8": (SelfTrainingClassifier(hidden, threshold=0.8), True),
        "LogisticRegression": (logistic, False),
        "LogisticRegression + self-training": (SelfTrainingClassifier(logistic, threshold=0.8), True),
        "LabelSpreading (kNN graph)": (LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.2), True),
    }
    if quick:  # the smoke run: fewer rows, self-training stopped after 2 rounds
        rows = {k: v for k, v in rows.items() if "hidden" not in k and "50/round" not in k}
        for estimator, _ in rows.values():
            if isinstance(estimator, SelfTrainingClassifier):
                estimator.set_params(max_iter=2)
    return rows


def run(
    Z: np.ndarray, means: pd.DataFrame, reps: int, n_labelled: int, attributes: list, quick: bool
) -> dict:
    rows = models(quick)
    scores: dict = {r: {a: [] for a in attributes} for r in rows}
    seconds = dict.fromkeys(rows, 0.0)
    for rep in range(reps):
        rng = np.random.RandomState(rep)
        faces = rng.permutation(len(Z))
        n_test = len(Z) // 5
        test, train = faces[:n_test], faces[n_test:]
        for attribute in attributes:
            keep = (means[attribute] > means[attribute].median()).to_numpy(int)
            order = rng.permutation(len(train))
            labelled = train[order[:n_labelled]]
            y = np.full(len(train), -1)
            y[order[:n_labelled]] = keep[labelled]
            for row, (estimator, semi) in rows.items():
                start = time.perf_counter()
                model = clone(estimator)
                model.fit(Z[train], y) if semi else model.fit(Z[labelled], keep[labelled])
                p = model.predict_proba(Z[test])[:, 1]
                seconds[row] += time.perf_counter() - start
                scores[row][attribute].append(
                    (float(np.mean((p > 0.5) == keep[test])), float(roc_auc_score(keep[test], p)))
                )
        print(f"repetition {rep + 1}/{reps} done", flush=True)
    out = {}
    for row, per_attribute in scores.items():
        out[row] = {
            a: {
                "accuracy": [
                    round(float(np.mean(np.array(v)[:, 0])), 4),
                    round(float(np.std(np.array(v)[:, 0])), 4),
                ],
                "auc": [
                    round(float(np.mean(np.array(v)[:, 1])), 4),
                    round(float(np.std(np.array(v)[:, 1])), 4),
                ],
            }
            for a, v in per_attribute.items()
        }
        out[row]["seconds"] = round(seconds[row], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--labelled", type=int, default=45)
    add_result_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small heads: a second thread only adds contention
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    omi, Z = omi_embeddings(ATTRIBUTES)
    reps = 1 if args.quick else args.reps
    attributes = ATTRIBUTES[:1] if args.quick else ATTRIBUTES
    result = run(Z, omi.means, reps, args.labelled, attributes, args.quick)
    print(
        f"\n{len(Z)} OMI faces, {args.labelled} labelled, {reps} repetitions; accuracy / AUC on held-out faces"
    )
    print(f"{'model':<36}" + "".join(f"{a:>22}" for a in attributes))
    for row, r in result.items():
        cells = "".join(f"{r[a]['accuracy'][0]:>12.3f} / {r[a]['auc'][0]:.3f}" for a in attributes)
        print(f"{row:<36}{cells}")
    figures = {
        "benchmark": "semi_supervised",
        "labelled": args.labelled,
        "reps": reps,
        "results": result,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(figures))
    rows = [
        [
            row,
            *(f"{r[a]['accuracy'][0]:.3f} / {r[a]['auc'][0]:.3f}" for a in attributes),
            f"{r['seconds']:.0f}",
        ]
        for row, r in result.items()
    ]
    table = table_record(
        "keep-delete",
        f"Keep / delete (mean rating above the median) from {args.labelled} labelled OMI faces and "
        f"~{int(0.8 * len(Z)) - args.labelled} unlabelled: accuracy / ROC AUC on held-out faces, mean of "
        f"{reps} repetitions",
        ["model", *attributes, "seconds"],
        rows,
        note="20 % of the faces held out per repetition; the sd over repetitions is in the figures. "
        "seconds: fitting and predicting, all repetitions and attributes.",
    )
    name = result_name(
        "semi_supervised",
        f"labelled{args.labelled}" if args.labelled != 45 else None,
        "quick" if args.quick else None,
    )
    save_result(args, name, [table], figures)


if __name__ == "__main__":
    main()
