"""Benchmark: how well calibrated are the ranker's pair probabilities on new faces?

Data: the 1,004 OMI faces shipped with skpercept (Peterson et al., 2022, CC BY-NC-SA 4.0),
attributes trustworthy, attractive and smart; features: the demo's ``lite0 flip + dlib +
landmarks`` (or ``lite0 flip`` without dlib). Protocol: the demo's — 5 image-disjoint folds
(seed 0), the ``BlockScaler`` and the ranker fitted on the training faces' consensus pairs
(``HeadSettings``: 3,000 pairs unless ``--pairs``, hidden (128,), item-held-out early stopping,
``DEMO_ENSEMBLE`` = 5 members), every pair of test faces with different means scored. Metric: ECE (10 bins) of ``P(left ≻ right)``
against the consensus order, per fold then averaged, in two ways: each pair counted in both
orders (what ``skpercept.recipes`` reports), and in file order only (image ``i < j`` on
the left), which OMI's rating offsets by stimulus number bias (see
``skpercept.recipes.pair_calibration``); also pooled over the folds; pair accuracy beside.

Rows: the demo's ranker (five members, soft labels ``Φ(Δm / se)``); one net
(``n_ensemble=1``); one net with ``calibration='temperature'`` (on the early-stopping
hold-out); one net on hard 0/1 labels; one net on hard labels inside scikit-learn's
``CalibratedClassifierCV(method='temperature')`` over 3 image-disjoint folds (one ranker per
attribute, the two image ids routed as ``groups``). Hardware: printed.
Ends with one JSON line; the table and figures also go to
``benchmarks/results/pair_calibration[-pairsN][-no-dlib][-seedS].json`` (``--no-save``: no file).

Usage: python benchmarks/pair_calibration.py [--folds 5] [--seed 0] [--pairs 3000] [--no-dlib] [--skip-sklearn]
       [--no-save]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV

from skpercept._utils import torch_threads
from skpercept.datasets import load_omi, mean_standard_errors, ratings_with_face_index, soft_consensus_pairs
from skpercept.embed import default_cache_dir, dlib_available
from skpercept.heads import HeadSettings, make_head
from skpercept.metrics import expected_calibration_error
from skpercept.model_selection import ImageDisjointSplit
from skpercept.preprocessing import BlockScaler
from skpercept.recipes import DEMO_ENSEMBLE, fit_head, pair_calibration, pair_metrics
from skpercept.report import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import (
    add_result_options,
    embed_feature_sets,
    frame_table,
    hardware_line,
    result_name,
    save_result,
)

#: Row name -> (parameters set on the demo's ranker, soft labels).
ROWS = {
    "the demo's ranker (n_ensemble=5)": ({}, True),
    "one net (n_ensemble=1)": ({"n_ensemble": 1}, True),
    "one net, calibration='temperature'": ({"n_ensemble": 1, "calibration": "temperature"}, True),
    "one net, hard labels": ({"n_ensemble": 1}, False),
}
SKLEARN_ROW = "one net, hard labels + CalibratedClassifierCV"


def both_ways(y_both: np.ndarray, p_both: np.ndarray) -> tuple[float, float]:
    """ECE over both orders, and over the first half (file order) of pair_calibration's rows."""
    half = len(y_both) // 2
    return float(expected_calibration_error(y_both, p_both)), float(
        expected_calibration_error(y_both[:half], p_both[:half])
    )


