"""Tuning a PairwiseRanker with Optuna: pruning, resuming, several workers
=======================================================================

Tune a PairwiseRanker on OMI faces with Optuna: epoch-level pruning, resume, several workers.

Data: the embedded One Million Impressions faces (``load_omi``; CC BY-NC-SA 4.0), one attribute,
pairs of faces labelled by which one has the higher mean rating (``consensus_pairs``).
Features: per-face embeddings of the shipped EfficientNet-Lite0 (``TimmEmbedder``), computed
once into the same cache as ``skpercept demo`` (so after the demo this costs nothing), or any
``.npy`` with one row per face in ``load_omi().images`` order (``--features``).

Protocol (selection never touches the test set):

1. 20 % of the *faces* are held out (``image_disjoint_train_test_split``); no test face appears
   in a training pair.
2. ``PerceptSearchCV`` tunes on training pairs only, with image-disjoint 3-fold CV, pruning
   bad trials per epoch, in a SQLite study. Run the script again and the study resumes: only
   missing trials run (``optuna-dashboard sqlite:///omi_study.db`` shows it live).
3. With ``--compare``, the same trial budget is run again without pruning (a second study in
   the same file) to measure how many epochs pruning saved.
4. The refitted best model is scored once on the held-out faces' pairs.

The last line is one JSON object: best_score, n_trials, n_pruned, epochs_run,
epochs_without_pruning (null without --compare), plus the unpruned best score and test score. Usage::

    python examples/optuna_study.py --n-trials 20 --compare

Several workers (on one machine or many) share one study through ``--storage``: a database URL
(``postgresql+psycopg://user:password@host/db``, ``pip install skpercept[postgres]``) or a
journal file on a filesystem every machine mounts (``/shared/omi_study.log``). Workers started
with ``--worker`` only run trials (no refit, no test score); the run without it runs trials
too, waits until the study holds ``--n-trials`` finished trials, then refits the best model
once and scores it. A worker killed with ``kill -9`` loses only its running trial, which
another worker retries once its heartbeat has been silent for 2 x ``--heartbeat-interval``.
Embed once first (``skpercept demo``, or one plain run) so that workers read the cache::

    storage=postgresql+psycopg://optuna:secret@db.example.org/optuna
    for i in 1 2 3; do python examples/optuna_study.py --storage "$storage" --worker & done
    python examples/optuna_study.py --storage "$storage"   # the 4th worker; refits at the end
    wait
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import optuna
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skpercept.datasets import consensus_pairs, load_omi
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.model_selection import ImageDisjointSplit, PerceptSearchCV, image_disjoint_train_test_split
from skpercept.preprocessing import PairFeatures


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--features",
        help=".npy of per-face embeddings (1004 rows); default: embed "
        "the faces with the shipped EfficientNet-Lite0 (cached)",
    )
    p.add_argument("--attribute", default="trustworthy")
    p.add_argument("--n-pairs", type=int, default=6000, help="training pairs drawn among train faces")
    p.add_argument("--n-trials", type=int, default=20)
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument(
        "--storage",
        default="sqlite:///omi_study.db",
        help="database URL, or the path of a journal file (shared filesystem)",
    )
    p.add_argument("--study-name", default="omi-pairwise-ranker")
    p.add_argument("--compare", action="store_true", help="also run the study without pruning")
    p.add_argument(
        "--worker", action="store_true", help="only run trials of the shared study: no refit, no test score"
    )
    p.add_argument("--heartbeat-interval", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def embedding_lookup(paths: np.ndarray, features: np.ndarray) -> FunctionTransformer:
    """Item transformer: image path -> its cached embedding row (standardized per dimension)."""
    feats = (features - features.mean(0)) / (features.std(0) + 1e-6)
    row = {p: i for i, p in enumerate(paths)}
    return FunctionTransformer(lambda items: feats[[row[p] for p in items]])


def search_space(trial: optuna.Trial) -> dict:
    width = trial.suggest_int("width", 16, 512, log=True)
    depth = trial.suggest_int("depth", 1, 2)
    return {
        "ranker__hidden_layer_sizes": tuple(max(8, width // 2**i) for i in range(depth)),
        "ranker__lr": trial.suggest_float("lr", 1e-5, 3e-2, log=True),
        "ranker__weight_decay": trial.suggest_float("weight_decay", 1e-5, 1.0, log=True),
        "ranker__dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def run_study(pipe, X, y, args, name: str, pruner) -> PerceptSearchCV:
    search = PerceptSearchCV(
        pipe,
        search_space,
        cv=ImageDisjointSplit(n_splits=3, random_state=args.seed),
        scoring="accuracy",
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=name,
        pruner=pruner,
        random_state=args.seed,
        refit=not args.worker,
        heartbeat_interval=args.heartbeat_interval,
    )
    start = time.perf_counter()
    search.fit(X, y)
    res = search.cv_results_
    print(
        f"\n{name}: {search.n_trials_} trials, {search.n_pruned_} pruned, {search.n_failed_} failed, "
        f"{search.epochs_run_} epochs, {time.perf_counter() - start:.0f} s this run"
    )
    print(f"{'trial':>5} {'state':>8} {'epochs':>6} {'mean ± std (3 folds)':>22}")
    for i in np.argsort(res["rank_test_score"])[:5]:
        print(
            f"{res['number'][i]:>5} {res['state'][i]:>8} {res['n_epochs'][i]:>6} "
            f"{res['mean_test_score'][i]:>13.4f} ± {res['std_test_score'][i]:.4f}"
        )
    print(f"best params: {search.best_params_}")
    return search


def main() -> None:
    args = parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    omi = load_omi([args.attribute])
    paths = omi.images["image"].to_numpy()
    if args.features:
        features = np.load(args.features)
    else:  # the demo's settings, so its cache is reused
        embedder = TimmEmbedder(
            crop_pct=1.0,
            tta=True,
            normalize=False,
            num_workers=2,
            cache_dir=default_cache_dir(),
            progress=True,
            device="cpu",
        )
        features = embedder.fit_transform(paths)
    if len(features) != len(paths):
        raise ValueError(f"{args.features} has {len(features)} rows, OMI has {len(paths)} faces.")

    # Hold out 20 % of the faces; every pair is built within one side of the cut.
    train_faces, test_faces = image_disjoint_train_test_split(
        omi.means, test_size=0.2, random_state=args.seed
    )
    kw = dict(attributes=args.attribute, ties="drop", random_state=args.seed)
    train = consensus_pairs(train_faces, n_pairs=args.n_pairs, **kw)
    test = consensus_pairs(test_faces, n_pairs=args.n_pairs // 4, **kw)
    X_train, y_train = train[["image_a", "image_b"]], train[args.attribute].to_numpy().astype(int)
    X_test, y_test = test[["image_a", "image_b"]], test[args.attribute].to_numpy().astype(int)

    pipe = Pipeline(
        [
            ("pairs", PairFeatures(item_transformer=embedding_lookup(paths, features))),
            (
                "ranker",
                PairwiseRanker(
                    max_epochs=args.max_epochs,
                    early_stopping=False,
                    batch_size=128,
                    device="cpu",
                    random_state=args.seed,
                ),
            ),
        ]
    )
    print(
        f"OMI {args.attribute}: {len(train)} training pairs over {len(train_faces)} faces, "
        f"{len(test)} test pairs over {len(test_faces)} held-out faces; features {features.shape}; "
        f"{platform.processor() or platform.machine()}, CPU"
    )

    pruned = run_study(pipe, X_train, y_train, args, args.study_name, pruner=None)
    if args.worker:
        return  # the run without --worker refits and scores, once, from the whole study
    unpruned = None
    if args.compare:
        unpruned = run_study(
            pipe, X_train, y_train, args, args.study_name + "-nopruning", pruner=optuna.pruners.NopPruner()
        )
    test_score = pruned.score(X_test, y_test)  # once, after selection
    print(f"\nheld-out pair accuracy of the refitted best model: {test_score:.4f}")
    summary = {
        "best_score": round(pruned.best_score_, 4),
        "n_trials": pruned.n_trials_,
        "n_pruned": pruned.n_pruned_,
        "epochs_run": pruned.epochs_run_,
        "epochs_without_pruning": unpruned.epochs_run_ if unpruned else None,
        "best_score_without_pruning": round(unpruned.best_score_, 4) if unpruned else None,
        "epoch_ratio": round(pruned.epochs_run_ / unpruned.epochs_run_, 3) if unpruned else None,
        "test_score": round(test_score, 4),
    }
    if unpruned:
        print(
            f"pruning spent {summary['epoch_ratio']:.0%} of the epochs; best CV score "
            f"{pruned.best_score_:.4f} vs {unpruned.best_score_:.4f} without pruning"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
