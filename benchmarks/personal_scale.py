"""Benchmark: one person's taste at scale — fitting, adding people and predicting as people grow.

Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the shipped backbone
(``TimmEmbedder()``, EfficientNet-Lite0, 1280-d; cached), and simulated people as in
``benchmarks/personal.py`` (a random mixture of OMI's per-face attribute means plus a small
personal direction in embedding space; Bradley–Terry judgments at a repeat agreement of 0.85).
For each number of people ``N`` (100, 1,000, 10,000, 100,000 by default), every person answers
20 random pairs of faces; the rows are what a Pipeline gives the head, ``[face a | person
one-hot | face b | person one-hot]`` (float32). Steps, each timed with its peak memory:

- ``rows``: building the pair rows;
- ``fit``: ``PairwiseRanker(user_features=...)`` at its defaults (``user_alpha='auto'``,
  ``choose_trunk='auto'``, the learned prior, a temperature);
- ``add one person``: ``fit_users`` of one new person from 20 judgments (median of 5);
- ``predict``: ``predict_proba`` of every training row.

Each ``N`` runs in a fresh process (``--one N``), so a step's peak memory is its own: the
resident set's high-water mark after the step, less the process's before the rows are built
(torch, the embeddings and the people's tastes). Growth exponents are the slopes of log time
against log judgments between successive sizes (1 = linear). A size whose pair rows would not
fit in ``--max-gb`` of memory is not run; the script says what it would need.

Hardware: printed. Ends with one JSON line; the tables and figures also go to
``benchmarks/results/personal_scale.json`` (``--no-save``: no file). Usage:
``python benchmarks/personal_scale.py [--people 100 1000 10000 100000] [--per-person 20]
[--max-gb 8] [--no-save]``
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skpercept.heads import PairwiseRanker

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from _shared import (
    add_result_options,
    hardware_line,
    omi_attributes,
    omi_embeddings,
    save_result,
    table_record,
)
from personal import Simulator, pair_rows

FEATURES = 1280  # EfficientNet-Lite0's embedding width


def peak_mb() -> float:
    """The process's resident high-water mark so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def row_gb(n_people: int, per_person: int) -> float:
    """Memory of the dense float32 pair rows for ``n_people``."""
    return n_people * per_person * 2 * (FEATURES + n_people) * 4 / 1e9


