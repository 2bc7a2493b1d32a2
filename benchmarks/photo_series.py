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

Held-out faces: every face not used for training (884 at the defaults), 8 versions each.
Non-face photos: the photographs that ship with scikit-image (``skimage.data``: a cat, coffee,
a rocket, coins, bricks, grass, gravel, the moon, a retina, cells, a motorcycle, ...; the
astronaut, a face, is left out) and scikit-learn's two sample photos, each cut into
non-overlapping 256 px tiles — every tile a subject of its own, so tiles of one photo (same
light, same texture) are the hardest different subjects — with series made the same way.

Measured:

(a) grouping, the two errors apart (``skpercept.metrics.grouping_errors``): the share of groups
    with more than one photo that mix subjects (false merges: the costly error, since a person
    may delete every photo but the best of a group) and the share of true series split apart
    (a second look), with the adjusted Rand index, across settings with the default marked, on
    the held-out faces and on the non-face photos; and on three albums of one photo per held-out
    face (a random version each), where any group of two is a false merge: ``merged_singles``
    counts the photos so grouped, over the three albums. Rules: what ``skpercept rank`` uses —
    candidates by ``LayoutEmbedder`` on ``grouping_view``, joined only when their aligned fine
    detail matches (``detail_similarity`` above ``min_similarity``), complete linkage — and, for
    comparison, the layout vectors alone cut at a cosine distance (the rule before). Then with
    capture times: each series a burst (its photos 1 s apart) and the series shot back to back
    (the next subject 1.5 s after the last photo of the one before), so that neighbouring
    subjects also fall within the 2 s burst window. And how sure: the share of multi-photo
    groups marked "near-certain duplicate" and how many of those mix subjects.
(b) choosing: top-1-in-series accuracy (is the undamaged version ranked first?) of a
    ``PairwiseRanker`` on Lite0 features, trained on degradation pairs of the training faces
    (undamaged ≻ damaged, and less ≻ more damaged within a kind), against the no-training quality
    baseline (``skpercept.photos.quality_baseline``); also, per kind, how often the undamaged
    version outscores a damaged one (on the first 200 held-out faces).
(c) speed: ``skpercept rank`` as a subprocess on 1,000 of the held-out images, cold (empty
    cache) and warm (the same command again).

