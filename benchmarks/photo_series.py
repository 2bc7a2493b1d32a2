"""Benchmark: photo collections — group degraded series of real faces and pick the undamaged one.

Data: the 1,004 One Million Impressions faces shipped with skpercept (256 px JPEGs, CC BY-NC-SA
4.0). Each face becomes a *series* of near-duplicates: every member is a different 240 px window
of the face (a small crop/shift, up to 16 px), and all but one carry one degradation at one of
three graded levels: Gaussian blur (radius 1, 2, 3.5), Gaussian noise (σ 8, 16, 32), JPEG
quality (30, 15, 6), over-exposure (gain 1.4, 1.9, 2.6) and under-exposure (gain 0.6, 0.4,
0.25). Files are JPEG (quality 95, or the degradation's quality).

Split: faces are shuffled (seed) and split into disjoint training and test faces, so no face —
and no image of it — is on both sides. Training faces get all 16 versions (the undamaged one and
5 kinds x 3 levels); test faces get series of 8 (the undamaged one and 7 versions drawn at
random), all test series mixed in one pool.

Measured on the held-out faces:

(a) grouping: ``skpercept.photos.group_photos`` (complete linkage on cosine distance) on each
    descriptor's L2-normalised vectors, its threshold chosen on training-face series of the same
    shape (the middle of the plateau of best adjusted Rand index); adjusted Rand index against the
    faces, mAP@10 and Recall@10 of near-duplicate retrieval. Descriptors: ``LayoutEmbedder``
    (shipped EfficientNet-Lite0) of ``grouping_view`` — what ``skpercept rank`` uses —, the
    same network's pooled embedding (``TimmEmbedder``, whole image) of the view and of the
    photos as they are, and, when installed, dlib's face descriptor (photos as they are).
(b) choosing: top-1-in-series accuracy (is the undamaged version ranked first?) of a
    ``PairwiseRanker`` on Lite0 features, trained on degradation pairs of the training faces
    (undamaged ≻ damaged, and less ≻ more damaged within a kind), against the no-training quality
    baseline (``skpercept.photos.quality_baseline``); also, per kind, how often the undamaged
    version outscores a damaged one.
(c) speed: ``skpercept rank`` as a subprocess on 1,000 of the test images, cold (empty cache)
    and warm (the same command again).

Ends with one JSON line. Usage: ``python benchmarks/photo_series.py [--n-train-faces 120]
[--n-test-faces 200] [--no-dlib] [--no-rank-timing] [--workdir DIR]``; images and embeddings
are kept in ``--workdir`` (default: a folder in the system's temporary directory).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from skpercept._utils import torch_threads
from skpercept.datasets import load_omi
from skpercept.embed import LayoutEmbedder, dlib_available
from skpercept.heads import HeadSettings, make_head
from skpercept.metrics import grouping_ari, map_at_k, recall_at_k, top1_in_series_accuracy
from skpercept.photos import DEFAULT_THRESHOLD, group_photos, grouping_embeddings, scan_photos

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import hardware_line

KINDS = {
    "blur": (1.0, 2.0, 3.5),
    "noise": (8.0, 16.0, 32.0),
    "jpeg": (30, 15, 6),
    "bright": (1.4, 1.9, 2.6),
    "dark": (0.6, 0.4, 0.25),
}
VERSIONS = [("clean", 0)] + [(kind, level) for kind in KINDS for level in (1, 2, 3)]
WINDOW = 240
THRESHOLDS = np.round(np.arange(0.02, 0.80, 0.01), 2)


def degrade(face: Image.Image, kind: str, level: int, rng: np.random.Generator) -> bytes:
    """One series member: a random 240 px window of the face with one degradation, as JPEG bytes."""
    left, top = rng.integers(0, face.width - WINDOW + 1), rng.integers(0, face.height - WINDOW + 1)
    image = face.crop((left, top, left + WINDOW, top + WINDOW))
    quality = 95
    if kind != "clean":
        value = KINDS[kind][level - 1]
        if kind == "blur":
            image = image.filter(ImageFilter.GaussianBlur(value))
        elif kind == "noise":
            pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, value, (WINDOW, WINDOW, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
        elif kind == "jpeg":
            quality = int(value)
        else:
            image = Image.fromarray(
                np.clip(np.asarray(image, dtype=np.float64) * value, 0, 255).astype(np.uint8)
            )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_series(faces: list[str], versions_per_face: int | None, folder: Path, seed: int) -> pd.DataFrame:
    """Write each face's versions under ``folder/<face>/``; one row per image file."""
    rows = []
    for f, path in enumerate(faces):
        rng = np.random.default_rng([seed, f])
        chosen = list(range(len(VERSIONS)))
        if versions_per_face is not None:
            chosen = [0] + sorted(
                rng.choice(np.arange(1, len(VERSIONS)), versions_per_face - 1, replace=False)
            )
        face = Image.open(path).convert("RGB")
        (folder / Path(path).stem).mkdir(parents=True, exist_ok=True)
        for v in chosen:
            kind, level = VERSIONS[v]
            target = folder / Path(path).stem / f"{kind}{level}.jpg"
            target.write_bytes(degrade(face, kind, level, rng))
            rows.append({"image": str(target), "face": Path(path).stem, "kind": kind, "level": level})
    return pd.DataFrame(rows)


