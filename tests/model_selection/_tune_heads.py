"""Tiny pair data, a tiny PairwiseRanker and a tuning worker for the tuning tests.

``python tests/model_selection/_tune_heads.py --storage ... --study-name ... --n-trials ...`` runs one worker of a
shared study (the subprocesses of tests/model_selection/test_workers.py).
"""

from __future__ import annotations

import numpy as np

from skpercept.heads._ranking import PairwiseRanker


def make_head(**params) -> PairwiseRanker:
    """A small, fast, deterministic ranker: fixed epochs (no early stopping) on CPU."""
    defaults = dict(
        hidden_layer_sizes=(8,),
        lr=0.03,
        max_epochs=8,
        early_stopping=False,
        batch_size=32,
        device="cpu",
        random_state=0,
    )
    return PairwiseRanker(**{**defaults, **params})


def make_data(n: int = 60, seed: int = 0, n_items: int = 15):
    """Pairs of items whose first feature decides the preference: X = [left | right]."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, 3))
    a, b = rng.randint(0, n_items, size=(2, 4 * n))
    keep = np.flatnonzero(a != b)[:n]
    a, b = a[keep], b[keep]
    X = np.hstack([items[a], items[b]])
    y = (items[a, 0] > items[b, 0]).astype(int)
    return X, y


def lr_space(trial) -> dict:
    """The search space of the distributed-tuning tests: the head's learning rate."""
    return {"head__lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}


def run_worker(argv: list[str] | None = None) -> None:
    """One worker process of a shared study (tests/model_selection/test_workers.py starts several).

    Prints one JSON line: the worker's pid, whether it refitted, and the study's trial count.
    """
    import argparse
    import json
    import os
    import time
    from pathlib import Path

    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skpercept.model_selection._search import PerceptSearchCV

    p = argparse.ArgumentParser()
    p.add_argument("--storage", required=True)
    p.add_argument("--study-name", required=True)
    p.add_argument("--n-trials", type=int, required=True)
    p.add_argument("--heartbeat-interval", type=int, default=1)
    p.add_argument("--trial-sleep", type=float, default=0.0, help="seconds added to every trial")
    p.add_argument("--hang-marker", help="hang in this worker's first trial, after creating this file")
    p.add_argument("--ready-dir", help="wait until --n-workers workers have written a file here")
    p.add_argument("--n-workers", type=int, default=1)
    p.add_argument("--refit", action="store_true")
    args = p.parse_args(argv)

    def space(trial):
        trial.set_user_attr("worker", os.getpid())
        params = lr_space(trial)
        if args.hang_marker and not Path(args.hang_marker).exists():
            Path(args.hang_marker).write_text(str(trial.number))
            time.sleep(600)  # killed here by the test
        time.sleep(args.trial_sleep)
        return params

    if args.ready_dir:  # start the study together, so that every worker gets trials
        Path(args.ready_dir, str(os.getpid())).write_text("")
        deadline = time.monotonic() + 300
        while len(os.listdir(args.ready_dir)) < args.n_workers and time.monotonic() < deadline:
            time.sleep(0.05)
    X, y = make_data(n=40)
    pipe = Pipeline([("scale", StandardScaler()), ("head", make_head(max_epochs=3))])
    search = PerceptSearchCV(
        pipe,
        space,
        cv=2,
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=args.study_name,
        random_state=0,
        refit=args.refit,
        heartbeat_interval=args.heartbeat_interval,
    ).fit(X, y)
    print(
        json.dumps({"pid": os.getpid(), "refit": hasattr(search, "best_estimator_"), "n": search.n_trials_})
    )


if __name__ == "__main__":
    run_worker()
