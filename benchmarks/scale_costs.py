"""The per-unit costs behind "Beyond one machine", and what they multiply out to at 10 M images,
1 M judgments and 10,000 people.

Runs nothing on images: it reads the result files other benchmarks wrote into
``benchmarks/results/`` (``embed_throughput``, ``head_training``, ``tune_workers``,
``embed_sharded``, ``personal_scale``, and where present their GPU runs ``embed_throughput-cuda``,
``head_training-cuda`` and ``lora_omi-vit-throughput``), takes one figure from each, and writes
``benchmarks/results/scale_costs.json`` with two tables:

- ``per-unit``: each unit cost, its figure, the result file and the load it was measured under;
- ``estimates``: each quantity of ``docs/user_guide/scale.md``, the arithmetic and the result.

A unit cost whose result file is missing (the GPU runs on a machine without one) is said to be
not measured, with the command that measures it, and every estimate that needs it says so
instead of a figure. Rerun this script after rerunning any of those benchmarks; the test suite
checks that the committed file is what its sources give today, so the page cannot drift from
them.

Usage: ``python benchmarks/scale_costs.py [--results DIR] [--no-save]``
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import RESULTS_DIR, add_result_options, save_result, table_record

#: The sizes this page works out.
IMAGES, JUDGMENTS, PEOPLE = 10_000_000, 1_000_000, 10_000
#: Embedding widths (architecture facts): EfficientNet-Lite0's pooled features, CLIP ViT-B-32's.
LITE0_DIMS, VIT_DIMS = 1280, 512
#: ``embed_sharded``'s rows per shard in the recommended set-up, and a CPU cluster's size.
SHARD_ROWS, CLUSTER_CORES = 1024, 64
#: A 4 KiB-block filesystem stores a 5,248-B cache file in two blocks.
BLOCK = 4096
#: Bytes per feature per pair while training: float64 rows plus the head's float32 copy.
ROW_BYTES = 8 + 4
#: The first-layer work per half of ``head_training.py``'s net: (612 x 256 + 256 x 128).
HIDDEN = (256, 128)
#: Epochs a head trains, trials a study runs, workers it runs on (the page's assumptions).
EPOCHS, TRIALS, TUNE_WORKERS = 20, 100, 32
#: LoRA: epochs, and the bytes of one decoded 224-px image it keeps.
LORA_EPOCHS, DECODED_BYTES = 10, 224 * 224 * 3


def _load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _source(record: dict) -> str:
    load = record.get("load_average") or ["?"]
    return f"{record['benchmark']}.json ({record['date'][:10]}, load {load[0]})"


def _option(record: dict, flag: str, default):
    """The value of ``flag`` in the command that wrote ``record`` (its default when not given)."""
    words = shlex.split(record["command"])
    for k, word in enumerate(words):
        if word == flag and k + 1 < len(words):
            return type(default)(words[k + 1])
        if word.startswith(flag + "="):
            return type(default)(word.split("=", 1)[1])
    return default


def _npy_bytes(dims: int) -> int:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(dims, dtype=np.float32))
    return buffer.tell()


def _size(name: str, record: dict) -> dict:
    return next(s for s in record["figures"]["sizes"] if s["size"] == name)


def _h(seconds: float) -> str:
    return (
        f"{seconds / 3600:,.1f} h"
        if seconds >= 3600
        else f"{seconds / 60:,.1f} min"
        if seconds >= 60
        else f"{seconds:,.0f} s"
    )


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB"


class Costs:
    """The unit costs read from the result files, as figures and table rows."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.rows: list[list[str]] = []
        self.figures: dict[str, object] = {}
        self.missing: dict[str, str] = {}

    def add(self, key: str, what: str, value, shown: str, source: str) -> None:
        self.figures[key] = value
        self.rows.append([key, what, shown, source])

    def absent(self, key: str, what: str, command: str) -> None:
        self.figures[key] = None
        self.missing[key] = command
        self.rows.append([key, what, "not measured", f"no result file: {command} writes it"])

    def read(self) -> None:
        load = lambda name: _load(self.folder, name)  # noqa: E731
        embed, embed_gpu = load("embed_throughput"), load("embed_throughput-cuda")
        training, training_gpu = load("head_training"), load("head_training-cuda")
        tune, sharded, personal = load("tune_workers"), load("embed_sharded"), load("personal_scale")
        vit = load("lora_omi-vit-throughput")
        needed = {"embed_throughput": embed, "head_training": training, "tune_workers": tune}
        needed |= {"embed_sharded": sharded, "personal_scale": personal}
        lacking = [name for name, record in needed.items() if record is None]
        if lacking:
            raise SystemExit(
                f"no result file for {', '.join(lacking)} in {self.folder}: run those benchmarks first"
            )

        small = _size("256", embed)
        self.add(
            "E1",
            "EfficientNet-Lite0 embedding, end to end (read, decode, forward), 2 cores, 256-px faces",
            small["timm"]["end_to_end_img_s"],
            f"{small['timm']['end_to_end_img_s']:.1f} images/s",
            _source(embed),
        )
        self.add(
            "E2",
            "CLIP ViT-B-32 embedding, end to end, 2 cores, 256-px faces",
            small["clip"]["end_to_end_img_s"],
            f"{small['clip']['end_to_end_img_s']:.1f} images/s",
            _source(embed),
        )
        if embed_gpu is None:
            self.absent(
                "E3",
                "EfficientNet-Lite0 embedding, end to end, on a GPU machine",
                "python benchmarks/embed_throughput.py --device cuda",
            )
        else:
            gpu = _size("256", embed_gpu)["timm"]["end_to_end_img_s"]
            self.add(
                "E3",
                "EfficientNet-Lite0 embedding, end to end, on a GPU machine",
                gpu,
                f"{gpu:.1f} images/s",
                _source(embed_gpu),
            )
        by_size = [_size(s, embed)["timm"]["end_to_end_img_s"] for s in ("256", "1024", "4032")]
        self.add(
            "E4",
            "EfficientNet-Lite0, end to end, 2 cores, at 256 px / 1024 px / 4032×3024 JPEGs",
            by_size,
            " / ".join(f"{v:.1f}" for v in by_size) + " images/s",
            _source(embed),
        )

        lite0, vit_bytes = LITE0_DIMS * 4, VIT_DIMS * 4
        cache_file = _npy_bytes(LITE0_DIMS)
        self.add(
            "S1",
            "one Lite0 embedding (float32), and its file in the embedding cache",
            [lite0, cache_file],
            f"{lite0:,} B; {cache_file:,} B as a .npy file",
            f"{LITE0_DIMS} × 4 B; np.save of one row",
        )
        self.add("S2", "one ViT-B-32 embedding (float32)", vit_bytes, f"{vit_bytes:,} B", f"{VIT_DIMS} × 4 B")

        f = training["figures"]
        per_epoch = f["skorch_s_median"] / f["epochs"]
        self.add(
            "H1",
            f"PairwiseRanker training, {f['n_pairs']:,} pairs × {f['n_features']:,} features, "
            f"hidden {HIDDEN}, 2 cores",
            per_epoch,
            f"{per_epoch:.1f} s per epoch",
            _source(training),
        )
        self.figures["H1_pairs"], self.figures["H1_features"] = f["n_pairs"], f["n_features"]
        self.add(
            "H2",
            "score_items of a fitted ranker, 2 cores",
            f["items_scored_per_s"],
            f"{f['items_scored_per_s']:,.0f} items/s",
            _source(training),
        )
        self.add(
            "H3",
            "skorch's training loop ÷ a plain torch loop doing the same work, 2 cores",
            f["skorch_over_plain_torch"],
            f"{f['skorch_over_plain_torch']:.2f}× the time",
            _source(training),
        )
        if training_gpu is None:
            self.absent(
                "H4",
                "PairwiseRanker training and score_items on a GPU",
                "python benchmarks/head_training.py --device cuda",
            )
        else:
            g = training_gpu["figures"]
            self.add(
                "H4",
                "PairwiseRanker training and score_items on a GPU",
                [g["skorch_s_median"] / g["epochs"], g["items_scored_per_s"]],
                f"{g['skorch_s_median'] / g['epochs']:.2f} s per epoch; {g['items_scored_per_s']:,.0f} items/s",
                _source(training_gpu),
            )

        t = tune["figures"]
        n_pairs = _option(tune, "--n-pairs", 6000)
        one = [run["study_s"] / run["trials"] for run in t["one_worker"]]
        trial = statistics.median(one)
        self.add(
            "T1",
            f"one tuning trial: {n_pairs:,} OMI pairs, 1,280-d features, 3-fold CV, "
            f"≤ {t['max_epochs']} epochs per fold, median pruning, one thread",
            trial,
            f"{trial:.2f} s (median of {len(one)} studies of {t['n_trials']} trials)",
            _source(tune),
        )
        self.figures["T1_pairs"] = n_pairs
        busy = [run["busy"] for run in t["one_worker"] + t["two_workers"]]
        self.add(
            "T2",
            "share of a tuning worker's time inside trials (not waiting on the storage or the others)",
            min(busy),
            f"{min(busy):.2f}–{max(busy):.2f}, with 1 and 2 workers",
            _source(tune),
        )
        self.add(
            "W1",
            "tuning trials per minute, 2 single-threaded workers on one study ÷ 1 worker",
            t["trials_per_min_ratio"],
            f"{t['trials_per_min_ratio']:.2f}× (control: 2 matrix-product "
            f"processes {t['control_ratio']:.2f}×)",
            _source(tune),
        )
        s = sharded["figures"]
        self.add(
            "W2",
            "sharded embedding (Lite0), 2 single-threaded Dask workers ÷ 1",
            s["speedup_2_over_1_workers"],
            f"{s['speedup_2_over_1_workers']:.2f}× ({s['workers_2_img_s']:.1f} "
            f"against {s['workers_1_img_s']:.1f} images/s)",
            _source(sharded),
        )

        runs = {run["people"]: run for run in personal["figures"]["runs"]}
        biggest = runs[max(runs)]
        self.add(
            "P1",
            f"personal fit at {biggest['people']:,} people × {biggest['judgments'] // biggest['people']} "
            "judgments: pair rows, fit",
            [biggest["rows_peak_mb"], biggest["fit_s"], biggest["fit_peak_mb"]],
            f"rows +{biggest['rows_peak_mb']:,} MB; fit {biggest['fit_s']:.1f} s, +{biggest['fit_peak_mb']:,} MB",
            _source(personal),
        )
        adds = [run["add_one_person_s"] for run in runs.values()]
        self.add(
            "P2",
            "adding one person (20 judgments) to a fitted personal model",
            max(adds),
            f"{min(adds):.3f}–{max(adds):.3f} s",
            _source(personal),
        )

        if vit is None:
            self.absent(
                "L1",
                "LoRA training of a ViT-B-32 tower, bf16, batch 256, one GPU",
                "python benchmarks/lora_omi.py --vit-throughput",
            )
        else:
            v = vit["figures"]
            self.add(
                "L1",
                f"LoRA training of a ViT-B-32 tower, bf16, batch 256, {v['device']}",
                [v["vit_b32_img_per_s_b256"], v["vit_b32_peak_gib_b256"]],
                f"{v['vit_b32_img_per_s_b256']:,.0f} images/s, {v['vit_b32_peak_gib_b256']:.1f} GiB",
                _source(vit),
            )


