"""Benchmark: how sure a personal model is, through the command, on a reference-schema folder.

Data: a reference-schema Excel folder written by ``examples/reference_folder.py`` (``--tasks``
with no task: only the folder) from the One Million Impressions faces (Peterson et al., 2022,
PNAS; CC BY-NC-SA 4.0; ``../shared/data/omi`` unless ``--data``): by default 300 faces, 24
invented people, none unseen, 26.67 % of the faces held out for ``test/`` and tastes that differ
(``--taste 25``: each person's impressions move with a personal mixture of other OMI traits),
comparisons of attractive, smart and trustworthy coded 1 = the first image (``--one-means
first``). The folder lives in a temporary directory, removed at the end (``--keep DIR`` keeps it).

Protocol: the command journey as a user runs it, with the options the example uses for its
pairs task (``--one-means first --task pairs --epochs 30 --seed 0``), once with ``--no-users``
(one shared model) and once with the defaults (a personal part per known person:
``user_alpha='auto'``, ``calibration='auto'``, ``choose_trunk='auto'``)::

    skpercept fit FOLDER/train --task pairs --model M.joblib --epochs 30 [--no-users] --one-means first
    skpercept evaluate FOLDER/test --model M.joblib --output REPORT --one-means first

The embedding cache (its own folder under the temporary directory) is filled before the first
``fit`` with the command's backbone (lite0, flip averaging), so both fits time the head, not the
embedding. The command offers no option for the personal head's strength or temperature, so
the earlier hand-typed row "fixed ``user_alpha=1``, no temperature" is not measured here.

Measured: per attribute, the pair accuracy, Brier score and ECE (10 bins) of ``P(first image)``
on every held-out judgment, read from the ``Evaluation`` table of the ``report.md`` that
``evaluate --output`` writes; the wall seconds of each ``skpercept fit``; and, from the saved
personal model (loaded as the command loads it), the chosen prior strength ``user_alpha_`` and
why, the temperatures ``temperature_`` per attribute, the trunk in use and the prior.

Hardware: printed. Ends with one JSON line; the table and figures also go to
``benchmarks/results/personal_folder.json`` (other folder settings add a suffix, e.g.
``-taste10``; ``--no-save``: no file). Usage:
``python benchmarks/personal_folder.py [--faces 300] [--people 24] [--unseen 0]
[--test-share 0.2667] [--taste 25] [--seed 0] [--epochs 30] [--data DIR] [--keep DIR] [--no-save]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skpercept.cli._models import load_model
from skpercept.datasets import load_perception_xlsx
from skpercept.embed import make_backbones

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, result_name, save_result, table_record

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "reference_folder.py"
ONE_MEANS = "first"  # how the example's folder codes comparisons
ATTRIBUTES = ("attractive", "smart", "trustworthy")  # the reference schema's columns
#: Folder settings of the documented run; another value adds a suffix to the result name.
DEFAULTS = {
    "faces": 300,
    "people": 24,
    "unseen": 0,
    "test_share": 0.2667,
    "taste": 25.0,
    "seed": 0,
    "epochs": 30,
}
MODELS = {
    "shared model, no users": ["--no-users"],
    "personal model, defaults": [],
}
PERSONAL = "personal model, defaults"
METRICS = {"pair_acc": "pair accuracy", "brier": "Brier", "ece": "ECE"}


def write_folder(args: argparse.Namespace, out: Path) -> dict:
    """Run the example with no task (only the folder); its JSON summary line."""
    command = [
        sys.executable,
        str(EXAMPLE),
        "--out",
        str(out),
        "--faces",
        str(args.faces),
        "--people",
        str(args.people),
        "--unseen",
        str(args.unseen),
        "--test-share",
        str(args.test_share),
        "--taste",
        str(args.taste),
        "--seed",
        str(args.seed),
        "--tasks",
    ]
    if args.data is not None:
        command[2:2] = ["--data", str(args.data)]
    print("$ python examples/reference_folder.py", " ".join(command[2:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"examples/reference_folder.py failed with exit code {done.returncode}.")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe_split(folder: Path) -> dict:
    """Comparisons, judgments (attribute values), people and faces of one split."""
    comparisons = load_perception_xlsx(folder, one_means=ONE_MEANS, attributes=list(ATTRIBUTES)).comparisons
    faces = set(comparisons["image_a"]) | set(comparisons["image_b"])
    return {
        "comparisons": int(len(comparisons)),
        "judgments": int(comparisons[list(ATTRIBUTES)].notna().to_numpy().sum()),
        "people": int(comparisons["user_id"].nunique()),
        "faces": len(faces),
    }


def warm_cache(folder: Path, cache: Path) -> float:
    """Embed every image of the folder into ``cache`` with the command's default backbone."""
    start = time.perf_counter()
    images = sorted(str(p) for p in (folder / "images").glob("*.jpg"))
    for embedder in make_backbones(["lite0"], flip=True, cache_dir=cache, progress=False).values():
        embedder.fit_transform(images)
    return round(time.perf_counter() - start, 1)