def one_size(n_people: int, per_person: int, seed: int = 0) -> dict:
    """Run every step for ``n_people`` in this process; the figures as a dict."""
    torch.set_num_threads(2)
    omi, Z = omi_embeddings(None)
    attributes = omi_attributes(omi)
    sim = Simulator(attributes.to_numpy(np.float64), Z, seed)
    rng = np.random.RandomState(seed)
    who = np.repeat(np.arange(n_people), per_person)
    a = rng.randint(0, len(Z), len(who))
    b = (a + 1 + rng.randint(0, len(Z) - 1, len(who))) % len(Z)
    y = np.empty(len(who), dtype=np.float32)
    for person in range(n_people):  # one taste at a time: n_people × 1,004 floats never at once
        rows = slice(person * per_person, (person + 1) * per_person)
        y[rows] = sim.judge(sim.utility(), a[rows], b[rows])
    base = peak_mb()
    out: dict = {"people": n_people, "judgments": int(len(who)), "baseline_mb": round(base)}

    def step(name: str, run):
        start = time.perf_counter()
        result = run()
        out[f"{name}_s"] = round(time.perf_counter() - start, 2)
        out[f"{name}_peak_mb"] = round(peak_mb() - base)
        return result

    def rows() -> np.ndarray:
        users = np.zeros((len(who), n_people), dtype=np.float32)
        users[np.arange(len(who)), who] = 1.0
        return pair_rows(Z, a, b, users)

    X = step("rows", rows)
    head = PairwiseRanker(user_features=list(range(FEATURES, FEATURES + n_people)), random_state=seed)
    step("fit", lambda: head.fit(X, y))
    out["trunk"] = str(head.hidden_layer_sizes_)
    out["user_alpha"] = float(head.user_alpha_[0])
    out["epochs"] = len(head.net_.history)

    def add_one() -> float:
        times = []
        for k in range(5):
            pick = np.random.RandomState(100 + k).randint(0, len(Z), size=(2, per_person))
            block = np.zeros((per_person, n_people + 1), dtype=np.float32)
            block[:, -1] = 1.0
            model = copy.deepcopy(head)
            start = time.perf_counter()
            model.fit_users(pair_rows(Z, pick[0], pick[1], block), sim.judge(sim.utility(), *pick))
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    out["add_one_person_s"] = round(step("add_one_person", add_one), 3)  # the median, not the total
    step("predict", lambda: head.predict_proba(X))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--per-person", type=int, default=20)
    parser.add_argument("--max-gb", type=float, default=8.0, help="largest pair rows to build")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one size (a child process)
    add_result_options(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.per_person)))
        return
    print(hardware_line(), flush=True)
    runs, stopped = [], {}
    for n in args.people:
        need = row_gb(n, args.per_person)
        if need > args.max_gb:
            stopped[n] = round(need, 1)
            print(f"{n:>7} people: not run — the dense pair rows alone would take {need:.1f} GB", flush=True)
            continue
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--per-person", str(args.per_person)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            print(child.stderr[-2000:], flush=True)
            stopped[n] = f"failed (exit {child.returncode})"
            continue
        run = json.loads(child.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"{n:>7} people, {run['judgments']:>9,} judgments: rows {run['rows_s']:.1f} s "
            f"(+{run['rows_peak_mb']} MB) | fit {run['fit_s']:.1f} s (+{run['fit_peak_mb']} MB, "
            f"{run['epochs']} epochs, trunk {run['trunk']}, user_alpha {run['user_alpha']:g}) | add one "
            f"person {run['add_one_person_s']:.3f} s | predict {run['predict_s']:.1f} s "
            f"(+{run['predict_peak_mb']} MB)",
            flush=True,
        )
    growth = {}
    for first, second in itertools.pairwise(runs):
        ratio = np.log(second["judgments"] / first["judgments"])
        key = f"{first['people']}->{second['people']}"
        growth[key] = {
            step: round(float(np.log(second[f"{step}_s"] / max(first[f"{step}_s"], 1e-3)) / ratio), 2)
            for step in ("rows", "fit", "add_one_person", "predict")
        }
        print(f"growth exponent {key}: {growth[key]}", flush=True)
    figures = {"benchmark": "personal_scale", "runs": runs, "growth": growth, "not_run_gb": stopped}
    print(json.dumps(figures))
    save_result(args, "personal_scale", scale_tables(runs, growth, stopped, args.per_person), figures)


def scale_tables(runs: list, growth: dict, stopped: dict, per_person: int) -> list[dict]:
    """Seconds and peak memory of each step per number of people; growth exponents."""
    rows = [
        [
            f"{r['people']:,}",
            f"{r['judgments']:,}",
            f"{r['rows_s']:.1f} s, +{r['rows_peak_mb']} MB",
            f"{r['fit_s']:.1f} s, +{r['fit_peak_mb']} MB",
            f"{r['epochs']}, {r['trunk']}, {r['user_alpha']:g}",
            f"{r['add_one_person_s']:.3f} s",
            f"{r['predict_s']:.1f} s, +{r['predict_peak_mb']} MB",
        ]
        for r in runs
    ]
    rows += [
        [
            f"{n:,}",
            f"{n * per_person:,}",
            f"not run: {why} GB of pair rows" if not isinstance(why, str) else why,
            "",
            "",
            "",
            "",
        ]
        for n, why in stopped.items()
    ]
    tables = [
        table_record(
            "steps",
            f"PairwiseRanker(user_features=...) at its defaults as people grow ({per_person} judgments each)",
            [
                "people",
                "judgments",
                "pair rows",
                "fit",
                "epochs, trunk, user_alpha",
                "add one person",
                "predict",
            ],
            rows,
            note="Peak memory: the step's resident high-water mark above the process's before the rows "
            "were built; each size in a fresh process. Add one person: median of 5.",
        )
    ]
    if growth:
        steps = ("rows", "fit", "add_one_person", "predict")
        tables.append(
            table_record(
                "growth",
                "Growth exponents: slope of log time against log judgments (1 = linear)",
                ["sizes", *(s.replace("_", " ") for s in steps)],
                [[k, *(f"{v[s]:.2f}" for s in steps)] for k, v in growth.items()],
            )
        )
    return tables


if __name__ == "__main__":
    main()
