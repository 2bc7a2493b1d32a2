"""Benchmark: one Optuna study of a PairwiseRanker run by 2 worker processes against 1, and a
worker killed with ``kill -9`` mid-trial.

Data: the embedded One Million Impressions faces (``load_omi``; CC BY-NC-SA 4.0), attribute
``trustworthy``; per-face features of the shipped EfficientNet-Lite0 (``TimmEmbedder`` with the
demo's settings and cache, so after ``skpercept demo`` embedding costs nothing). 20 % of the
faces are held out (``image_disjoint_train_test_split``) and never used here; the study tunes on
``--n-pairs`` consensus pairs among the other 80 %, with image-disjoint 3-fold CV.

Study: ``PerceptSearchCV`` over a ``PairFeatures`` + ``PairwiseRanker`` Pipeline (hidden width
and depth, lr, weight decay, dropout), ``--max-epochs`` epochs per fold, median pruning per
epoch, ``random_state=0`` (trials seeded by trial number, so trial *k* draws the same random
configuration in every arm: the first 10 trials, TPE's random start-up, are the same
configurations in both arms), storage a journal file in a temporary folder (or ``--storage``,
e.g. a PostgreSQL URL). Every worker is a fresh process limited to one thread
(``torch.set_num_threads(1)``, ``OMP/MKL/OPENBLAS_NUM_THREADS=1``), so 2 workers on 2 cores is a
fair test.

Arms (1 and 2 alternate, ``--repeats`` times each, each time on a new study; the ratios are
of the medians):
1. one worker runs ``--n-trials`` trials;
2. two workers share a new study of ``--n-trials`` trials;
3. two workers share a third study (heartbeat 3 s); once both run a trial, one is killed with
   SIGKILL; the survivor fails the silent trial after the grace period (6 s), retries its
   parameters and completes the study. Every trial must end COMPLETE, PRUNED, or FAIL with
   exactly one finished retry.

Throughput is finished trials (and epochs) per minute of the study's own clock, from the first
trial's start to the last trial's end, so process start-up (importing torch) is not counted;
the whole wall time is printed too. Before each round a control runs 2 processes of
single-threaded matrix products against 1: on 2 free cores it gives 2.0x, and it shows how much
parallelism the machine really had then. Two diagnostics tell a busy machine from coordination
overhead: seconds per epoch inside trials (equal in both arms when each worker has a core of
its own) and ``busy``, the share of workers x study time spent inside trials (near 1 when the
workers do not wait on each other or on the storage). The machine may be shared: its load
average is printed, and the ratios of one run on a loaded machine are noisy.

Usage: python benchmarks/tune_workers.py [--n-trials 12] [--repeats 3] [--max-epochs 10] [--n-pairs 6000]
       [--no-save]
The last line is one JSON object; the tables and figures also go to
``benchmarks/results/tune_workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One thread per worker, set before numpy/torch load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import add_result_options, hardware_line, save_result, table_record  # noqa: E402

ATTRIBUTE, SEED = "trustworthy", 0
ENV_1_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-trials", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3, help="runs of each arm, alternating")
    p.add_argument("--kill-trials", type=int, default=8, help="trials of the kill -9 study")
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--n-pairs", type=int, default=6000)
    p.add_argument("--storage", help="database URL; default: a journal file per study in a temp folder")
    # Worker mode (started by this script).
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--study-name", help=argparse.SUPPRESS)
    p.add_argument("--heartbeat-interval", type=int, default=10, help=argparse.SUPPRESS)
    add_result_options(p)
    return p.parse_args()


def search_space(trial: optuna.Trial) -> dict:
    width = trial.suggest_int("width", 16, 256, log=True)
    depth = trial.suggest_int("depth", 1, 2)
    return {
        "ranker__hidden_layer_sizes": tuple(max(8, width // 2**i) for i in range(depth)),
        "ranker__lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        "ranker__weight_decay": trial.suggest_float("weight_decay", 1e-5, 1.0, log=True),
        "ranker__dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def prepare_data(args: argparse.Namespace, folder: Path) -> tuple[Path, str]:
    """Embed the faces (cached), build the training pairs; save both for the workers."""
    from skpercept.datasets import consensus_pairs, load_omi
    from skpercept.embed import TimmEmbedder, default_cache_dir
    from skpercept.model_selection import image_disjoint_train_test_split

    omi = load_omi([ATTRIBUTE])
    paths = omi.images["image"].to_numpy()
    embedder = TimmEmbedder(  # the demo's settings: its cache is reused
        crop_pct=1.0, tta=True, normalize=False, cache_dir=default_cache_dir(), device="cpu"
    )
    features = embedder.fit_transform(paths)
    train_faces, _ = image_disjoint_train_test_split(omi.means, test_size=0.2, random_state=SEED)
    pairs = consensus_pairs(
        train_faces, attributes=ATTRIBUTE, n_pairs=args.n_pairs, ties="drop", random_state=SEED
    )
    data = folder / "data.npz"
    np.savez(
        data,
        paths=paths,
        features=features,
        X=pairs[["image_a", "image_b"]].to_numpy(),
        y=pairs[ATTRIBUTE].to_numpy().astype(int),
    )
    summary = (
        f"OMI {ATTRIBUTE}: {len(pairs)} training pairs over {len(train_faces)} faces (20 % of "
        f"{len(paths)} faces held out, unused), features {features.shape}, image-disjoint 3-fold CV"
    )
    return data, summary


def run_worker(args: argparse.Namespace) -> None:
    """One worker: run trials of the shared study until it holds ``--n-trials`` finished ones."""
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skpercept.heads import PairwiseRanker
    from skpercept.model_selection import ImageDisjointSplit, PerceptSearchCV
    from skpercept.preprocessing import PairFeatures

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = np.load(args.data, allow_pickle=True)
    feats = data["features"]
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    row = {p: i for i, p in enumerate(data["paths"])}
    lookup = FunctionTransformer(lambda items: feats[[row[p] for p in items]])
    X = pd.DataFrame(data["X"], columns=["image_a", "image_b"])
    ranker = PairwiseRanker(
        max_epochs=args.max_epochs, early_stopping=False, batch_size=128, device="cpu", random_state=SEED
    )
    pipe = Pipeline([("pairs", PairFeatures(item_transformer=lookup)), ("ranker", ranker)])
    search = PerceptSearchCV(
        pipe,
        search_space,
        cv=ImageDisjointSplit(n_splits=3, random_state=SEED),
        scoring="accuracy",
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=args.study_name,
        random_state=SEED,
        refit=False,
        heartbeat_interval=args.heartbeat_interval,
    )
    search.fit(X, data["y"])
    print(json.dumps({"pid": os.getpid(), "n_trials": search.n_trials_}))


def start_workers(args, data: Path, storage: str, study: str, n: int, n_trials: int, heartbeat: int):
    cmd = [sys.executable, __file__, "--worker", "--data", str(data), "--storage", storage]
    cmd += ["--study-name", study, "--n-trials", str(n_trials), "--max-epochs", str(args.max_epochs)]
    cmd += ["--heartbeat-interval", str(heartbeat)]
    env = {**os.environ, **ENV_1_THREAD}
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]


def finish(procs: list, allow_killed: bool = False) -> None:
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0 and not (allow_killed and proc.returncode == -signal.SIGKILL):
            raise RuntimeError(f"worker {proc.pid} exited {proc.returncode}:\n{err.decode()[-3000:]}")


def load_trials(storage: str, study: str) -> list:
    from skpercept.model_selection import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage, 10)).trials


def study_figures(trials: list, wall_s: float, n_workers: int) -> dict:
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in trials)
    minutes = span.total_seconds() / 60
    # Seconds inside trials: per epoch, it shows whether each worker had a core to itself;
    # over workers x span, how much of the time workers spent in trials rather than waiting.
    in_trials = sum(t.duration.total_seconds() for t in done)
    best = max((t for t in done if t.state.name == "COMPLETE"), key=lambda t: t.value)
    epochs = sum(t.user_attrs.get("n_epochs", 0) for t in done)
    return {
        "trials": len(done),
        "pruned": sum(t.state.name == "PRUNED" for t in done),
        "epochs": int(epochs),
        "study_s": round(span.total_seconds(), 1),
        "wall_s": round(wall_s, 1),
        "trials_per_min": round(len(done) / minutes, 2),
        "epochs_per_min": round(epochs / minutes, 1),
        "s_per_epoch_in_trial": round(in_trials / epochs, 3),
        "busy": round(in_trials / (n_workers * span.total_seconds()), 2),
        "best_score": round(best.value, 4),
        "best_std": round(best.user_attrs["std_test_score"], 4),
        "best_trial": best.number,
    }


def throughput_arm(args, data: Path, folder: Path, n_workers: int, repeat: int) -> dict:
    study = f"workers-{n_workers}-{repeat}"
    storage = args.storage or str(folder / f"{study}.log")
    start = time.perf_counter()
    finish(start_workers(args, data, storage, study, n_workers, args.n_trials, heartbeat=10))
    return study_figures(load_trials(storage, study), time.perf_counter() - start, n_workers)


CONTROL = (
    "import time, torch; torch.set_num_threads(1); a = torch.randn(256, 256); t = time.perf_counter()\n"
    "for _ in range(2000): a @ a\n"
    "print(time.perf_counter() - t)"
)


def control_ratio() -> float:
    """Throughput of 2 single-threaded matmul processes over 1, run now: the parallelism the
    machine actually gives 2 workers (2.0 on 2 free cores)."""

    def wall(n: int) -> float:
        env = {**os.environ, **ENV_1_THREAD}
        start = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", CONTROL], env=env, stdout=subprocess.DEVNULL)
            for _ in range(n)
        ]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start

    return 2 * wall(1) / wall(2)


def kill_arm(args, data: Path, folder: Path) -> dict:
    study = "kill-9"
    storage = args.storage or str(folder / f"{study}.log")
    procs = start_workers(args, data, storage, study, 2, args.kill_trials, heartbeat=3)
    # Kill once a trial has finished and both workers are mid-trial.
    while True:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker ended before the kill")
        try:
            trials = load_trials(storage, study)
        except KeyError:  # the study is not created yet
            trials = []
        states = [t.state.name for t in trials]
        if states.count("RUNNING") == 2 and len(states) >= 3:
            break
        time.sleep(0.5)
    victim = procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    running_at_kill = [t.number for t in trials if t.state.name == "RUNNING"]
    print(f"kill -9 of worker {victim.pid} while trials {running_at_kill} ran", flush=True)
    finish(procs, allow_killed=True)
    trials = load_trials(storage, study)
    states = {t.number: t.state.name for t in trials}
    retries = {t.system_attrs.get("failed_trial"): t for t in trials if "failed_trial" in t.system_attrs}
    failed = [n for n, s in states.items() if s == "FAIL"]
    accounted = all(s in ("COMPLETE", "PRUNED", "FAIL") for s in states.values()) and all(
        n in retries and retries[n].state.name in ("COMPLETE", "PRUNED") for n in failed
    )
    finished = sum(s in ("COMPLETE", "PRUNED") for s in states.values())
    print("trial  state     retry of")
    for t in trials:
        print(f"{t.number:>5}  {t.state.name:<8}  {t.system_attrs.get('failed_trial', '')}")
    return {
        "trials": len(trials),
        "finished": finished,
        "failed_and_retried": [[n, retries[n].number] for n in failed if n in retries],
        "running_left": sum(s == "RUNNING" for s in states.values()),
        "all_accounted": bool(accounted and finished >= args.kill_trials),
    }


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    torch.set_num_threads(1)
    hardware = hardware_line().replace("threads 1", "threads 1 per worker")
    print(hardware)
    with tempfile.TemporaryDirectory(prefix="tune-workers-") as tmp:
        folder = Path(tmp)
        data, summary = prepare_data(args, folder)
        print(summary)
        print(
            f"study: {args.n_trials} trials, {args.max_epochs} epochs per fold, median pruning, storage "
            f"{'given URL' if args.storage else 'journal file'}; load average {os.getloadavg()[0]:.1f}\n",
            flush=True,
        )
        runs: dict[int, list[dict]] = {1: [], 2: []}
        controls = []
        for repeat in range(args.repeats):
            controls.append(round(control_ratio(), 2))
            print(f"control: 2 matmul processes / 1: {controls[-1]}x", flush=True)
            for n in (1, 2):  # alternating, so a change of load hits both arms
                runs[n].append(throughput_arm(args, data, folder, n, repeat))
                print(f"{n} worker(s): {runs[n][-1]}; load average {os.getloadavg()[0]:.1f}", flush=True)
        print(
            f"\n{'workers':>7} {'trials':>6} {'pruned':>6} {'epochs':>6} {'study s':>7} {'wall s':>6} "
            f"{'trials/min':>10} {'epochs/min':>10} {'s/epoch':>7} {'busy':>4} {'best (± fold std)':>18}"
        )
        for n, arm in runs.items():
            for r in arm:
                print(
                    f"{n:>7} {r['trials']:>6} {r['pruned']:>6} {r['epochs']:>6} {r['study_s']:>7} "
                    f"{r['wall_s']:>6} {r['trials_per_min']:>10} {r['epochs_per_min']:>10} "
                    f"{r['s_per_epoch_in_trial']:>7} {r['busy']:>4} "
                    f"{r['best_score']:>10.4f} ± {r['best_std']:.4f}"
                )
        arms = {n: {k: float(np.median([r[k] for r in arm])) for k in arm[0]} for n, arm in runs.items()}
        speedup = arms[2]["trials_per_min"] / arms[1]["trials_per_min"]
        epoch_speedup = arms[2]["epochs_per_min"] / arms[1]["epochs_per_min"]
        gap = abs(arms[2]["best_score"] - arms[1]["best_score"])
        control = float(np.median(controls))
        print(
            f"2 workers / 1 (medians of {args.repeats} alternating runs): {speedup:.2f}x trials per minute, "
            f"{epoch_speedup:.2f}x epochs per minute; median best scores differ by {gap:.4f} (fold std "
            f"of the best trials: {arms[1]['best_std']:.4f}, {arms[2]['best_std']:.4f}); the control "
            f"(2 single-threaded matmul processes / 1, run before each round) gave {control:.2f}x\n",
            flush=True,
        )
        killed = kill_arm(args, data, folder)
        print(f"kill -9: {killed}")
    result = {
        "benchmark": "tune_workers",
        "n_trials": args.n_trials,
        "max_epochs": args.max_epochs,
        "repeats": args.repeats,
        "one_worker": runs[1],
        "two_workers": runs[2],
        "trials_per_min_ratio": round(speedup, 2),
        "epochs_per_min_ratio": round(epoch_speedup, 2),
        "best_score_gap": round(gap, 4),
        "control_ratio": round(control, 2),
        "controls": controls,
        "kill9": killed,
        "load_average_end": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result))
    save_result(args, "tune_workers", worker_tables(result, summary), result, hardware=hardware)


def worker_tables(result: dict, summary: str) -> list[dict]:
    """Every run of both arms; the ratios of medians; the kill -9 study."""
    keys = ["trials", "pruned", "epochs", "study_s", "wall_s", "trials_per_min", "epochs_per_min"]
    keys += ["s_per_epoch_in_trial", "busy"]
    rows = []
    for n, arm in ((1, result["one_worker"]), (2, result["two_workers"])):
        for r in arm:
            rows.append([str(n), *(str(r[k]) for k in keys), f"{r['best_score']:.4f} ± {r['best_std']:.4f}"])
    killed = result["kill9"]
    return [
        table_record(
            "runs",
            f"One Optuna study of {result['n_trials']} trials, run by 1 worker and by 2 (alternating, "
            f"{result['repeats']} runs each)",
            ["workers", *(k.replace("_", " ") for k in keys), "best (± fold std)"],
            rows,
            note=summary + ". Throughput is per minute of the study's own clock (first trial's start to "
            "last trial's end); busy: share of workers × study time spent inside trials.",
        ),
        table_record(
            "ratios",
            "2 workers over 1 (medians), and the machine's own parallelism at the time",
            ["figure", "value"],
            [
                ["trials per minute, 2 workers / 1", f"{result['trials_per_min_ratio']:.2f}×"],
                ["epochs per minute, 2 workers / 1", f"{result['epochs_per_min_ratio']:.2f}×"],
                ["best score, |2 workers − 1|", f"{result['best_score_gap']:.4f}"],
                ["control: 2 single-threaded matmul processes / 1", f"{result['control_ratio']:.2f}×"],
                [
                    "kill -9 of one of 2 workers mid-trial",
                    f"{killed['finished']} trials finished, failed and retried {killed['failed_and_retried']}, "
                    f"{killed['running_left']} left RUNNING",
                ],
            ],
            note="The control shows how much of 2 cores the machine gave: 2.0× on 2 free cores.",
        ),
    ]


if __name__ == "__main__":
    main()
