"""Grid search over embeddings and head settings, without leaks
============================================================

GridSearchCV over the image features and the head of a pair Pipeline, without leaks.

Data: the embedded OMI faces (``load_omi``; CC BY-NC-SA 4.0), pairs of faces labelled by which
one has the higher mean rating of one attribute. Features: one or more cached per-face
embedding files (``.npy``, one row per face in ``load_omi().images`` order); the grid chooses
among them (the "embedder" step) and among head settings at the same time.

Plain scikit-learn does the search: ``GridSearchCV`` with skpercept's leak-free
``ImageDisjointSplit`` (no validation face appears in a training pair) and skpercept's
``pairwise_accuracy_scorer``. A held-out 20 % of the faces is scored once, after selection.
Prints the grid as a table (mean ± std over folds) and one JSON line. Usage::

    python examples/grid_search.py --features lite0.npy lite0_flip.npy
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.datasets import consensus_pairs, load_omi
from skpercept.heads import PairwiseRanker
from skpercept.metrics import pairwise_accuracy_scorer
from skpercept.model_selection import ImageDisjointSplit, image_disjoint_train_test_split
from skpercept.preprocessing import PairFeatures


def embedding_lookup(paths: np.ndarray, features: np.ndarray) -> FunctionTransformer:
    """Item transformer: image path -> its cached embedding row (standardized per dimension)."""
    feats = (features - features.mean(0)) / (features.std(0) + 1e-6)
    row = {p: i for i, p in enumerate(paths)}
    return FunctionTransformer(lambda items: feats[[row[p] for p in items]])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", nargs="+", required=True, help=".npy per-face embeddings")
    p.add_argument("--attribute", default="trustworthy")
    p.add_argument("--n-pairs", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    omi = load_omi([args.attribute])
    paths = omi.images["image"].to_numpy()
    embedders = {Path(f).stem: embedding_lookup(paths, np.load(f)) for f in args.features}

    train_faces, test_faces = image_disjoint_train_test_split(
        omi.means, test_size=0.2, random_state=args.seed
    )
    kw = dict(attributes=args.attribute, ties="drop", random_state=args.seed)
    train = consensus_pairs(train_faces, n_pairs=args.n_pairs, **kw)
    test = consensus_pairs(test_faces, n_pairs=args.n_pairs // 4, **kw)
    X, y = train[["image_a", "image_b"]], train[args.attribute].to_numpy().astype(int)

    pipe = Pipeline(
        [
            ("pairs", PairFeatures(item_transformer=next(iter(embedders.values())))),
            (
                "ranker",
                PairwiseRanker(
                    max_epochs=100, patience=5, batch_size=128, device="cpu", random_state=args.seed
                ),
            ),
        ]
    )
    grid = {
        "pairs__item_transformer": list(embedders.values()),
        "ranker__hidden_layer_sizes": [(), (64,)],
        "ranker__lr": [1e-3, 1e-2],
    }
    search = GridSearchCV(
        pipe,
        grid,
        cv=ImageDisjointSplit(n_splits=3, random_state=args.seed),
        scoring=pairwise_accuracy_scorer,
        n_jobs=1,
    )
    search.fit(X, y)

    names = {id(t): n for n, t in embedders.items()}
    res = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame(
        {
            "features": [names.get(id(t), repr(t)) for t in res["param_pairs__item_transformer"]],
            "hidden": res["param_ranker__hidden_layer_sizes"].astype(str),
            "lr": res["param_ranker__lr"],
            "pair acc": res["mean_test_score"].round(4),
            "± std": res["std_test_score"].round(4),
            "rank": res["rank_test_score"],
        }
    ).sort_values("rank")
    print(
        f"OMI {args.attribute}: {len(train)} training pairs, image-disjoint 3-fold CV; "
        f"{len(test)} test pairs on {len(test_faces)} held-out faces"
    )
    print(table.to_string(index=False))
    test_score = pairwise_accuracy_scorer(
        search.best_estimator_, test[["image_a", "image_b"]], test[args.attribute].to_numpy().astype(int)
    )
    best = table.iloc[0]
    print(
        f"best: {best['features']}, hidden={best['hidden']}, lr={best['lr']}; "
        f"held-out pair accuracy {test_score:.4f}"
    )
    print(
        json.dumps(
            {
                "best_features": best["features"],
                "best_hidden": best["hidden"],
                "best_lr": float(best["lr"]),
                "best_score": round(search.best_score_, 4),
                "test_score": round(test_score, 4),
                "n_candidates": len(table),
            }
        )
    )


if __name__ == "__main__":
    main()