def estimates(c: Costs) -> list[list[str]]:
    """One row per quantity: section, what, the arithmetic, the result (or what it lacks)."""
    fig = c.figures
    rows: list[list[str]] = []

    def add(key, section, what, arithmetic, value, shown):
        fig[key] = value
        rows.append([key, section, what, arithmetic, shown])

    def lacking(key, section, what, needs):
        fig[key] = None
        rows.append([key, section, what, f"needs {needs}", f"not estimated: {needs} is not measured"])

    e1, e2 = fig["E1"], fig["E2"]
    lite0_s, vit_s = IMAGES / e1, IMAGES / e2
    add(
        "X1",
        "1",
        "embed 10 M images with Lite0 on 2 cores",
        "10,000,000 / E1",
        lite0_s,
        f"{_h(lite0_s)} = {2 * lite0_s / 3600:,.0f} core-hours",
    )
    add(
        "X2",
        "1",
        "embed 10 M images with ViT-B-32 on 2 cores",
        "10,000,000 / E2",
        vit_s,
        f"{_h(vit_s)} = {2 * vit_s / 3600:,.0f} core-hours",
    )
    add(
        "X3",
        "1",
        f"the same on {CLUSTER_CORES} single-threaded Dask workers, if each adds what one core gives",
        f"core-hours / {CLUSTER_CORES}",
        [2 * lite0_s / CLUSTER_CORES, 2 * vit_s / CLUSTER_CORES],
        f"{_h(2 * lite0_s / CLUSTER_CORES)} (Lite0), {_h(2 * vit_s / CLUSTER_CORES)} (ViT-B-32)",
    )
    if fig["E3"] is None:
        lacking("X4", "1", "embed 10 M images on one GPU machine", "E3")
    else:
        add(
            "X4",
            "1",
            "embed 10 M images on one GPU machine",
            "10,000,000 / E3",
            IMAGES / fig["E3"],
            _h(IMAGES / fig["E3"]),
        )
    lite0_b, cache_b = fig["S1"]
    shards = -(-IMAGES // SHARD_ROWS)
    add(
        "X5",
        "1",
        "the embeddings of 10 M images, in shards of 1,024 rows",
        "10,000,000 × S1",
        [IMAGES * lite0_b, IMAGES * fig["S2"]],
        f"{_gb(IMAGES * lite0_b)} (Lite0), {_gb(IMAGES * fig['S2'])} (ViT-B-32); {shards:,} shards of "
        f"{SHARD_ROWS * lite0_b / 1e6:.1f} MB",
    )
    on_disk = IMAGES * -(-cache_b // BLOCK) * BLOCK
    add(
        "X6",
        "1",
        "the embedding cache of 10 M images (Lite0), one file each, 4 KiB blocks",
        "10,000,000 × S1's file, in whole blocks",
        [IMAGES * cache_b, on_disk],
        f"{_gb(IMAGES * cache_b)} of data, {_gb(on_disk)} on disk, {IMAGES:,} inodes "
        f"({IMAGES // 256:,} files in each of 256 sub-folders)",
    )

    lite0_rows, vit_rows = JUDGMENTS * 2 * LITE0_DIMS * ROW_BYTES, JUDGMENTS * 2 * VIT_DIMS * ROW_BYTES
    add(
        "X7",
        "2",
        "the pair rows of 1 M judgments, no people",
        "1,000,000 × 2 × dims × 12 B",
        [lite0_rows, vit_rows],
        f"{_gb(lite0_rows)} (Lite0), {_gb(vit_rows)} (ViT-B-32)",
    )
    half = fig["H1_features"] // 2

    def work(dims: int) -> int:
        return dims * HIDDEN[0] + HIDDEN[0] * HIDDEN[1]

    lite0_epoch = fig["H1"] * JUDGMENTS / fig["H1_pairs"] * work(LITE0_DIMS) / work(half)
    vit_epoch = fig["H1"] * JUDGMENTS / fig["H1_pairs"] * work(VIT_DIMS) / work(half)
    add(
        "X8",
        "2",
        f"one epoch over 1 M pairs on 2 cores; {EPOCHS} epochs",
        f"H1 × 1,000,000 / {fig['H1_pairs']:,} × first-layer work (Lite0 {work(LITE0_DIMS) / work(half):.2f}×, "
        f"ViT-B-32 {work(VIT_DIMS) / work(half):.2f}×)",
        [lite0_epoch, vit_epoch],
        f"Lite0 {_h(lite0_epoch)} ({_h(EPOCHS * lite0_epoch)}); ViT-B-32 {_h(vit_epoch)} ({_h(EPOCHS * vit_epoch)})",
    )
    score = IMAGES / fig["H2"]
    add("X9", "2", "score 10 M images with one fitted ranker, 2 cores", "10,000,000 / H2", score, _h(score))

    trial = fig["T1"] * JUDGMENTS / fig["T1_pairs"]
    add(
        "X10",
        "3",
        f"one trial at 1 M pairs; {TRIALS} trials on one thread; on {TUNE_WORKERS} workers",
        f"T1 × 1,000,000 / {fig['T1_pairs']:,}; × {TRIALS}; ÷ {TUNE_WORKERS}",
        [trial, TRIALS * trial],
        f"{_h(trial)}; {_h(TRIALS * trial)}; {_h(TRIALS * trial / TUNE_WORKERS)}",
    )

    person_rows = JUDGMENTS * 2 * (LITE0_DIMS + PEOPLE) * ROW_BYTES
    add(
        "X11",
        "4",
        "the pair rows of 1 M judgments of 10,000 people (dense one-hot person block)",
        "1,000,000 × 2 × (1,280 + 10,000) × 12 B",
        person_rows,
        _gb(person_rows),
    )
    everyone = PEOPLE * IMAGES / fig["H2"]
    add(
        "X12",
        "4",
        "score 10 M images for each of 10,000 people, 2 cores",
        "10,000 × 10,000,000 / H2",
        everyone,
        f"{_h(everyone)}, {_gb(PEOPLE * IMAGES * 8)} of float64 scores",
    )

    if fig["L1"] is None:
        lacking("X13", "5", "a LoRA epoch over 1 M pairs (≤ 2 M image forwards) on one GPU", "L1")
    else:
        epoch = 2 * JUDGMENTS / fig["L1"][0]
        add(
            "X13",
            "5",
            f"a LoRA epoch over 1 M pairs (≤ 2 M image forwards) on one GPU; {LORA_EPOCHS} epochs",
            "2,000,000 / L1",
            epoch,
            f"{_h(epoch)}; {_h(LORA_EPOCHS * epoch)}",
        )
    decoded = JUDGMENTS * DECODED_BYTES
    add(
        "X14",
        "5",
        "LoRA's decoded images kept in host memory, 1 M distinct images at 224 px",
        "1,000,000 × 224 × 224 × 3 B",
        decoded,
        f"{_gb(decoded)} per process",
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_result_options(parser)
    args = parser.parse_args()
    costs = Costs(Path(args.results or RESULTS_DIR))
    costs.read()
    rows = estimates(costs)
    note = (
        "Each figure is read from the result file named beside it; load is the 1-minute load average "
        "at the end of that run (2 cores: above 2 the figure is an upper bound on time)."
    )
    if costs.missing:
        note += " Not measured here: " + "; ".join(f"{k} ({cmd})" for k, cmd in costs.missing.items()) + "."
    tables = [
        table_record(
            "per-unit", "The per-unit costs", ["#", "unit cost", "figure", "source"], costs.rows, note=note
        ),
        table_record(
            "estimates",
            "Multiplied out: 10 M images, 1 M judgments, 10,000 people",
            ["#", "section", "quantity", "arithmetic", "result"],
            rows,
            note="The sections are those of the page; nothing here was run at this size.",
        ),
    ]
    for table in tables:
        print(f"\n{table['title']}")
        for row in table["rows"]:
            print(" | ".join(row))
    figures = dict(costs.figures)
    print(json.dumps(figures))
    save_result(
        args, "scale_costs", tables, figures, hardware="derived from the result files named in its tables"
    )


if __name__ == "__main__":
    main()