def sklearn_calibrated(X, means, train, test, attributes, settings):
    """Per attribute, ``P(left ≻ right)`` on every test pair (i < j) from a ranker on hard labels
    inside ``CalibratedClassifierCV`` with image-disjoint folds; and the test pairs."""
    frame = pd.DataFrame(means[train], columns=list(attributes)).assign(image=np.arange(len(train)))
    pairs = soft_consensus_pairs(frame, attributes, n_pairs=settings.n_pairs, random_state=settings.seed)
    a, b = pairs["image_a"].to_numpy(int), pairs["image_b"].to_numpy(int)
    out = []
    i, j = np.triu_indices(len(test), 1)
    X_test_pairs = np.hstack([X[test][i], X[test][j]])
    for attribute in attributes:
        y = pairs[attribute].to_numpy()
        keep = ~np.isnan(y)
        with sklearn.config_context(enable_metadata_routing=True):
            # the image ids go to the splitter (image-disjoint folds) and to the ranker's hold-out
            ranker = make_head("ranker", settings).set_params(n_ensemble=1).set_fit_request(groups=True)
            calibrated = CalibratedClassifierCV(
                ranker, method="temperature", cv=ImageDisjointSplit(n_splits=3, random_state=settings.seed)
            )
            calibrated.fit(
                np.hstack([X[train][a[keep]], X[train][b[keep]]]),
                y[keep].astype(int),
                groups=np.column_stack([a[keep], b[keep]]),
            )
        out.append(calibrated.predict_proba(X_test_pairs)[:, 1])
    return np.column_stack(out), i, j


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument("--no-dlib", action="store_true", help="without dlib's descriptor and landmarks")
    parser.add_argument("--pairs", type=int, default=HeadSettings.n_pairs, help="consensus pairs per fit")
    parser.add_argument(
        "--skip-sklearn", action="store_true", help="leave out the CalibratedClassifierCV row"
    )
    add_result_options(parser)
    args = parser.parse_args()
    print(hardware_line(), flush=True)
    omi = load_omi()
    use_dlib = not args.no_dlib and dlib_available()
    features, _ = embed_feature_sets(omi, args.cache_dir, use_dlib, "cpu")
    feature_set = "lite0 flip + dlib + landmarks" if use_dlib else "lite0 flip"
    Z, sizes = features[feature_set]
    attributes = list(omi.attributes)
    means = omi.means[attributes].to_numpy(np.float64)
    se = mean_standard_errors(omi)
    ratings = ratings_with_face_index(omi)
    settings = HeadSettings(seed=args.seed, device="cpu", n_pairs=args.pairs, n_ensemble=DEMO_ENSEMBLE)
    folds = list(ImageDisjointSplit(n_splits=args.folds, random_state=args.seed).split(omi.means[["image"]]))
    rows = list(ROWS) + ([] if args.skip_sklearn else [SKLEARN_ROW])
    parts = {row: {a: [] for a in attributes} for row in rows}
    seconds = dict.fromkeys(rows, 0.0)
    for fold, (train, test) in enumerate(folds):
        for row in rows:
            start = time.perf_counter()
            with torch_threads(settings.threads):
                if row == SKLEARN_ROW:
                    X = BlockScaler(block_sizes=list(sizes)).fit(Z[train]).transform(Z)
                    P, i, j = sklearn_calibrated(X, means, train, test, attributes, settings)
                else:
                    params, soft = ROWS[row]
                    head = make_head("ranker", settings).set_params(**params)
                    model = fit_head(
                        "ranker",
                        Z,
                        sizes,
                        train,
                        means,
                        ratings,
                        attributes,
                        settings,
                        se if soft else None,
                        head,
                    )
                    scores = np.asarray(model[-1].score_items(model[0].transform(Z[test])))
            seconds[row] += time.perf_counter() - start
            for k, attribute in enumerate(attributes):
                m = means[test, k]
                if row == SKLEARN_ROW:
                    keep = m[i] != m[j]
                    y = (m[i] > m[j]).astype(np.float64)[keep]
                    p = P[keep, k]
                    y_both, p_both = np.concatenate([y, 1 - y]), np.concatenate([p, 1 - p])
                    acc = float(np.mean((p > 0.5) == (y > 0.5)))
                else:
                    _, y_both, p_both = pair_calibration(scores[:, k], m)
                    acc = pair_metrics(scores[:, k], m)[0]
                parts[row][attribute].append((y_both, p_both, acc))
            print(f"fold {fold + 1}/{args.folds} {row}: {seconds[row]:.0f} s so far", flush=True)

    results = {}
    print(f"\nECE of P(left ≻ right) on test pairs, {feature_set}, {args.folds} image-disjoint folds")
    print(f"{'row':40s} {'attribute':12s} {'pair acc':>8s} {'ECE both':>9s} {'ECE file':>9s} {'pooled':>7s}")
    for row in rows:
        results[row] = {}
        for attribute in attributes:
            per_fold = [both_ways(y, p) for y, p, _ in parts[row][attribute]]
            pooled = both_ways(*(np.concatenate([part[n] for part in parts[row][attribute]]) for n in (0, 1)))
            figures = {
                "pair_acc": round(float(np.mean([acc for *_, acc in parts[row][attribute]])), 4),
                "ece": round(float(np.mean([both for both, _ in per_fold])), 4),
                "ece_file_order": round(float(np.mean([file for _, file in per_fold])), 4),
                "ece_pooled": round(pooled[0], 4),
                "ece_per_fold": [round(both, 4) for both, _ in per_fold],
            }
            results[row][attribute] = figures
            print(
                f"{row:40s} {attribute:12s} {figures['pair_acc']:8.4f} {figures['ece']:9.4f} "
                f"{figures['ece_file_order']:9.4f} {figures['ece_pooled']:7.4f}"
            )
        results[row]["seconds"] = round(seconds[row], 1)
    figures = {
        "benchmark": "pair_calibration",
        "features": feature_set,
        "folds": args.folds,
        "results": results,
    }
    print(json.dumps(figures))
    table = calibration_table(results, attributes)
    print()
    print(markdown_table(table))
    title = (
        f"ECE of P(left ≻ right) on test pairs, both orders (file order), : pair accuracy; {feature_set}, "
        f"{args.pairs:,} consensus pairs per fold, {args.folds} image-disjoint folds, seed {args.seed}"
    )
    note = (
        "Per-fold mean ECE (10 bins) with each test pair counted in both orders; in brackets in file "
        "order only (image i < j on the left), which OMI's rating offsets by stimulus number bias. "
        "'seconds': training and scoring, all folds."
    )
    tags = [
        f"pairs{args.pairs}" if args.pairs != HeadSettings.n_pairs else None,
        None if use_dlib else "no-dlib",
        f"seed{args.seed}" if args.seed else None,
    ]
    save_result(
        args,
        result_name("pair_calibration", *tags),
        [frame_table("ece", title, table, note=note, strong=(next(iter(ROWS)),))],
        figures,
    )


def calibration_table(results: dict, attributes: list) -> pd.DataFrame:
    """One row per ranker, one column per attribute: ``ECE both (ECE file order) : pair accuracy``."""
    cells = {
        row: {
            **{
                a: f"{r[a]['ece']:.4f} ({r[a]['ece_file_order']:.4f}) : {r[a]['pair_acc']:.3f}"
                for a in attributes
            },
            "seconds": f"{r['seconds']:.0f}",
        }
        for row, r in results.items()
    }
    frame = pd.DataFrame.from_dict(cells, orient="index")
    frame.index.name = "ranker"
    return frame


if __name__ == "__main__":
    main()