Ends with one JSON line; the tables and figures also go to
``benchmarks/results/photo_series[-seedS].json`` (``--no-save``: no file). Usage:
``python benchmarks/photo_series.py [--n-train-faces 120] [--n-test-faces 0 (all the others)]
[--no-rank-timing] [--workdir DIR] [--no-save]``; images and embeddings are kept in ``--workdir``
(default: a folder in the system's temporary directory).
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
from skpercept.embed import LayoutEmbedder
from skpercept.heads import HeadSettings, make_head
from skpercept.metrics import grouping_ari, grouping_errors, top1_in_series_accuracy
from skpercept.photos import (
    BURST_DISTANCE,
    DEFAULT_MIN_SIMILARITY,
    SURE,
    group_photos,
    grouping_confidence,
    grouping_embeddings,
    photo_pairs,
    scan_photos,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, frame_table, hardware_line, result_name, save_result, table_record

KINDS = {
    "blur": (1.0, 2.0, 3.5),
    "noise": (8.0, 16.0, 32.0),
    "jpeg": (30, 15, 6),
    "bright": (1.4, 1.9, 2.6),
    "dark": (0.6, 0.4, 0.25),
}
VERSIONS = [("clean", 0)] + [(kind, level) for kind in KINDS for level in (1, 2, 3)]
WINDOW = 240
MIN_SIMILARITIES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
LAYOUT_DISTANCES = (0.15, 0.2, BURST_DISTANCE, 0.35)
#: Photographs shipped inside scikit-image (file stems under skimage/data), none of them a face.
NON_FACE_PHOTOS = (
    "brick", "camera", "cell", "chelsea", "clock_motion", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "ihc", "microaneurysms", "moon", "motorcycle_left", "retina", "rocket",
)  # fmt: skip
TILE = 256


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


def non_face_tiles(folder: Path, max_tiles: int = 6) -> list[str]:
    """Non-overlapping 256 px tiles of the non-face photos, each saved as a PNG: one subject each."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {}
    root = Path(skimage.data.__file__).parent
    for stem in NON_FACE_PHOTOS:
        found = sorted(root.glob(f"{stem}.*"))
        if found:
            photos[stem] = Image.open(found[0]).convert("RGB")
    for name, pixels in zip(("china", "flower"), load_sample_images().images):
        photos[name] = Image.fromarray(pixels)
    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    for name, photo in photos.items():
        cells = [(x, y) for y in range(photo.height // TILE) for x in range(photo.width // TILE)][:max_tiles]
        for k, (x, y) in enumerate(cells):
            target = folder / f"{name}-{k}.png"
            photo.crop((x * TILE, y * TILE, (x + 1) * TILE, (y + 1) * TILE)).save(target)
            tiles.append(str(target))
    return tiles


def burst_times(subjects: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Capture times: each series a burst 1 s a frame, the series in random order back to back."""
    times = np.full(len(subjects), np.nan)
    clock = 0.0
    for subject in rng.permutation(subjects.unique()):
        members = np.flatnonzero(subjects.to_numpy() == subject)
        times[members] = clock + np.arange(len(members))
        clock = times[members].max() + 1.5
    return times


def one_photo_each(Z, details, subjects, seed: int) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """One random photo of every subject: an album where no two photos should ever group."""
    rng = np.random.default_rng(seed)
    codes = subjects.to_numpy()
    pick = np.sort([rng.choice(np.flatnonzero(codes == s)) for s in pd.unique(codes)])
    return Z[pick], details[pick], subjects.iloc[pick].reset_index(drop=True)


def sweep(Z, details, subjects, *, times=None, singles: int = 0) -> list[dict]:
    """Both errors (and ARI) of the default rule across min_similarity, and of the layout rule alone.

    With ``singles``, also that many albums of one photo per subject: how many photos there are
    grouped with a photo of another subject (``merged_singles``, summed over the albums)."""
    pairs = photo_pairs(Z, details, capture_times=times)
    albums = [one_photo_each(Z, details, subjects, seed) for seed in range(singles)]
    album_pairs = [photo_pairs(z, d) for z, d, _ in albums]
    rows = []
    for value in MIN_SIMILARITIES:
        groups = group_photos(Z, details, min_similarity=value, capture_times=times, pairs=pairs)
        errors = grouping_errors(subjects, groups)
        rows.append(
            {
                "rule": "layout + aligned detail",
                "setting": f"min_similarity {value}"
                + (" (default)" if value == DEFAULT_MIN_SIMILARITY else ""),
                **errors,
                "ari": round(grouping_ari(subjects, groups), 4),
            }
        )
        if singles:
            merged = 0
            for (z, d, _), p in zip(albums, album_pairs):
                alone = group_photos(z, d, min_similarity=value, pairs=p)
                merged += int(pd.Series(alone).duplicated(keep=False).sum())
            rows[-1]["merged_singles"] = merged
        if value == DEFAULT_MIN_SIMILARITY:  # how sure: groups marked near-certain, and their purity
            keepers = ~pd.Series(groups).duplicated().to_numpy()
            photo, group, _ = grouping_confidence(groups, keepers, pairs)
            sure = pd.Series(group == SURE)
            mixed = pd.Series(subjects.to_numpy()).groupby(groups).nunique() > 1
            marked = sure.groupby(groups).first()
            rows[-1]["sure_groups"] = int(marked.sum())
            rows[-1]["sure_mixed"] = int((marked & mixed).sum())
            truth = subjects.to_numpy()
            keeper_subject = pd.Series(truth[keepers], index=groups[keepers]).reindex(groups).to_numpy()
            sure_photos = photo == SURE
            rows[-1]["sure_photos"] = int(sure_photos.sum())
            rows[-1]["sure_photos_other_subject"] = int((sure_photos & (keeper_subject != truth)).sum())
    if times is None:
        for value in LAYOUT_DISTANCES:
            groups = group_photos_by_layout(Z, value)
            rows.append(
                {
                    "rule": "layout alone (the rule before)",
                    "setting": f"cosine distance {value}",
                    **grouping_errors(subjects, groups),
                    "ari": round(grouping_ari(subjects, groups), 4),
                }
            )
            if singles:
                merged = 0
                for z, _, _ in albums:
                    merged += int(pd.Series(group_photos_by_layout(z, value)).duplicated(keep=False).sum())
                rows[-1]["merged_singles"] = merged
    return rows


def group_photos_by_layout(Z: np.ndarray, threshold: float) -> np.ndarray:
    """The rule before: complete linkage on the layout vectors' cosine distance, cut at threshold."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(Z / np.linalg.norm(Z, axis=1, keepdims=True), metric="cosine")
    return AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="complete"
    ).fit_predict(np.clip(distances, 0, 2))


def show(rows: list[dict], title: str) -> pd.DataFrame:
    """Print the sweep's table (and the default's confidence line); return the table printed."""
    table = pd.DataFrame(rows)
    table["false_merge_rate"] = (100 * table["false_merge_rate"]).round(2).astype(str) + " %"
    table["split_rate"] = (100 * table["split_rate"]).round(1).astype(str) + " %"
    table["apart_rate"] = (100 * table["apart_rate"]).round(1).astype(str) + " %"
    columns = [
        "rule",
        "setting",
        "groups",
        "mixed",
        "false_merge_rate",
        "series",
        "split",
        "split_rate",
        "apart_rate",
        "ari",
    ]
    if "merged_singles" in table:
        columns.append("merged_singles")
    print(f"\n{title}\n" + table[columns].to_string(index=False))
    print(confidence_line(rows))
    return table[columns]


def confidence_line(rows: list[dict]) -> str:
    """How sure the default grouping is: groups and photos marked near-certain, and their errors."""
    default = [r for r in rows if "sure_groups" in r]
    if not default:
        return ""
    r = default[0]
    return (
        f"At the default: {r['sure_groups']} of {r['groups']} multi-photo groups marked '{SURE}' "
        f"({r['sure_mixed']} of them mixed); {r['sure_photos']} non-best photos marked '{SURE}' "
        f"({r['sure_photos_other_subject']} of another subject than their group's best)."
    )


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
    errors = grouping_errors(faces, ranking["group"].fillna(-1))
    seconds["false_merge_rate"], seconds["split_rate"] = errors["false_merge_rate"], errors["split_rate"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train-faces", type=int, default=120)
    parser.add_argument("--n-test-faces", type=int, default=0, help="held-out faces (0: all the others)")
    parser.add_argument("--n-choice-faces", type=int, default=200, help="held-out faces for (b)")
    parser.add_argument("--series-size", type=int, default=8)
    parser.add_argument("--rank-images", type=int, default=1000, help="images for the rank timing")
    parser.add_argument("--no-rank-timing", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "skpercept-photo-series"))
    add_result_options(parser)
    args = parser.parse_args()
    from skpercept.embed import TimmEmbedder

    start = time.perf_counter()
    workdir = Path(args.workdir)
    faces = load_omi().means["image"].to_numpy()
    order = np.random.default_rng(args.seed).permutation(len(faces))
    n_test = args.n_test_faces or len(faces) - args.n_train_faces
    train_faces = [faces[i] for i in order[: args.n_train_faces]]
    test_faces = [faces[i] for i in order[args.n_train_faces : args.n_train_faces + n_test]]
    shutil.rmtree(workdir / "images", ignore_errors=True)
    train = make_series(train_faces, None, workdir / "images" / "train", args.seed)
    test = make_series(test_faces, args.series_size, workdir / "images" / "test", args.seed + 1)
    tiles = non_face_tiles(workdir / "images" / "tiles")
    other = make_series(tiles, args.series_size, workdir / "images" / "other", args.seed + 3)
    print(
        f"data: {len(train_faces)} training faces x {len(VERSIONS)} versions = {len(train)} images; "
        f"{len(test_faces)} held-out faces x {args.series_size} = {len(test)} images (disjoint faces); "
        f"{len(tiles)} non-face subjects (256 px tiles of {len({Path(t).stem.rsplit('-', 1)[0] for t in tiles})} "
        f"photos) x {args.series_size} = {len(other)} images"
    )
    print(hardware_line(), flush=True)

    layout = LayoutEmbedder(device=args.device)
    results, seconds, tables = {}, {}, []
    for name, table in (("training faces", train), ("held-out faces", test), ("non-face photos", other)):
        t0 = time.perf_counter()
        Z = grouping_embeddings(table["image"], layout)
        scan = scan_photos(table["image"], thumbnails=False)
        details = np.stack(scan["detail"].to_list())
        subjects = table["face"]
        results[name] = sweep(Z, details, subjects, singles=3 if name == "held-out faces" else 0)
        title = f"(a) grouping, {name}: {len(table)} photos, {subjects.nunique()} subjects"
        tables.append(grouping_table(name, title, show(results[name], title), results[name]))
        if name != "training faces":
            times = burst_times(subjects, np.random.default_rng(args.seed + 4))
            results[f"{name}, bursts"] = sweep(Z, details, subjects, times=times)
            title = f"(a) grouping, {name} with capture times (series as bursts, back to back)"
            shown = show(results[f"{name}, bursts"], title)
            tables.append(grouping_table(f"{name}, bursts", title, shown, results[f"{name}, bursts"]))
        seconds[name] = round(time.perf_counter() - t0, 1)
        if name == "held-out faces":
            baseline = scan["baseline"].to_numpy()

    # (b) choosing: Lite0 features of the photos as they are
    t0 = time.perf_counter()
    chosen = test[test["face"].isin(test["face"].unique()[: args.n_choice_faces])]
    lite0 = TimmEmbedder(crop_pct=1.0, cache_dir=workdir / "cache", device=args.device, num_workers=2)
    features = {
        "train": grouping_embeddings(train["image"], lite0, view=False),
        "test": grouping_embeddings(chosen["image"], lite0, view=False),
    }
    X, y = training_pairs(train, features["train"], np.random.default_rng(args.seed))
    settings = HeadSettings(seed=args.seed, device=args.device, max_epochs=40, patience=8)
    with torch_threads(settings.threads):
        ranker = make_head("ranker", settings).fit(X, y)
    ranker_scores = ranker.score_items(features["test"])
    chosen_baseline = baseline[test.index.get_indexer(chosen.index)]
    truth = (chosen["kind"] == "clean").to_numpy(np.float64)
    choosing = {
        "ranker_top1": round(top1_in_series_accuracy(chosen["face"], truth, ranker_scores), 4),
        "baseline_top1": round(top1_in_series_accuracy(chosen["face"], truth, chosen_baseline), 4),
        "chance_top1": round(1 / args.series_size, 4),
        "train_pairs": len(y),
        "faces": int(chosen["face"].nunique()),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    wins = pd.DataFrame(
        {"ranker": win_rates(chosen, ranker_scores), "baseline": win_rates(chosen, chosen_baseline)}
    )

    timing = {}
    if not args.no_rank_timing:
        folder = workdir / "images" / "rank"
        shutil.rmtree(folder, ignore_errors=True)
        for image in test["image"][: args.rank_images]:
            target = folder / Path(image).parent.name / Path(image).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, target)
        timing = {"images": min(args.rank_images, len(test)), **time_rank(folder, workdir, args.device)}

    print(f"\n(b) choosing the undamaged version of {choosing['faces']} held-out series: top-1 in series")
    print(
        f"ranker {choosing['ranker_top1']:.3f}, quality baseline {choosing['baseline_top1']:.3f}, chance "
        f"{choosing['chance_top1']:.3f} ({choosing['train_pairs']} training pairs)\n"
    )
    print("undamaged outscores damaged, by kind of damage:\n" + wins.to_string())
    if timing:
        print(
            f"\n(c) skpercept rank on {timing['images']} images: cold {timing['cold']} s, warm "
            f"{timing['warm']} s (false merges {timing['false_merge_rate']:.2%}, split {timing['split_rate']:.1%})"
        )
    tables += choosing_tables(choosing, wins, timing)
    result = {
        "benchmark": "photo_series",
        "seed": args.seed,
        "grouping": results,
        "grouping_seconds": seconds,
        "choosing": choosing,
        "win_rates": wins.to_dict(),
        "rank_timing": timing,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))
    save_result(args, result_name("photo_series", f"seed{args.seed}" if args.seed else None), tables, result)


def grouping_table(name: str, title: str, shown: pd.DataFrame, rows: list[dict]) -> dict:
    """One grouping sweep as a table of the result file (id: the set's name, dashed)."""
    note = (
        "groups: multi-photo groups; mixed: those that mix subjects (false merges, rate beside); "
        "split: true series split apart; apart_rate: photos not with their series' main group"
        + (
            "; merged_singles: photos grouped with another subject's over three albums of one photo "
            "per subject"
            if "merged_singles" in shown
            else ""
        )
        + ". "
        + confidence_line(rows)
    )
    default = f"min_similarity {DEFAULT_MIN_SIMILARITY} (default)"
    return frame_table(
        name.replace(",", "").replace(" ", "-"),
        title,
        shown,
        index=False,
        note=note.strip(),
        strong=(default,),
    )


def choosing_tables(choosing: dict, wins: pd.DataFrame, timing: dict) -> list[dict]:
    """(b) top-1 in series and win rates per kind of damage; (c) the command's timing."""
    tables = [
        table_record(
            "choosing",
            f"(b) Choosing the undamaged version of {choosing['faces']} held-out series: top-1 in series",
            ["scorer", "top-1 accuracy"],
            [
                [
                    f"PairwiseRanker on Lite0 ({choosing['train_pairs']:,} training pairs)",
                    f"{choosing['ranker_top1']:.3f}",
                ],
                ["quality baseline (no training)", f"{choosing['baseline_top1']:.3f}"],
                ["chance", f"{choosing['chance_top1']:.3f}"],
            ],
        ),
        frame_table(
            "win-rates",
            "(b) How often the undamaged version outscores a damaged one, by kind of damage",
            wins.rename_axis("damage"),
        ),
    ]
    if timing:
        tables.append(
            table_record(
                "rank-timing",
                f"(c) skpercept rank on {timing['images']:,} held-out images",
                ["cache", "seconds"],
                [
                    ["cold (empty cache)", f"{timing['cold']:.1f}"],
                    ["warm (the same command again)", f"{timing['warm']:.1f}"],
                ],
                note=f"False merges {timing['false_merge_rate']:.2%}, series split {timing['split_rate']:.1%}; "
                "wall time of the command, start-up (importing torch) included.",
            )
        )
    return tables


if __name__ == "__main__":
    main()
