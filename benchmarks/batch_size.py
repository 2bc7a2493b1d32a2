"""Benchmark: ``batch_size='auto'`` against one fixed batch of 256 rows, on few and on many labels.

Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the shipped backbone
(``TimmEmbedder()``, EfficientNet-Lite0, 1280-d; cached, nothing downloaded). The label is
keep/delete: a face's mean ``--attribute`` rating above the median of all faces. Per repeat, 200
faces are held out at random and ``n`` of the others are the training set, for n = 45 and 800
(``--sizes``).

Models: ``RatingClassifier()`` (``batch_size='auto'``: at least eight steps per epoch, at most
256 rows), ``RatingClassifier(batch_size=256)`` (one batch per epoch while n ≤ 256), and
``LogisticRegression`` on standardized features (scikit-learn's defaults) as the linear
reference. Metric: accuracy on the held-out faces, mean ± sd over ``--repeats`` draws.

Hardware: printed. Ends with one JSON line; the table also goes to
``benchmarks/results/batch_size.json`` (``--no-save``: no file). Usage:
``python benchmarks/batch_size.py [--sizes 45 800] [--repeats 10] [--attribute trustworthy]
[--no-save]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept.heads import RatingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, omi_embeddings, save_result, table_record

HELD_OUT = 200
MODELS = {
    "RatingClassifier() (batch_size='auto')": lambda seed: RatingClassifier(random_state=seed),
    "RatingClassifier(batch_size=256)": lambda seed: RatingClassifier(batch_size=256, random_state=seed),
    "LogisticRegression (standardized)": lambda seed: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000)
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[45, 800])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--attribute", default="trustworthy")
    add_result_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(hardware_line(), flush=True)
    omi, Z = omi_embeddings([args.attribute])
    rating = omi.means[args.attribute].to_numpy()
    y = (rating > np.median(rating)).astype(int) + 1  # 1 delete, 2 keep
    scores: dict = {n: {name: [] for name in MODELS} for n in args.sizes}
    for n in args.sizes:
        if n > len(Z) - HELD_OUT:
            parser.error(f"--sizes: at most {len(Z) - HELD_OUT} training faces")
        for seed in range(args.repeats):
            order = np.random.RandomState(seed).permutation(len(Z))
            test, train = order[:HELD_OUT], order[HELD_OUT : HELD_OUT + n]
            for name, make in MODELS.items():
                model = make(seed).fit(Z[train], y[train])
                scores[n][name].append(float(np.mean(model.predict(Z[test]) == y[test])))
            print(f"n={n} seed {seed}: " + ", ".join(f"{v[-1]:.3f}" for v in scores[n].values()), flush=True)
    rows = [
        [f"{n:,}", *(f"{np.mean(scores[n][m]):.3f} ± {np.std(scores[n][m]):.3f}" for m in MODELS)]
        for n in args.sizes
    ]
    table = table_record(
        "accuracy",
        f"Keep/delete accuracy on {HELD_OUT} held-out OMI faces ({args.attribute} above its median), "
        f"mean ± sd over {args.repeats} draws",
        ["training faces", *MODELS],
        rows,
        note="EfficientNet-Lite0 features; the same faces and draws for every model.",
    )
    figures = {
        "sizes": args.sizes,
        "repeats": args.repeats,
        "attribute": args.attribute,
        "accuracy": {
            str(n): {m: [round(v, 4) for v in vals] for m, vals in s.items()} for n, s in scores.items()
        },
    }
    print(json.dumps(figures))
    save_result(args, "batch_size", [table], figures)


if __name__ == "__main__":
    main()
