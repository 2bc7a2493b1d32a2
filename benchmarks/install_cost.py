"""Benchmark: what README's main command costs a new user — the install's disk and time, and the
quick demo's time and memory with an empty embedding cache (the full demo with ``--full``).

Runs what a new user runs, in a temporary folder: ``python3 -m venv``, then ``pip install -e
"<this repository>[demo,face]"`` (pip's own configuration decides where packages come from, as it
does for the user), then ``skpercept demo --quick`` with ``SKPERCEPT_CACHE_DIR`` pointing at an
empty folder and ``--output`` in the temporary folder; with ``--full``, ``skpercept demo`` too,
with an empty cache of its own, then once more on that cache (what a user's next run costs). Nothing is written outside the
temporary folder but the result file.

Figures: the install's wall time; the size of the environment's ``site-packages`` (bytes on disk,
as ``du`` counts them) split into NVIDIA's CUDA libraries (``nvidia/``), torch, triton and the
rest, and the number of distributions; each demo's wall time, CPU time (user + system of the
child) and peak resident memory (the child's ``ru_maxrss``), and the ``Done in`` line it prints.

Hardware: printed; the load average goes into the result file, since a busy machine slows all
of this. Ends with one JSON line; the tables also go to ``benchmarks/results/install_cost.json``
(``--no-save``: no file). Usage: ``python benchmarks/install_cost.py [--full] [--keep DIR]
[--no-save]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, save_result, table_record

REPO = Path(__file__).resolve().parents[1]
#: The parts of site-packages reported on their own; the rest is summed.
PARTS = {
    "nvidia": "NVIDIA's CUDA libraries (nvidia/, pulled in by torch)",
    "torch": "torch",
    "triton": "triton",
}


def disk_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, as ``du`` counts them; links not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def run(command: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run ``command``; its wall, CPU seconds and peak memory, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        # ru_maxrss of children is the largest of any child so far: run the demos after the install
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "output": done.stdout + done.stderr,
    }


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"


def demo(skpercept: Path, folder: Path, cache: Path, name: str, args: list[str]) -> dict:
    cache.mkdir(exist_ok=True)
    env = {**os.environ, "SKPERCEPT_CACHE_DIR": str(cache)}
    out = run([str(skpercept), "demo", *args, "--output", str(folder / name)], env=env, cwd=folder)
    done = re.findall(r"Done in [0-9.]+ s", out.pop("output"))
    out["prints"] = done[-1] if done else ""
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--full", action="store_true", help="also the full demo, twice (empty, then warm cache)"
    )
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: a temporary folder)")
    add_result_options(parser)
    args = parser.parse_args()
    print(hardware_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        venv = folder / "venv"
        start = time.perf_counter()
        made = run(["python3", "-m", "venv", str(venv)])
        pip = run([str(venv / "bin" / "pip"), "install", "-q", "-e", f"{REPO}[demo,face]"])
        install_s = time.perf_counter() - start
        print(f"install: {minutes(install_s)}", flush=True)
        site = next((venv / "lib").glob("python3*/site-packages"))
        sizes = {key: disk_bytes(site / key) for key in PARTS}
        total = disk_bytes(site)
        sizes["rest"] = total - sum(sizes.values())
        distributions = len(list(site.glob("*.dist-info")))
        skpercept = venv / "bin" / "skpercept"
        runs = {
            "quick demo, empty cache": demo(skpercept, folder, folder / "cache-quick", "quick", ["--quick"])
        }
        if args.full:  # a cache of its own: none of the quick demo's 40 faces in it
            runs["full demo, empty cache"] = demo(skpercept, folder, folder / "cache-full", "full", [])
            runs["full demo, cached"] = demo(skpercept, folder, folder / "cache-full", "full-again", [])
        for name, figures in runs.items():
            print(f"{name}: {minutes(figures['wall_s'])} ({figures['prints']})", flush=True)

    def gb(n: float) -> str:
        return f"{n / 1e9:.1f} GB"

    size_rows = [[label, gb(sizes[key])] for key, label in PARTS.items()]
    size_rows += [
        ["everything else", gb(sizes["rest"])],
        ["total", f"{gb(total)} ({distributions} distributions)"],
    ]
    time_rows = [
        ["install (venv and pip)", minutes(install_s), minutes(made["cpu_s"] + pip["cpu_s"]), "", ""]
    ]
    time_rows += [
        [name, minutes(f["wall_s"]), minutes(f["cpu_s"]), f"{f['peak_rss_mb'] / 1024:.1f} GB", f["prints"]]
        for name, f in runs.items()
    ]
    tables = [
        table_record(
            "install",
            'What pip install -e ".[demo,face]" puts in a fresh environment',
            ["part", "size on disk"],
            size_rows,
            note="The size of the environment's site-packages as du counts it (blocks on disk).",
            strong=("total",),
        ),
        table_record(
            "time",
            "How long it takes",
            ["step", "wall time", "CPU time", "peak memory", "it prints"],
            time_rows,
            note="Wall and CPU time of each command, start-up and imports included; 'it prints' is the "
            "demo's own timing, without them. The install fetched its packages from the source pip was "
            "configured with; over a network it depends mostly on downloading torch's wheels.",
        ),
    ]
    figures = {
        "install_s": round(install_s, 1),
        "pip_s": pip["wall_s"],
        "site_packages_bytes": total,
        "parts_bytes": sizes,
        "distributions": distributions,
        "runs": runs,
    }
    print(json.dumps(figures))
    save_result(args, "install_cost", tables, figures)


if __name__ == "__main__":
    main()
