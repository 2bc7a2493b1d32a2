"""Benchmark: how close do skpercept's heads get to the raters' own agreement on OMI faces?

Data: the One Million Impressions faces shipped with skpercept (1,004 synthetic faces, individual
0–100 ratings; Peterson et al., 2022, CC BY-NC-SA 4.0), attributes trustworthy, attractive and
smart. Split: image-disjoint K-fold over faces (``ImageDisjointSplit``, default 5 folds, seed 0):
no test face appears in any training row. Metric: accuracy of ordering two held-out faces as
their mean ratings do (all pairs of test faces, ties skipped), averaged over folds; Spearman's ρ
of the face scores with the mean ratings; headroom = (acc − 0.5) / (ceiling − 0.5), with the
ceiling from ``skpercept.metrics.noise_ceiling`` on the individual ratings (split-half,
Spearman–Brown).

Rows: the noise ceiling; ridge on pooled EfficientNet-Lite0 features (the baseline); the same
ridge with flip-averaged features, on EfficientNet-Lite2's (the other shipped ImageNet weights),
on dlib face descriptors, on the face's geometry (dlib's 68 landmarks in the eyes' frame) and on
their concatenations (blocks balanced by ``BlockScaler``); PairwiseRanker on frozen features
(consensus pairs of training faces); RatingRegressor on mean ratings; RatingClassifier on individual ratings binned to 1–4;
and ``PairwiseRanker()`` / ``RatingRegressor()`` with their constructor defaults (the ranker on
``--default-pairs`` consensus pairs of training faces), beside ridge on the same features.
``--contrastive-epochs N`` adds rows on Lite0 features adapted to the faces by
``skpercept.finetune.ContrastiveEmbedder`` (SimCLR's NT-Xent through LoRA adapters, N epochs at
most, early stopping on held-out faces; no labels), then ridge and regressor rows on those
features alone and with flip averaging + dlib. ``--contrastive-protocol per-fold`` (default)
adapts on each fold's training faces only, so no test image is ever seen; ``all-faces`` adapts
once on every face's image (the heads still never see a test face's ratings) — how a user
adapting to a whole collection before labelling it would run it.
``--lora-folds K`` adds ``LoRAPairwiseRanker`` (EfficientNet-Lite0 fine-tuned end to end with
LoRA adapters on its top ``--lora-last-n`` layers, images at ``--lora-image-size`` px, every
consensus pair of the training faces, image-block batches, early stopping on held-out faces) on
the first K of the same folds, beside the other rows' figures on those folds: all 5 on a GPU,
one or two where only CPUs are at hand.
Every row runs through the registered heads and backbones and ``skpercept.recipes`` — the code of
``skpercept demo`` — with the demo's head settings unless it says defaults. Embeddings are cached (``--cache-dir``),
so reruns only train heads.
Hardware: whatever runs it (printed). Ends with one JSON line of the figures; the tables and
figures also go to ``benchmarks/results/omi[-contrastive][-lora]....json`` (``--no-save``: no file).

Usage: python benchmarks/omi.py [--folds 5] [--seed 0] [--cache-dir DIR] [--no-dlib] [--faces N]
       [--contrastive-epochs N] [--contrastive-last-n K] [--contrastive-protocol per-fold|all-faces]
       [--lora-folds K] [--lora-image-size PX] [--lora-last-n N] [--lora-epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from skpercept.datasets import load_omi, subset_faces
from skpercept.embed import default_cache_dir, dlib_available
from skpercept.heads import HeadSettings
from skpercept.recipes import DEMO_ENSEMBLE, MODEL_LABELS, cross_validate, noise_ceiling_table, results_table
from skpercept.report import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import (
    add_result_options,
    embed_feature_sets,
    frame_table,
    hardware_line,
    result_name,
    save_result,
    slashed,
    table_record,
)

# (row label, feature set, model)
ROWS = [
    ("ridge", "lite0", "ridge"),
    ("ridge", "lite0 flip", "ridge"),
    ("ridge", "dlib", "ridge"),
    ("ridge", "lite0 flip + dlib", "ridge"),
    ("ranker", "lite0", "ranker"),
    ("regressor", "lite0", "regressor"),
    ("ranker", "lite0", "ranker-default"),
    ("regressor", "lite0", "regressor-default"),
    ("ranker", "lite0 flip + dlib", "ranker"),
    ("regressor", "lite0 flip + dlib", "regressor"),
    ("classifier", "lite0 flip + dlib", "classifier"),
    ("ridge", "landmarks", "ridge"),
    ("ridge", "lite0 flip + dlib + landmarks", "ridge"),
    ("ranker", "lite0 flip + dlib + landmarks", "ranker"),
    ("regressor", "lite0 flip + dlib + landmarks", "regressor"),
    ("ridge", "lite2 flip", "ridge"),
    ("ridge", "lite0 + lite2 flip", "ridge"),
    ("ridge", "lite2 flip + dlib + landmarks", "ridge"),
    ("ridge", "lite0 + lite2 flip + dlib + landmarks", "ridge"),
    ("ranker", "lite0 + lite2 flip + dlib + landmarks", "ranker"),
    ("regressor", "lite0 + lite2 flip + dlib + landmarks", "regressor"),
    ("ridge", "lite0 simclr", "ridge"),
    ("regressor", "lite0 simclr", "regressor"),
    ("ridge", "lite0 simclr flip + dlib", "ridge"),
    ("regressor", "lite0 simclr flip + dlib", "regressor"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--faces", type=int, help="use only the first N faces (smoke runs)")
    parser.add_argument(
        "--default-pairs", type=int, default=20000, help="training pairs of the default-ranker row"
    )
    parser.add_argument(
        "--contrastive-epochs",
        type=int,
        default=0,
        help="add the rows on contrastively adapted Lite0 features (0: leave them out)",
    )
    parser.add_argument(
        "--contrastive-last-n", type=int, default=None, help="adapt only the top K layers (default: all)"
    )
    parser.add_argument(
        "--contrastive-protocol",
        choices=["per-fold", "all-faces"],
        default="per-fold",
        help="adapt on each fold's training faces, or once on all faces' images",
    )
    parser.add_argument("--lora-folds", type=int, default=0, help="LoRA rows on the first K folds (0: none)")
    parser.add_argument("--lora-image-size", type=int, default=224)
    parser.add_argument("--lora-last-n", type=int, default=12, help="layers with adapters (top of the tower)")
    parser.add_argument("--lora-epochs", type=int, default=8)
    add_result_options(parser)
    args = parser.parse_args()
    use_dlib = not args.no_dlib and dlib_available()

    omi = load_omi()  # trustworthy, attractive, smart
    if args.faces:
        omi = subset_faces(omi, args.faces)
    print(
        f"OMI: {len(omi.means)} faces, {len(omi.ratings)} ratings; {args.folds}-fold image-disjoint CV, "
        f"seed {args.seed}",
        flush=True,
    )
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    feature_sets, embed_seconds = embed_feature_sets(omi, args.cache_dir, use_dlib, args.device)
    contrastive = ContrastiveFeatures(omi, feature_sets, args) if args.contrastive_epochs else None
    if contrastive is not None:
        feature_sets.update(contrastive.feature_sets())
    ceiling = noise_ceiling_table(omi, seed=args.seed)
    settings = HeadSettings(seed=args.seed, device=args.device, n_ensemble=DEMO_ENSEMBLE)
    # The '-default' rows are what a new user gets: constructor defaults, and 20,000 pairs of
    # training faces for the ranker (a plain consensus-pairs table, as in README's example).
    defaults = HeadSettings(seed=args.seed, device=args.device, n_pairs=args.default_pairs)

    tables, train_seconds, figures, fold_metrics = [], {}, {}, {}
    for _, features, model in ROWS:
        if features not in feature_sets:
            continue
        Z, sizes = feature_sets[features]
        row_settings = defaults if model.endswith("-default") else settings
        per_fold = contrastive.fold_function(features) if features.startswith("lite0 simclr") else None
        result = cross_validate(
            omi, Z, sizes, [model], folds=args.folds, settings=row_settings, fold_features=per_fold
        )
        table = results_table(result, ceiling, extra_label=f" [{features}]")
        if model == "ridge" and features != "lite0":  # only ridge on plain lite0 is the baseline
            table = table.rename(index=lambda m: m.replace("ridge (baseline)", "ridge"), level="model")
        label = f"{model} [{features}]"
        fold_metrics[label] = result.metrics
        train_seconds[label] = round(result.seconds[model], 1)
        summary = result.summary()
        figures[label] = {
            a: {k: round(float(v), 4) for k, v in summary.loc[(a, model)].items() if not pd.isna(v)}
            for a in result.attributes
        }
        print(
            f"{label}: "
            + " / ".join(f"{figures[label][a]['pair_acc']:.3f}" for a in result.attributes)
            + f"  ({train_seconds[label]} s)",
            flush=True,
        )
        tables.append(table)

    table = pd.concat(tables)
    ceiling_rows = table.index.get_level_values("model") == MODEL_LABELS["ceiling"]
    table = pd.concat([table[ceiling_rows].groupby(level=[0, 1], sort=False).first(), table[~ceiling_rows]])
    order = {a: i for i, a in enumerate(omi.attributes)}
    table = table.sort_index(level="attribute", key=lambda idx: idx.map(order), sort_remaining=False)
    print()
    full = table[["pair_acc", "spearman", "headroom"]]
    print(markdown_table(full))
    summary = summary_table(figures, ceiling, list(omi.attributes))
    print()
    print(markdown_table(summary))

    baseline = "ridge [lite0]"
    ceil = {a: round(float(ceiling.loc[a, "pair_acc"]), 4) for a in ceiling.index}
    best = {}
    for a in omi.attributes:
        own = {k: v[a]["pair_acc"] for k, v in figures.items() if not k.startswith("ridge")}
        name = max(own, key=own.get)
        best[a] = {
            "model": name,
            "pair_acc": own[name],
            "over_baseline": round(own[name] - figures[baseline][a]["pair_acc"], 4),
            "headroom": round((own[name] - 0.5) / (ceil[a] - 0.5), 4),
        }
    lora = lora_rows(omi, args, fold_metrics) if args.lora_folds else None
    total = round(time.perf_counter() - start, 1)
    print(
        "\nbest skpercept head per attribute (vs ridge on lite0): "
        + "; ".join(
            f"{a} {b['pair_acc']:.3f} ({b['model']}, {b['over_baseline']:+.3f})" for a, b in best.items()
        )
    )
    print(f"total {total} s (embedding {sum(embed_seconds.values()):.1f} s)")
    result = {
        "benchmark": "omi",
        "faces": int(len(omi.means)),
        "folds": args.folds,
        "seed": args.seed,
        "ceiling": ceil,
        "results": figures,
        "best_skpercept_head": best,
        "baseline": baseline,
        "embed_seconds": embed_seconds,
        "train_seconds": train_seconds,
        "total_seconds": total,
        "cpus": os.cpu_count(),
        "dlib": use_dlib,
        "contrastive": None if contrastive is None else contrastive.summary(),
        "lora": lora,
    }
    print(json.dumps(result))
    protocol = f"{len(omi.means)} faces, {args.folds} image-disjoint folds, seed {args.seed}"
    tables = [
        frame_table(
            "pair-accuracy",
            f"Consensus pair accuracy on held-out faces, trustworthy / attractive / smart ({protocol})",
            summary,
            note="Ranker, regressor and classifier with the demo's head settings (ensembles of "
            f"{DEMO_ENSEMBLE}); the last two columns are the constructor defaults (one net; the ranker on "
            f"{args.default_pairs:,} consensus pairs). Feature sets joined by + are side by side, balanced "
            "by BlockScaler.",
        ),
        frame_table(
            "full",
            f"Every row per attribute: pair accuracy, Spearman's ρ and headroom ({protocol})",
            full,
            note="headroom = (accuracy − 0.5) / (noise ceiling − 0.5).",
        ),
    ]
    if lora:
        tables.append(lora_table(lora, args))
    tags = [
        "contrastive" if contrastive is not None else None,
        "all-faces" if contrastive is not None and args.contrastive_protocol == "all-faces" else None,
        "lora" if args.lora_folds else None,
        None if use_dlib else "no-dlib",
        f"faces{args.faces}" if args.faces else None,
        f"seed{args.seed}" if args.seed else None,
    ]
    save_result(args, result_name("omi", *tags), tables, result)


#: Columns of the summary table: model -> heading.
SUMMARY_COLUMNS = {
    "ridge": "ridge (RidgeCV on mean ratings)",
    "ranker": "PairwiseRanker",
    "regressor": "RatingRegressor",
    "classifier": "RatingClassifier",
    "ranker-default": "PairwiseRanker()",
    "regressor-default": "RatingRegressor()",
}


def summary_table(figures: dict, ceiling: pd.DataFrame, attributes: list) -> pd.DataFrame:
    """One row per feature set, one column per model: pair accuracy as ``t / a / s``."""
    cells: dict = {}
    for label, by_attribute in figures.items():
        model, features = label.split(" [", 1)
        cells.setdefault(features[:-1], {})[SUMMARY_COLUMNS[model]] = slashed(
            by_attribute[a]["pair_acc"] for a in attributes
        )
    frame = pd.DataFrame.from_dict(cells, orient="index")
    frame = frame[[c for c in SUMMARY_COLUMNS.values() if c in frame]].fillna("")
    frame.loc["noise ceiling (split-half raters)"] = ""
    frame.loc["noise ceiling (split-half raters)", SUMMARY_COLUMNS["ridge"]] = slashed(
        ceiling.loc[a, "pair_acc"] for a in attributes
    )
    frame.index.name = "features"
    return frame


def lora_table(lora: dict, args) -> dict:
    """The LoRA ranker against every other row, on the folds it ran on."""
    attributes = list(lora["mean"])
    rows = [
        [f"LoRAPairwiseRanker [lite0 fine-tuned, {lora['image_size']} px]", slashed(lora["mean"].values())]
    ]
    rows += [[label, slashed(v[a] for a in attributes)] for label, v in lora["other_rows_same_folds"].items()]
    epochs = ", ".join(str(f["epochs"]) for f in lora["folds"])
    minutes = sum(f["seconds"] for f in lora["folds"]) / 60
    return table_record(
        "lora",
        f"LoRA fine-tuning against frozen features, folds 0–{args.lora_folds - 1}: pair accuracy t / a / s",
        ["row", "pair accuracy"],
        rows,
        note=f"LoRA adapters on the top {lora['last_n_targets']} layers, every consensus pair of the "
        f"training faces, at most {args.lora_epochs} epochs (ran {epochs}); {minutes:.0f} minutes of "
        "LoRA training in all.",
    )


def lora_rows(omi, args, fold_metrics: dict) -> dict:
    """LoRAPairwiseRanker on the first ``--lora-folds`` folds, and every other row on those folds."""
    import numpy as np

    from skpercept.datasets import consensus_pairs
    from skpercept.finetune import LoRAPairwiseRanker
    from skpercept.model_selection import ImageDisjointSplit
    from skpercept.recipes import pair_metrics

    attributes = list(omi.attributes)
    means = omi.means
    cv = ImageDisjointSplit(n_splits=args.folds, random_state=args.seed)
    folds = []
    for fold, (train, test) in enumerate(cv.split(means[["image"]])):
        if fold >= args.lora_folds:
            break
        start = time.perf_counter()
        pairs = consensus_pairs(means.iloc[train], attributes, random_state=args.seed)
        ranker = LoRAPairwiseRanker(
            image_size=args.lora_image_size,
            last_n_targets=args.lora_last_n,
            batching="images",
            batch_size=32,
            max_epochs=args.lora_epochs,
            patience=3,
            device=args.device,
            random_state=args.seed,
        ).fit(pairs[["image_a", "image_b"]], pairs[attributes])
        scores = ranker.score_items(means["image"].iloc[test].tolist())
        acc = [pair_metrics(scores[:, k], means[a].to_numpy()[test])[0] for k, a in enumerate(attributes)]
        folds.append(
            {
                "fold": fold,
                "pair_acc": dict(zip(attributes, np.round(acc, 4).tolist())),
                "train_pairs": len(pairs),
                "epochs": len(ranker.history_),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(f"lora fold {fold}: " + " / ".join(f"{x:.3f}" for x in acc) + f" ({folds[-1]['seconds']} s)")
    same_folds = {}
    for label, metrics in fold_metrics.items():
        kept = metrics[metrics["fold"] < args.lora_folds]
        same_folds[label] = {
            a: round(float(kept[kept["attribute"] == a]["pair_acc"].mean()), 4) for a in attributes
        }
    lora_mean = {a: round(float(np.mean([f["pair_acc"][a] for f in folds])), 4) for a in attributes}
    print(
        f"on folds 0-{args.lora_folds - 1}: lora "
        + " / ".join(f"{lora_mean[a]:.3f}" for a in attributes)
        + "; ridge [lite0] "
        + " / ".join(f"{same_folds['ridge [lite0]'][a]:.3f}" for a in attributes)
    )
    return {
        "folds": folds,
        "mean": lora_mean,
        "other_rows_same_folds": same_folds,
        "image_size": args.lora_image_size,
        "last_n_targets": args.lora_last_n,
    }


class ContrastiveFeatures:
    """Lite0 adapted to the faces by ``ContrastiveEmbedder`` (no labels), as feature sets.

    ``protocol='per-fold'``: adapted on each fold's training faces only (``fold_features`` of
    ``cross_validate``; the adaptation never sees a test image). ``'all-faces'``: adapted once
    on every face's image. Each adaptation is run once and shared by the rows that use it.
    """

    def __init__(self, omi, feature_sets: dict, args) -> None:
        self.images = omi.means["image"].to_numpy()
        self.dlib = feature_sets.get("dlib")
        self.lite0_sizes = list(feature_sets["lite0"][1])
        self.args = args
        self.fits: dict = {}
        self.log: list = []

    def feature_sets(self) -> dict:
        """Name -> (Z, block sizes); Z is None per fold (computed fold by fold by the rows)."""
        import numpy as np

        names = ["lite0 simclr"] + (["lite0 simclr flip + dlib"] if self.dlib is not None else [])
        if self.args.contrastive_protocol == "all-faces":
            return {name: self.features(name, np.arange(len(self.images))) for name in names}
        # The adapted tower is as wide as the base one.
        sizes = {
            "lite0 simclr": self.lite0_sizes,
            "lite0 simclr flip + dlib": self.lite0_sizes + self.dlib[1],
        }
        return {name: (None, sizes[name]) for name in names}

    def _adapted(self, train) -> tuple:
        import numpy as np

        from skpercept.finetune import ContrastiveEmbedder

        key = np.asarray(train).tobytes()
        if key not in self.fits:
            start = time.perf_counter()
            embedder = ContrastiveEmbedder(
                max_epochs=self.args.contrastive_epochs,
                last_n_targets=self.args.contrastive_last_n,
                random_state=self.args.seed,
                normalize=False,
                device=self.args.device,
                num_workers=2,
            ).fit(self.images[train])
            fit_seconds = time.perf_counter() - start
            # transform only: fitting again (as a FeatureUnion would) would train again
            images = pd.Series(self.images, name="image")
            plain = embedder.transform(images)
            flip = embedder.set_params(tta=True).transform(images)
            self.fits[key] = (plain, flip)
            valid = embedder.history_[:, "valid_loss"]
            self.log.append(
                {
                    "train_images": int(embedder.n_train_images_),
                    "epochs": len(valid),
                    "best_epoch": int(np.argmin(valid)) + 1,
                    "valid_loss": [round(float(v), 4) for v in valid],
                    "fit_seconds": round(fit_seconds, 1),
                    "embed_seconds": round(time.perf_counter() - start - fit_seconds, 1),
                }
            )
            print(f"contrastive adaptation {len(self.log)}: {self.log[-1]}", flush=True)
        return self.fits[key]

    def features(self, name: str, train) -> tuple:
        """(Z, block sizes) of feature set ``name`` adapted on the faces ``train``."""
        import numpy as np

        plain, flip = self._adapted(train)
        if name == "lite0 simclr":
            return plain, [plain.shape[1]]
        Zd, sizes = self.dlib
        return np.hstack([flip, Zd]), [flip.shape[1], *sizes]

    def fold_function(self, name: str):
        """``fold_features`` for ``cross_validate`` (per-fold), or None (all faces: use ``Z``)."""
        if self.args.contrastive_protocol != "per-fold":
            return None
        return lambda train: self.features(name, train)[0]

    def summary(self) -> dict:
        return {
            "protocol": self.args.contrastive_protocol,
            "max_epochs": self.args.contrastive_epochs,
            "last_n_targets": self.args.contrastive_last_n,
            "adaptations": self.log,
        }


if __name__ == "__main__":
    main()
