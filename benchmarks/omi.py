"""Benchmark: how close do skpercept's heads get to the raters' own agreement on OMI faces?

Data: the One Million Impressions faces shipped with skpercept (1,004 synthetic faces, individual
0–100 ratings; Peterson et al., 2022, CC BY-NC-SA 4.0), attributes trustworthy, attractive and
smart. Split: image-disjoint K-fold over faces (``ImageDisjointSplit``, default 5 folds, seed 0):
no test face appears in any training row. Metric: accuracy of ordering two held-out faces as
their mean ratings do (all pairs of test faces, ties skipped), averaged over folds; Spearman's ρ
of the face scores with the mean ratings; headroom = (acc − 0.5) / (ceiling − 0.5), with the
ceiling from ``skpercept.metrics.noise_ceiling`` on the individual ratings (split-half,
Spearman–Brown).

Rows: the noise ceiling; ridge on pooled EfficientNet-Lite0 features (the baseline); the same
ridge with flip-averaged features, on dlib face descriptors and on their concatenation (blocks
balanced by ``BlockScaler``); PairwiseRanker on frozen features (consensus pairs of training
faces); RatingRegressor on mean ratings; RatingClassifier on individual ratings binned to 1–4;
and ``PairwiseRanker()`` / ``RatingRegressor()`` with their constructor defaults (the ranker on
``--default-pairs`` consensus pairs of training faces), beside ridge on the same features.
Every row runs through ``skpercept.presets`` and ``skpercept.evaluation`` — the code of
``skpercept demo`` — with the demo's head settings unless it says defaults. Embeddings are cached (``--cache-dir``),
so reruns only train heads.
Hardware: whatever runs it (printed). Ends with one JSON line of the figures.

Usage: python benchmarks/omi.py [--folds 5] [--seed 0] [--cache-dir DIR] [--no-dlib] [--faces N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from skpercept.datasets import load_omi, subset_faces
from skpercept.evaluation import MODEL_LABELS, cross_validate, noise_ceiling_table, results_table
from skpercept.presets import HeadSettings, default_cache_dir, dlib_available
from skpercept.report import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import embed_feature_sets, hardware_line

# (row label, feature set, model)
ROWS = [
    ("ridge", "lite0", "ridge"),
    ("ridge", "lite0 flip", "ridge"),
    ("ridge", "dlib", "ridge"),
    ("ridge", "lite0 flip + dlib", "ridge"),
    ("ranker", "lite0", "ranker"),
    ("regressor", "lite0", "regressor"),
    ("ranker", "lite0", "ranker-default"),
    ("regressor", "lite0", "regressor-default"),
    ("ranker", "lite0 flip + dlib", "ranker"),
    ("regressor", "lite0 flip + dlib", "regressor"),
    ("classifier", "lite0 flip + dlib", "classifier"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--faces", type=int, help="use only the first N faces (smoke runs)")
    parser.add_argument(
        "--default-pairs", type=int, default=20000, help="training pairs of the default-ranker row"
    )
    args = parser.parse_args()
    use_dlib = not args.no_dlib and dlib_available()

    omi = load_omi()  # trustworthy, attractive, smart
    if args.faces:
        omi = subset_faces(omi, args.faces)
    print(
        f"OMI: {len(omi.means)} faces, {len(omi.ratings)} ratings; {args.folds}-fold image-disjoint CV, "
        f"seed {args.seed}",
        flush=True,
    )
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    feature_sets, embed_seconds = embed_feature_sets(omi, args.cache_dir, use_dlib, args.device)
    ceiling = noise_ceiling_table(omi, seed=args.seed)
    settings = HeadSettings(seed=args.seed, device=args.device)
    # The '-default' rows are what a new user gets: constructor defaults, and 20,000 pairs of
    # training faces for the ranker (a plain consensus-pairs table, as in README's example).
    defaults = HeadSettings(seed=args.seed, device=args.device, n_pairs=args.default_pairs)

    tables, train_seconds, figures = [], {}, {}
    for _, features, model in ROWS:
        if features not in feature_sets:
            continue
        Z, sizes = feature_sets[features]
        row_settings = defaults if model.endswith("-default") else settings
        result = cross_validate(omi, Z, sizes, [model], folds=args.folds, settings=row_settings)
        table = results_table(result, ceiling, extra_label=f" [{features}]")
        if model == "ridge" and features != "lite0":  # only ridge on plain lite0 is the baseline
            table = table.rename(index=lambda m: m.replace("ridge (baseline)", "ridge"), level="model")
        label = f"{model} [{features}]"
        train_seconds[label] = round(result.seconds[model], 1)
        summary = result.summary()
        figures[label] = {
            a: {k: round(float(v), 4) for k, v in summary.loc[(a, model)].items() if not pd.isna(v)}
            for a in result.attributes
        }
        print(
            f"{label}: "
            + " / ".join(f"{figures[label][a]['pair_acc']:.3f}" for a in result.attributes)
            + f"  ({train_seconds[label]} s)",
            flush=True,
        )
        tables.append(table)

    table = pd.concat(tables)
    ceiling_rows = table.index.get_level_values("model") == MODEL_LABELS["ceiling"]
    table = pd.concat([table[ceiling_rows].groupby(level=[0, 1], sort=False).first(), table[~ceiling_rows]])
    order = {a: i for i, a in enumerate(omi.attributes)}
    table = table.sort_index(level="attribute", key=lambda idx: idx.map(order), sort_remaining=False)
    print()
    print(markdown_table(table[["pair_acc", "spearman", "headroom"]]))

    baseline = "ridge [lite0]"
    ceil = {a: round(float(ceiling.loc[a, "pair_acc"]), 4) for a in ceiling.index}
    best = {}
    for a in omi.attributes:
        own = {k: v[a]["pair_acc"] for k, v in figures.items() if not k.startswith("ridge")}
        name = max(own, key=own.get)
        best[a] = {
            "model": name,
            "pair_acc": own[name],
            "over_baseline": round(own[name] - figures[baseline][a]["pair_acc"], 4),
            "headroom": round((own[name] - 0.5) / (ceil[a] - 0.5), 4),
        }
    total = round(time.perf_counter() - start, 1)
    print(
        "\nbest skpercept head per attribute (vs ridge on lite0): "
        + "; ".join(
            f"{a} {b['pair_acc']:.3f} ({b['model']}, {b['over_baseline']:+.3f})" for a, b in best.items()
        )
    )
    print(f"total {total} s (embedding {sum(embed_seconds.values()):.1f} s)")
    print(
        json.dumps(
            {
                "benchmark": "omi",
                "faces": int(len(omi.means)),
                "folds": args.folds,
                "seed": args.seed,
                "ceiling": ceil,
                "results": figures,
                "best_skpercept_head": best,
                "baseline": baseline,
                "embed_seconds": embed_seconds,
                "train_seconds": train_seconds,
                "total_seconds": total,
                "cpus": os.cpu_count(),
                "dlib": use_dlib,
            }
        )
    )


if __name__ == "__main__":
    main()