def choose_threshold(Z: np.ndarray, faces, linkage: str = "complete") -> tuple[float, float]:
    """The middle of the plateau of best adjusted Rand index over THRESHOLDS, and that ARI."""
    ari = np.array([grouping_ari(faces, group_photos(Z, threshold=t, linkage=linkage)) for t in THRESHOLDS])
    best = np.flatnonzero(ari >= ari.max() - 1e-9)
    return float(THRESHOLDS[best[len(best) // 2]]), float(ari.max())


def training_pairs(table: pd.DataFrame, Z: np.ndarray, rng: np.random.Generator):
    """Pair features ([left | right]) and labels: undamaged ≻ damaged, less ≻ more within a kind."""
    left, right = [], []
    for _, members in table.groupby("face"):
        index = dict(zip(zip(members["kind"], members["level"]), members.index))
        clean = index[("clean", 0)]
        for (kind, level), i in index.items():
            if kind == "clean":
                continue
            left.append(clean), right.append(i)
            for other in range(level + 1, 4):
                left.append(i), right.append(index[(kind, other)])
    left, right = np.array(left), np.array(right)
    swap = rng.random(len(left)) < 0.5  # both label values, in random order
    a, b = np.where(swap, right, left), np.where(swap, left, right)
    return np.hstack([Z[a], Z[b]]), (~swap).astype(np.float64)


def win_rates(table: pd.DataFrame, scores: np.ndarray) -> dict:
    """Per kind of damage: share of (undamaged, damaged) pairs of one face the undamaged wins."""
    table = table.assign(score=scores)
    clean = table[table["kind"] == "clean"].set_index("face")["score"]
    damaged = table[table["kind"] != "clean"]
    wins = damaged["face"].map(clean).to_numpy() > damaged["score"].to_numpy()
    return pd.Series(wins, index=damaged["kind"].to_numpy()).groupby(level=0).mean().round(3).to_dict()


def time_rank(folder: Path, workdir: Path, device: str) -> dict:
    """Wall seconds of ``skpercept rank`` on ``folder``, cold (fresh cache) then warm."""
    cache, out = workdir / "rank-cache", workdir / "rank-out"
    shutil.rmtree(cache, ignore_errors=True)
    seconds = {}
    for run in ("cold", "warm"):
        start = time.perf_counter()
        command = [sys.executable, "-m", "skpercept.cli", "rank", str(folder), "--output", str(out)]
        command += ["--cache-dir", str(cache), "--no-progress", "--device", device]
        subprocess.run(command, check=True)
        seconds[run] = round(time.perf_counter() - start, 1)
    ranking = pd.read_csv(out / "ranking.csv")
    faces = ranking["path"].str.split("/").str[0]
    seconds["ari"] = round(grouping_ari(faces, ranking["group"].fillna(-1)), 4)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train-faces", type=int, default=120)
    parser.add_argument("--n-test-faces", type=int, default=200)
    parser.add_argument("--series-size", type=int, default=8)
    parser.add_argument("--rank-images", type=int, default=1000, help="images for the rank timing")
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--no-rank-timing", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "skpercept-photo-series"))
    args = parser.parse_args()
    from skpercept.embed import DlibFaceEmbedder, TimmEmbedder

    start = time.perf_counter()
    workdir = Path(args.workdir)
    faces = load_omi().means["image"].to_numpy()
    order = np.random.default_rng(args.seed).permutation(len(faces))
    train_faces = [faces[i] for i in order[: args.n_train_faces]]
    test_faces = [faces[i] for i in order[args.n_train_faces : args.n_train_faces + args.n_test_faces]]
    shutil.rmtree(workdir / "images", ignore_errors=True)
    train = make_series(train_faces, None, workdir / "images" / "train", args.seed)
    test = make_series(test_faces, args.series_size, workdir / "images" / "test", args.seed + 1)
    # training series shaped like the test ones (8 versions), to choose each backbone's threshold
    pick = np.random.default_rng(args.seed + 2)
    train_series = train.groupby("face", group_keys=False)[["kind"]].apply(
        lambda m: m.iloc[[0, *sorted(pick.choice(np.arange(1, len(m)), args.series_size - 1, replace=False))]]
    )
    print(
        f"data: {len(train_faces)} training faces x {len(VERSIONS)} versions = {len(train)} images; "
        f"{len(test_faces)} held-out faces x {args.series_size} = {len(test)} images (disjoint faces)"
    )
    print(hardware_line(), flush=True)

    cache = workdir / "cache"
    lite0 = TimmEmbedder(crop_pct=1.0, cache_dir=cache, device=args.device, num_workers=2)
    # (name, embedder, grouping view): 'layout' on the view is what `skpercept rank` uses; the
    # pooled Lite0 embedding of the view and of the photos as they are show what each part adds
    plans = [
        ("layout", LayoutEmbedder(device=args.device), True),
        ("lite0 pooled", lite0, True),
        ("lite0 as is", lite0, False),
    ]
    if not args.no_dlib and dlib_available():
        plans.append(("dlib", DlibFaceEmbedder(cache_dir=cache, num_workers=2), False))
    grouping, features = {}, {}
    for name, embedder, view in plans:
        t0 = time.perf_counter()
        # the ranker's features are lite0's on the photos as they are, for all training versions
        everything = name == "lite0 as is"
        z_train = grouping_embeddings(
            train["image"] if everything else train.loc[train_series.index, "image"], embedder, view=view
        )
        z_test = grouping_embeddings(test["image"], embedder, view=view)
        if everything:
            features = {"train": z_train, "test": z_test}
            z_train = z_train[train.index.get_indexer(train_series.index)]
        threshold, train_ari = choose_threshold(z_train, train.loc[train_series.index, "face"])
        groups = group_photos(z_test, threshold=threshold)
        grouping[name] = {
            "threshold": threshold,
            "train_ari": round(train_ari, 4),
            "ari": round(grouping_ari(test["face"], groups), 4),
            "map@10": round(map_at_k(test["face"], z_test, k=10), 4),
            "recall@10": round(recall_at_k(test["face"], z_test, k=10), 4),
            "groups": int(groups.max() + 1),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if name == "layout":
            default = group_photos(z_test, threshold=DEFAULT_THRESHOLD)
            grouping[name]["ari_at_default"] = round(grouping_ari(test["face"], default), 4)
            # the same vectors under average linkage, its threshold chosen the same way
            average, average_train = choose_threshold(
                z_train, train.loc[train_series.index, "face"], "average"
            )
            grouping["layout, average linkage"] = {
                "threshold": average,
                "train_ari": round(average_train, 4),
                "ari": round(
                    grouping_ari(test["face"], group_photos(z_test, threshold=average, linkage="average")), 4
                ),
            }
        print(f"{name}: {grouping[name]}", flush=True)

    t0 = time.perf_counter()
    X, y = training_pairs(train, features["train"], np.random.default_rng(args.seed))
    settings = HeadSettings(seed=args.seed, device=args.device, max_epochs=40, patience=8)
    with torch_threads(settings.threads):
        ranker = make_head("ranker", settings).fit(X, y)
    ranker_scores = ranker.score_items(features["test"])
    baseline = scan_photos(test["image"], thumbnails=False)["baseline"].to_numpy()
    truth = (test["kind"] == "clean").to_numpy(np.float64)
    choosing = {
        "ranker_top1": round(top1_in_series_accuracy(test["face"], truth, ranker_scores), 4),
        "baseline_top1": round(top1_in_series_accuracy(test["face"], truth, baseline), 4),
        "chance_top1": round(1 / args.series_size, 4),
        "train_pairs": len(y),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    wins = pd.DataFrame({"ranker": win_rates(test, ranker_scores), "baseline": win_rates(test, baseline)})

    timing = {}
    if not args.no_rank_timing:
        folder = workdir / "images" / "rank"
        shutil.rmtree(folder, ignore_errors=True)
        for image in test["image"][: args.rank_images]:
            target = folder / Path(image).parent.name / Path(image).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, target)
        timing = {"images": min(args.rank_images, len(test)), **time_rank(folder, workdir, args.device)}

    print("\n(a) grouping held-out series (all mixed in one pool)\n")
    print(pd.DataFrame(grouping).T.to_string())
    print("\n(b) choosing the undamaged version: top-1 in series")
    print(
        f"ranker {choosing['ranker_top1']:.3f}, quality baseline {choosing['baseline_top1']:.3f}, chance "
        f"{choosing['chance_top1']:.3f} ({choosing['train_pairs']} training pairs)\n"
    )
    print("undamaged outscores damaged, by kind of damage:\n" + wins.to_string())
    if timing:
        print(
            f"\n(c) skpercept rank on {timing['images']} images: cold {timing['cold']} s, warm "
            f"{timing['warm']} s (grouping ARI {timing['ari']})"
        )
    result = {
        "benchmark": "photo_series",
        "seed": args.seed,
        "grouping": grouping,
        "choosing": choosing,
        "win_rates": wins.to_dict(),
        "rank_timing": timing,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
