"""Benchmark: can a trained head beat ridge regression on the same frozen OMI features?

Data, split and metric as ``benchmarks/omi.py``: the 1,004 One Million Impressions faces shipped
with skpercept (CC BY-NC-SA 4.0), image-disjoint K-fold over faces (seed 0), consensus pair
accuracy on all pairs of held-out faces for trustworthy / attractive / smart, averaged over folds.
Features: ``--features lite0`` (EfficientNet-Lite0, the demo's embedding) or ``'lite0 flip +
dlib'`` (flip-averaged Lite0 beside dlib face descriptors, blocks balanced by ``BlockScaler``).

Rows, each fitted on the training faces' mean ratings only:

- ridge: ``RidgeCV``, penalty per attribute by leave-one-out (the baseline of ``omi.py``);
- kernel ridge: ``KernelRidge`` (RBF), penalty and width chosen by 3-fold inner CV per
  attribute — a flexible non-linear model: if it cannot beat ridge, the features hold little
  non-linear signal for any head to find;
- regressor: ``RatingRegressor`` with the demo's settings (one 128-unit hidden layer);
- regressor, 34 attributes: the same head trained on all 34 OMI attributes at once (the other
  33 as auxiliary targets sharing the hidden layer), scored on the three;
- regressor, 5 seeds: the mean prediction of five regressors that differ only in seed.

Ends with one JSON line; the table and figures also go to
``benchmarks/results/omi_heads[-lite0-flip-dlib][-seedS].json`` (``--no-save``: no file). Usage:
``python benchmarks/omi_heads.py [--features lite0|'lite0 flip + dlib'] [--folds 5] [--seed 0] [--no-save]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from skpercept._utils import torch_threads
from skpercept.datasets import load_omi
from skpercept.embed import default_cache_dir
from skpercept.heads import HeadSettings, make_head
from skpercept.model_selection import ImageDisjointSplit
from skpercept.preprocessing import BlockScaler
from skpercept.recipes import pair_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import (  # omi.py's embeddings, from the same cache
    add_result_options,
    embed_feature_sets,
    result_name,
    save_result,
    table_record,
)

TARGETS = ["trustworthy", "attractive", "smart"]


def main() -> None:
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="lite0", choices=["lite0", "lite0 flip + dlib"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    add_result_options(parser)
    args = parser.parse_args()

    omi = load_omi(None)  # every attribute: the 34-attribute row trains on all of them
    attributes = list(omi.attributes)
    target_cols = [attributes.index(a) for a in TARGETS]
    means = omi.means[attributes].to_numpy(np.float64)
    feature_sets, _ = embed_feature_sets(omi, args.cache_dir, "dlib" in args.features, device="cpu")
    Z, sizes = feature_sets[args.features]
    settings = HeadSettings(seed=args.seed, device="cpu")
    print(
        f"OMI: {len(Z)} faces, features {args.features!r} ({Z.shape[1]}-d); {args.folds}-fold "
        f"image-disjoint CV, seed {args.seed}; {os.cpu_count()} CPU(s)",
        flush=True,
    )

    def regressor(seed=args.seed):
        return make_head("regressor", settings).set_params(random_state=seed)

    def kernel_ridge(d):
        grid = {"alpha": [0.1, 1.0, 10.0], "gamma": [g / d for g in (0.25, 0.5, 1.0, 2.0)]}
        return GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=3)

    def fit_predict(row, X, Xt, y_all):
        y = y_all[:, target_cols]
        if row == "ridge":
            return make_head("ridge", settings).fit(X, y).predict(Xt)
        if row == "kernel ridge":
            return np.column_stack(
                [kernel_ridge(X.shape[1]).fit(X, y[:, k]).predict(Xt) for k in range(y.shape[1])]
            )
        if row == "regressor":
            return regressor().fit(X, y).predict(Xt)
        if row == "regressor, 34 attributes":
            return np.asarray(regressor().fit(X, y_all).predict(Xt))[:, target_cols]
        if row == "regressor, 5 seeds":
            return np.mean([regressor(args.seed + s).fit(X, y).predict(Xt) for s in range(5)], axis=0)
        raise ValueError(row)

    rows = ["ridge", "kernel ridge", "regressor", "regressor, 34 attributes", "regressor, 5 seeds"]
    accuracy = {r: [] for r in rows}
    seconds = dict.fromkeys(rows, 0.0)
    cv = ImageDisjointSplit(n_splits=args.folds, random_state=args.seed)
    with torch_threads(settings.threads):
        for fold, (train, test) in enumerate(cv.split(omi.means[["image"]])):
            scaler = BlockScaler(block_sizes=sizes).fit(Z[train])
            X, Xt = scaler.transform(Z[train]), scaler.transform(Z[test])
            for row in rows:
                start = time.perf_counter()
                scores = np.asarray(fit_predict(row, X, Xt, means[train])).reshape(len(test), -1)
                seconds[row] += time.perf_counter() - start
                accuracy[row].append(
                    [pair_metrics(scores[:, k], means[test, c])[0] for k, c in enumerate(target_cols)]
                )
            print(f"fold {fold + 1}/{args.folds} done", flush=True)

    result = {r: dict(zip(TARGETS, np.round(np.mean(a, axis=0), 4).tolist())) for r, a in accuracy.items()}
    print(f"\n{'model':<26}" + "".join(f"{a:>13}" for a in TARGETS) + f"{'seconds':>9}")
    for r in rows:
        print(f"{r:<26}" + "".join(f"{result[r][a]:13.3f}" for a in TARGETS) + f"{seconds[r]:9.1f}")
    figures = {
        "benchmark": "omi_heads",
        "features": args.features,
        "folds": args.folds,
        "seed": args.seed,
        "pair_acc": result,
        "seconds": {r: round(s, 1) for r, s in seconds.items()},
    }
    print(json.dumps(figures))
    table = table_record(
        "pair-accuracy",
        f"Heads against ridge on frozen features {args.features!r}: pair accuracy on held-out OMI faces "
        f"({len(Z)} faces, {args.folds} image-disjoint folds, seed {args.seed})",
        ["model", *TARGETS, "seconds"],
        [[r, *(f"{result[r][a]:.3f}" for a in TARGETS), f"{seconds[r]:.1f}"] for r in rows],
        note="Every row fitted on the training faces' mean ratings; seconds: fitting and predicting, all folds.",
    )
    tags = ["" if args.features == "lite0" else args.features, f"seed{args.seed}" if args.seed else None]
    save_result(args, result_name("omi_heads", *tags), [table], figures)


if __name__ == "__main__":
    main()