def skpercept(args: list[str], common: list[str]) -> float:
    """Run one ``skpercept`` command as a user would; its wall seconds."""
    command = [sys.executable, "-m", "skpercept.cli", *args, *common]
    print("$ skpercept", " ".join(args + common), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - start, 1)
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"skpercept {args[0]} failed with exit code {done.returncode}.")
    return seconds


def evaluation_table(report: Path) -> dict:
    """Attribute -> {n, pair_acc, brier, ece}: the ``Evaluation`` table of ``evaluate``'s report."""
    lines = report.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Evaluation")
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            break
    header, rows = table[0], table[2:]  # table[1] is the |---| line
    out = {}
    for row in rows:
        cells = dict(zip(header, row))
        out[row[0]] = {"n": int(float(cells["n"])), **{m: float(cells[m]) for m in METRICS}}
    return out


def head_figures(path: Path, attributes: list[str]) -> dict:
    """What the saved model's head chose: prior strength and why, temperatures, trunk, prior."""
    model, _ = load_model(path)
    head = model.named_steps["head"]
    temperature = np.asarray(head.temperature_, dtype=np.float64)
    figures = {
        "calibration": getattr(head, "calibration_", None),
        "temperature": {a: [round(float(t), 3) for t in temperature[:, k]] for k, a in enumerate(attributes)},
        "hidden_layer_sizes": list(getattr(head, "hidden_layer_sizes_", ())),
        "trunk_losses": {k: round(v, 4) for k, v in getattr(head, "trunk_losses_", {}).items()},
    }
    if hasattr(head, "user_alpha_"):
        figures["user_alpha"] = [round(float(a), 4) for a in np.ravel(head.user_alpha_)]
        figures["user_alpha_reason"] = getattr(head, "user_alpha_reason_", None)
        figures["user_prior"] = getattr(head, "user_prior_", None)
        figures["user_prior_reason"] = getattr(head, "user_prior_reason_", None)
    return figures


