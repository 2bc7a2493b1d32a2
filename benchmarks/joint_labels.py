"""Benchmark: does one model trained on ratings and comparisons together beat separate models?

Data: the One Million Impressions faces shipped with skpercept (1,004 synthetic faces, individual
0–100 ratings binned to levels 1–4; Peterson et al., 2022, CC BY-NC-SA 4.0), attributes
trustworthy, attractive and smart, through the shipped EfficientNet-Lite0 backbone (embeddings
cached, ``--cache-dir``). Split: image-disjoint K-fold over faces (``ImageDisjointSplit``, 5
folds, seed 0): no test face appears in any training row of either label type.

Labels of the training faces, the same for every model: ``--ratings-per-face`` individual ratings
per face and attribute (``sample_rating_rows``) and ``--pairs`` comparisons derived from the
training faces' ratings (``soft_consensus_pairs``: consensus order, soft labels from the standard
errors of the means). Rows: ``RatingClassifier`` (CORN) on the ratings and ``PairwiseRanker`` on
the comparisons, each as in ``skpercept.recipes`` (the preset heads of ``benchmarks/omi.py``),
and ``JointRatingRanker`` on both at once with the same trunk settings.

Metrics on the held-out faces: rating accuracy and MAE of the most probable level against every
individual held-out rating (``rating_metrics``), and pair accuracy (ordering all pairs of test
faces as their mean ratings do; the classifier ranks by its expected level). Mean ± sd over
folds, averaged over the three attributes. Hardware: whatever runs it (printed). Ends with one
JSON line of the figures; the tables and figures also go to
``benchmarks/results/joint_labels[-ratingsN][-pairsN][-quick].json`` (``--no-save``: no file).

Usage: python benchmarks/joint_labels.py [--folds 5] [--seed 0] [--quick] [--cache-dir DIR] [--no-save]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._utils import torch_threads
from skpercept.datasets import (
    load_omi,
    mean_standard_errors,
    ratings_with_face_index,
    sample_rating_rows,
    soft_consensus_pairs,
    subset_faces,
)
from skpercept.embed import default_cache_dir, make_backbones
from skpercept.heads import RATING_LEVELS, HeadSettings, JointRatingRanker, join_labels
from skpercept.model_selection import ImageDisjointSplit
from skpercept.preprocessing import BlockScaler
from skpercept.recipes import (
    embed_blocks,
    face_scores,
    fit_head,
    pair_metrics,
    rating_classes,
    rating_metrics,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, frame_table, hardware_line, result_name, save_result

MODELS = ("RatingClassifier", "PairwiseRanker", "JointRatingRanker")


def fit_joint(Z, block_sizes, train, means, ratings, attributes, settings, se) -> tuple:
    """JointRatingRanker on the ratings and comparisons ``fit_head`` gives the separate heads."""
    scaler = BlockScaler(block_sizes=list(block_sizes)).fit(Z[train])
    X = scaler.transform(Z[train])
    rows, levels = sample_rating_rows(
        ratings, train, attributes, per_face=settings.ratings_per_face, random_state=settings.seed
    )
    frame = pd.DataFrame(means[train], columns=list(attributes)).assign(image=np.arange(len(train)))
    pairs = soft_consensus_pairs(
        frame, attributes, n_pairs=settings.n_pairs, standard_errors=se[train], random_state=settings.seed
    )
    a, b = pairs["image_a"].to_numpy(int), pairs["image_b"].to_numpy(int)
    X_joint, y_joint = join_labels(
        X[rows], levels, np.hstack([X[a], X[b]]), pairs[list(attributes)].to_numpy(np.float64)
    )
    model = JointRatingRanker(classes=RATING_LEVELS, batch_size=256, **settings.mlp_params())
    with torch_threads(settings.threads):
        model.fit(X_joint, y_joint)
    return scaler, model


def evaluate_fold(kind, fitted, Z_test, means_test, test_ratings, position, attributes) -> list[dict]:
    if kind == "JointRatingRanker":
        scaler, model = fitted
        X = scaler.transform(Z_test)
        scores, proba = model.score_items(X), model.predict_rating_proba(X)
    else:
        scores, proba = face_scores("classifier" if kind == "RatingClassifier" else "ranker", fitted, Z_test)
    rows = []
    for k, attribute in enumerate(attributes):
        row = {
            "model": kind,
            "attribute": attribute,
            "pair_acc": pair_metrics(scores[:, k], means_test[:, k])[0],
        }
        if proba is not None:
            part = test_ratings[test_ratings["attribute"] == attribute]
            classes = rating_classes(part["rating"].to_numpy())
            faces = position.loc[part["face"].to_numpy()].to_numpy()
            metrics = rating_metrics(proba[k], faces, classes)
            row.update(rating_acc=metrics["rating_acc"], rating_mae=metrics["rating_mae"])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=3000, help="training comparisons per fold")
    parser.add_argument("--ratings-per-face", type=int, default=6)
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="smoke run: 120 faces, 2 folds, tiny heads")
    add_result_options(parser)
    args = parser.parse_args()

    omi = load_omi()
    settings = HeadSettings(
        seed=args.seed, device=args.device, n_pairs=args.pairs, ratings_per_face=args.ratings_per_face
    )
    folds = args.folds
    if args.quick:
        omi, folds = subset_faces(omi, 120), 2
        settings = HeadSettings.quick(seed=args.seed, device=args.device)
    attributes = list(omi.attributes)
    print(
        f"OMI: {len(omi.means)} faces, {len(omi.ratings)} ratings; {folds}-fold image-disjoint CV, seed "
        f"{args.seed}; {settings.ratings_per_face} ratings per face and attribute, {settings.n_pairs} "
        "comparisons per fold",
        flush=True,
    )
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    backbones = make_backbones(["lite0"], flip=False, cache_dir=args.cache_dir, device=args.device)
    Z, sizes = embed_blocks(backbones, omi.means["image"].to_numpy())
    means = omi.means[attributes].to_numpy(np.float64)
    ratings = ratings_with_face_index(omi)
    se = mean_standard_errors(omi)

    rows, seconds = [], dict.fromkeys(MODELS, 0.0)
    cv = ImageDisjointSplit(n_splits=folds, random_state=args.seed)
    for fold, (train, test) in enumerate(cv.split(omi.means[["image"]])):
        test_ratings = ratings[ratings["face"].isin(test)]
        position = pd.Series(np.arange(len(test)), index=test)
        for kind in MODELS:
            tic = time.perf_counter()
            if kind == "JointRatingRanker":
                fitted = fit_joint(Z, sizes, train, means, ratings, attributes, settings, se)
            else:
                head = "classifier" if kind == "RatingClassifier" else "ranker"
                fitted = fit_head(head, Z, sizes, train, means, ratings, attributes, settings, se)
            for row in evaluate_fold(kind, fitted, Z[test], means[test], test_ratings, position, attributes):
                rows.append({**row, "fold": fold})
            seconds[kind] += time.perf_counter() - tic
        done = (
            pd.DataFrame([r for r in rows if r["fold"] == fold])
            .groupby("model", sort=False)["pair_acc"]
            .mean()
        )
        print(
            f"fold {fold + 1}/{folds}: pair accuracy " + ", ".join(f"{m} {v:.3f}" for m, v in done.items()),
            flush=True,
        )

    frame = pd.DataFrame(rows)
    per_fold = frame.groupby(["model", "fold"], sort=False).mean(numeric_only=True)
    mean, sd = (
        per_fold.groupby(level="model", sort=False).mean(),
        per_fold.groupby(level="model", sort=False).std(),
    )
    metrics = ["rating_acc", "rating_mae", "pair_acc"]
    table = pd.DataFrame(
        {
            m: [
                "—" if pd.isna(mean.loc[k, m]) else f"{mean.loc[k, m]:.3f} ± {sd.loc[k, m]:.3f}"
                for k in MODELS
            ]
            for m in metrics
        },
        index=pd.Index(MODELS, name="model"),
    )
    table["train s"] = [f"{seconds[k]:.0f}" for k in MODELS]
    print()
    print(f"held-out faces, mean ± sd over {folds} folds (averaged over {', '.join(attributes)}):")
    print(table.to_markdown() if _has_tabulate() else table.to_string())
    by_attribute = (
        frame.groupby(["model", "attribute"], sort=False).mean(numeric_only=True).drop(columns="fold")
    )
    print()
    print(by_attribute.round(3).to_string())
    clf, ranker, joint = (mean.loc[k] for k in MODELS)
    verdict = {
        "rating_acc_joint_minus_classifier": round(float(joint["rating_acc"] - clf["rating_acc"]), 4),
        "rating_mae_joint_minus_classifier": round(float(joint["rating_mae"] - clf["rating_mae"]), 4),
        "pair_acc_joint_minus_ranker": round(float(joint["pair_acc"] - ranker["pair_acc"]), 4),
    }
    print("\njoint minus separate: " + ", ".join(f"{k} {v:+.4f}" for k, v in verdict.items()))
    total = round(time.perf_counter() - start, 1)
    print(f"total {total} s")
    figures = {
        k: {
            m: [round(float(mean.loc[k, m]), 4), round(float(sd.loc[k, m]), 4)]
            for m in metrics
            if not pd.isna(mean.loc[k, m])
        }
        for k in MODELS
    }
    result = {
        "benchmark": "joint_labels",
        "faces": int(len(omi.means)),
        "folds": folds,
        "seed": args.seed,
        "ratings_per_face": settings.ratings_per_face,
        "pairs": settings.n_pairs,
        "results_mean_sd": figures,
        "joint_minus_separate": verdict,
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_seconds": total,
        "quick": bool(args.quick),
    }
    print(json.dumps(result))
    protocol = (
        f"{len(omi.means)} OMI faces, {folds} image-disjoint folds, seed {args.seed}; "
        f"{settings.ratings_per_face} ratings per face and attribute, {settings.n_pairs:,} comparisons per fold"
    )
    tables = [
        frame_table(
            "held-out",
            f"Ratings and comparisons together or apart: held-out faces, mean ± sd over folds ({protocol})",
            table,
            note="Averaged over " + ", ".join(attributes) + ". Rating accuracy and MAE of the most probable "
            "level against every individual held-out rating; pair accuracy on all pairs of test faces. "
            "train s: seconds of training, all folds.",
        ),
        frame_table("by-attribute", f"The same per attribute, mean over folds ({protocol})", by_attribute),
    ]
    tags = [
        f"ratings{settings.ratings_per_face}" if settings.ratings_per_face != 6 and not args.quick else None,
        f"pairs{settings.n_pairs}" if settings.n_pairs != 3000 and not args.quick else None,
        "quick" if args.quick else None,
        f"seed{args.seed}" if args.seed else None,
    ]
    save_result(args, result_name("joint_labels", *tags), tables, result)


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None


if __name__ == "__main__":
    main()
