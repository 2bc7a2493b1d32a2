"""Sharded embedding on a Dask LocalCluster: images/s with 1 and 2 workers, and a killed worker.

Data: the first N OMI faces shipped with the package (256x256 JPEG), as file paths. Model:
``TimmEmbedder()`` (EfficientNet-Lite0, shipped ImageNet weights), CPU, no cache. No split:
every figure is one pass over the same N files. Hardware: whatever this runs on (printed).

Runs, in one session, through public API only:

- ``in_process_img_s``: one ``transform(paths)`` in this process (torch uses every core);
- ``workers_1_img_s`` / ``workers_2_img_s``: :func:`~skpercept.embed.embed_sharded`
  on a ``LocalCluster`` of 1 or 2 worker processes with one thread each (Dask's nanny starts
  workers with ``OMP_NUM_THREADS=1``: one core per worker), started without Dask's default
  ``MALLOC_TRIM_THRESHOLD_`` for workers; ``workers_1_dask_env_img_s`` keeps it, to show what
  it costs torch on the CPU. The clusters are started and every worker is warmed up
  (imports, first model build, first forward pass) before timing; each timed call still
  builds its model on every worker, as a user's call does, and writes its shards to a fresh
  folder;
- ``killed``: 2 workers again, one of them killed with SIGKILL once the first shard is on disk;
  the run must still give exactly one embedding per input, in input order, equal to the
  in-process ``transform``.

Run: ``python benchmarks/embed_sharded.py [--n 256] [--shard-size 32] [--no-save]``. Ratios within
one run are what count; on a shared machine the load changes between runs, so repeat it before
trusting a ratio near 1. The table and figures also go to ``benchmarks/results/embed_sharded.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask
import numpy as np
from distributed import Client, LocalCluster

from skpercept.embed import TimmEmbedder, embed_sharded

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, save_result, table_record

REPO = Path(__file__).resolve().parents[1]


def faces(n: int) -> list[str]:
    folder = REPO / "skpercept" / "datasets" / "data" / "omi" / "images"
    paths = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if len(paths) < n:
        raise SystemExit(f"only {len(paths)} images in {folder}, asked for {n}")
    return paths[:n]


def cluster(n_workers: int, trim_threshold: bool) -> tuple[LocalCluster, Client]:
    """A LocalCluster; ``trim_threshold=False`` starts its workers without Dask's default
    ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc return freed memory eagerly, so every
    large tensor of the forward pass is freshly mapped and page-faulted."""
    environ = {} if trim_threshold else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    if not trim_threshold:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set(environ):
        local = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
    return local, Client(local, set_as_default=False)


def warm_up(paths: list[str]) -> None:
    """Run on each worker: imports, model build and first forward pass, outside the timing."""
    TimmEmbedder(device="cpu").fit(paths).transform(paths)


def timed_run(client: Client, paths: list[str], shard_size: int, folder: Path) -> tuple[float, object]:
    start = time.perf_counter()
    out = embed_sharded(TimmEmbedder(device="cpu"), paths, folder, client=client, shard_size=shard_size)
    return time.perf_counter() - start, out


def killed_run(client: Client, paths: list[str], shard_size: int, folder: Path) -> tuple[object, bool]:
    """Embed while killing one worker process as soon as the first shard is complete."""
    pids = client.run(os.getpid)
    result: dict = {}

    def run() -> None:
        try:
            result["out"] = embed_sharded(
                TimmEmbedder(device="cpu"), paths, folder, client=client, shard_size=shard_size
            )
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = False
    while thread.is_alive() and not killed:
        if any(folder.glob("shard-*.json")):
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["out"], killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="number of faces")
    parser.add_argument("--shard-size", type=int, default=32)
    add_result_options(parser)
    args = parser.parse_args()
    paths = faces(args.n)
    warmup = faces(args.n + 8)[args.n :]

    embedder = TimmEmbedder(device="cpu").fit(paths[:4])
    embedder.transform(paths[:8])
    start = time.perf_counter()
    reference = embedder.transform(paths)
    in_process = time.perf_counter() - start

    figures = {"n": args.n, "shard_size": args.shard_size, "in_process_img_s": round(args.n / in_process, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The Dask-environment run comes last: a nanny copies its variables into this process's
        # environment, which the workers of every later cluster would inherit.
        for name, n_workers, trim in (
            ("workers_1", 1, False),
            ("workers_2", 2, False),
            ("workers_1_dask_env", 1, True),
        ):
            local, client = cluster(n_workers, trim)
            try:
                # Every worker imports torch and timm and builds the model once before timing;
                # a one-shard warm-up would warm one worker only and leave the other's imports
                # (about 2 s) inside the timed run.
                client.run(warm_up, warmup)
                seconds, out = timed_run(client, paths, args.shard_size, tmp / name)
                np.testing.assert_allclose(np.asarray(out), reference, atol=1e-4)
                figures[f"{name}_img_s"] = round(args.n / seconds, 2)
                if n_workers == 2:
                    out, killed = killed_run(client, paths, args.shard_size, tmp / "killed")
                    got = np.asarray(out)
                    figures["killed"] = {
                        "worker_killed": killed,
                        "rows": int(got.shape[0]),
                        "equal_to_in_process": bool(np.allclose(got, reference, atol=1e-4)),
                    }
            finally:
                client.close()
                local.close()
    figures["speedup_2_over_1_workers"] = round(figures["workers_2_img_s"] / figures["workers_1_img_s"], 2)

    print(
        f"{args.n} OMI faces, EfficientNet-Lite0, CPU: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'run':<34}{'images/s':>10}")
    print(f"{'transform in this process':<34}{figures['in_process_img_s']:>10}")
    print(f"{'embed_sharded, 1 worker, Dask env':<34}{figures['workers_1_dask_env_img_s']:>10}")
    print(f"{'embed_sharded, 1 worker':<34}{figures['workers_1_img_s']:>10}")
    print(f"{'embed_sharded, 2 workers':<34}{figures['workers_2_img_s']:>10}")
    print(f"2 workers / 1 worker: {figures['speedup_2_over_1_workers']}x")
    print(f"one worker killed mid-run: {figures['killed']}")
    print(json.dumps(figures))
    runs = {
        "transform in this process (torch's threads)": "in_process_img_s",
        "embed_sharded, 1 worker, Dask's default MALLOC_TRIM_THRESHOLD_": "workers_1_dask_env_img_s",
        "embed_sharded, 1 worker": "workers_1_img_s",
        "embed_sharded, 2 workers": "workers_2_img_s",
    }
    killed = figures["killed"]
    table = table_record(
        "runs",
        f"Sharded embedding: {args.n} OMI faces, EfficientNet-Lite0, CPU, shards of {args.shard_size}",
        ["run", "images/s"],
        [[label, f"{figures[key]:.1f}"] for label, key in runs.items()],
        note=f"2 workers / 1 worker: {figures['speedup_2_over_1_workers']}×. One of 2 workers killed with "
        f"SIGKILL once the first shard was on disk: {killed['rows']} rows returned, "
        f"{'equal' if killed['equal_to_in_process'] else 'NOT equal'} to the in-process embeddings.",
    )
    save_result(args, "embed_sharded", [table], figures)


if __name__ == "__main__":
    main()