def slashed(values) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="OMI copy (default: the example's, ../shared/data/omi)")
    parser.add_argument("--faces", type=int, default=DEFAULTS["faces"])
    parser.add_argument("--people", type=int, default=DEFAULTS["people"])
    parser.add_argument("--unseen", type=int, default=DEFAULTS["unseen"], help="people only in test/")
    parser.add_argument("--test-share", type=float, default=DEFAULTS["test_share"])
    parser.add_argument("--taste", type=float, default=DEFAULTS["taste"], help="how far tastes differ")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="the folder's and the command's")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="skpercept fit --epochs")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the folder, models and reports here")
    add_result_options(parser)
    args = parser.parse_args()
    print(hardware_line(), flush=True)
    total = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="personal_folder-")) if args.keep is None else args.keep
    try:
        folder, cache = work / "reference", work / "cache"
        summary = write_folder(args, folder)
        splits = {split: describe_split(folder / split) for split in ("train", "test")}
        print("folder: " + json.dumps(splits), flush=True)
        embed_seconds = warm_cache(folder, cache)
        print(
            f"embedded {len(list((folder / 'images').glob('*.jpg')))} images: {embed_seconds} s", flush=True
        )
        common = [
            "--one-means",
            ONE_MEANS,
            "--no-progress",
            "--cache-dir",
            str(cache),
            "--seed",
            str(args.seed),
        ]
        results = {}
        for row, extra in MODELS.items():
            stem = "shared" if extra else "personal"
            model, report = work / f"{stem}.joblib", work / f"report-{stem}"
            fit = ["fit", str(folder / "train"), "--task", "pairs", "--model", str(model)]
            fit_seconds = skpercept([*fit, "--epochs", str(args.epochs), *extra], common)
            fit_load = [round(x, 1) for x in os.getloadavg()]
            evaluate = ["evaluate", str(folder / "test"), "--model", str(model), "--output", str(report)]
            evaluate_seconds = skpercept(evaluate, common)
            metrics = evaluation_table(report / "report.md")
            results[row] = {
                "metrics": metrics,
                "fit_seconds": fit_seconds,
                "load_average_after_fit": fit_load,
                "evaluate_seconds": evaluate_seconds,
                "head": head_figures(model, list(metrics)),
            }
        caches = [d for d in cache.iterdir() if d.is_dir()]
        if len(caches) != 1:  # the warm-up's embedder and the command's would differ
            print(
                f"warning: {len(caches)} embedding caches; the fit seconds may include embedding", flush=True
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    attributes = list(next(iter(results.values()))["metrics"])
    personal = results[PERSONAL]["head"]
    print(f"\nHeld-out judgments, {' / '.join(attributes)}:")
    columns = [" / ".join(attributes), *METRICS.values(), "fit s"]
    rows = []
    for row, result in results.items():
        cells = [slashed(result["metrics"][a][m] for a in attributes) for m in METRICS]
        rows.append([row, *cells, f"{result['fit_seconds']:.1f}"])
        load = result["load_average_after_fit"][0]
        print(f"{row:32s} " + " | ".join(cells) + f" | fit {result['fit_seconds']:.1f} s (load {load})")
    temperatures = [t for values in personal["temperature"].values() for t in values]
    strength = ", ".join(f"{a:g}" for a in personal.get("user_alpha", []))
    print(f"personal: user_alpha_ {strength} ({personal.get('user_alpha_reason')})")
    print(f"personal: temperatures {personal['temperature']}; trunk {personal['hidden_layer_sizes']}")
    print(f"embedding (before the fits): {embed_seconds} s; total {time.perf_counter() - total:.0f} s")

    n_test = {a: results[PERSONAL]["metrics"][a]["n"] for a in attributes}
    train, test = splits["train"], splits["test"]
    figures = {
        "benchmark": "personal_folder",
        "folder": {
            "faces": args.faces,
            "people": args.people,
            "unseen": args.unseen,
            "test_share": args.test_share,
            "taste": args.taste,
            "seed": args.seed,
            "summary": summary,
            "train": train,
            "test": test,
        },
        "epochs": args.epochs,
        "embed_seconds": embed_seconds,
        "results": results,
        "total_seconds": round(time.perf_counter() - total, 1),
    }
    print(json.dumps(figures))
    title = (
        f"Held-out judgments of a reference-schema folder through the command: {train['faces']} training "
        f"faces, {train['people']} people, {train['comparisons']:,} comparisons ({train['judgments']:,} "
        f"judgments of {len(attributes)} attributes); evaluated on {sum(n_test.values()):,} judgments of "
        f"the {test['faces']} other faces (taste {args.taste:g}, seed {args.seed}, {args.epochs} epochs at most)"
    )
    note = (
        "Each cell: " + " / ".join(attributes) + ". ECE: 10 bins of P(first image). fit s: wall seconds of "
        "skpercept fit (embedding cache filled beforehand; 1-minute load average after each fit: "
        + ", ".join(f"{r['load_average_after_fit'][0]:.1f}" for r in results.values())
        + "). The personal model chose user_alpha_ "
        f"{strength} ({personal.get('user_alpha_reason')}) and temperatures "
        f"{min(temperatures):.2f}–{max(temperatures):.2f} ("
        + ", ".join(f"{a} {', '.join(f'{t:.2f}' for t in v)}" for a, v in personal["temperature"].items())
        + ")."
    )
    tags = [
        None if getattr(args, key) == value else f"{key.replace('_', '')}{getattr(args, key):g}"
        for key, value in DEFAULTS.items()
    ]
    save_result(
        args,
        result_name("personal_folder", *tags),
        [table_record("calibration", title, columns, rows, note=note, strong=(PERSONAL,))],
        figures,
    )


if __name__ == "__main__":
    main()
