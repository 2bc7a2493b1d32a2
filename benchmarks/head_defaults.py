"""Benchmark: the heads' defaults against ridge (new faces) and against the old defaults (people).

The measurements behind the default ``PairwiseRanker()`` / ``RatingRegressor()``: a small
trunk (64 units, dropout 0.3) with an internal validation split that holds out items.

Part A, new images. Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0), mean
ratings of trustworthy, attractive and smart; features: ``TimmEmbedder()`` with its defaults
(shipped EfficientNet-Lite0, 1280-d, L2-normalized). Split: 5 image-disjoint folds over faces
(``ImageDisjointSplit``, seed 0). The ranker learns from 20,000 random consensus pairs of
training faces (all three attributes at once), the regressor and RidgeCV from the training
faces' mean ratings. Metric: accuracy of ordering two held-out faces as their mean ratings
do (all pairs of test faces, ties skipped), averaged over folds.

Part B, known items and people. Data: ``../shared/data/paircomp`` (Topmodel2007: 192 people x
15 pairs of 6 photos; CEMSChoice: 303 people x ~15 pairs of 6 universities; GPL-2, see that
folder's README), features ``[item one-hot | person one-hot]`` per half (the one-hot ranker).
Split: 3 judgments per person held out (seeds 0-2), training on all the other judgments or on
5 per person. Metric: pairwise accuracy on the held-out judgments (ties earn half).

Part C, out of domain (``--altered``): the same folds, models trained on the original
training faces (the RidgeCV and ``PairwiseRanker()`` rows of Part A), scored on the held-out
faces as other photos of them would look: brighter (PIL brightness x1.6), cropped (the central
75 %, enlarged back), JPEG-compressed at quality 12, and grayscale. The altered files are written
once under the cache folder and embedded like the originals. Metric as in Part A.

Rows: the old defaults (hidden (256, 128), dropout 0.1, row-wise validation split), the same
trunk with the item hold-out, a linear ranker, and the new defaults (``validation_split='auto'``:
items for embeddings, rows for one-hot item ids). ``--pair-ceiling`` adds what a linear model
can draw from the same pairs: scikit-learn's ``LogisticRegression`` on the pair differences
``z_a − z_b`` (no intercept; the ranker's model with ``hidden_layer_sizes=()``), one per
attribute, fitted at each ``C`` of :data:`PAIR_CS`, with the ``C`` whose mean over the folds is
best on the held-out faces: chosen on the test faces, so a ceiling, not a model one could fit.
Hardware: printed. Ends with one JSON line; the tables and figures also go to
``benchmarks/results/head_defaults[-altered][-pair-ceiling][-seedS].json`` (``--no-save``: no
file).

Usage: python benchmarks/head_defaults.py [--folds 5] [--seed 0] [--paircomp DIR] [--skip-omi]
       [--skip-paircomp] [--altered] [--only-defaults] [--pair-ceiling] [--no-save]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageEnhance
from sklearn.linear_model import LogisticRegression, RidgeCV

from skpercept import TimmEmbedder
from skpercept.datasets import consensus_pairs, load_omi
from skpercept.embed import default_cache_dir
from skpercept.heads import PairwiseRanker, RatingRegressor
from skpercept.metrics import pairwise_accuracy
from skpercept.model_selection import ImageDisjointSplit
from skpercept.recipes import pair_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, result_name, save_result, slashed, table_record

ATTRIBUTES = ["trustworthy", "attractive", "smart"]
OLD = dict(hidden_layer_sizes=(256, 128), dropout=0.1, batch_size=256)
RANKERS = {
    "old defaults (rows)": dict(OLD, validation_split="rows"),
    "old trunk, item hold-out": dict(OLD, validation_split="items"),
    "linear, item hold-out": dict(hidden_layer_sizes=(), validation_split="items"),
    "PairwiseRanker()": {},
}
REGRESSORS = {"old defaults": OLD, "RatingRegressor()": {}}
PAIRCOMP_RANKERS = {
    "old defaults (rows)": dict(OLD, validation_split="rows"),
    "new trunk, item hold-out": dict(validation_split="items"),
    "PairwiseRanker()": {},
}


ALTERATIONS = {
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.6),
    "cropped": lambda im: im.crop(_central(im.size, 0.75)).resize(im.size, Image.BICUBIC),
    "jpeg q12": lambda im: _jpeg(im, 12),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
}
#: ``--pair-ceiling``: the inverse penalties of the logistic regression on pair differences.
PAIR_CS = (0.03, 0.1, 0.3, 1.0, 3.0)
PAIR_CEILING = "LogisticRegression on z_a − z_b, best C on the test faces"
#: The models of Part A scored out of domain.
OOD_MODELS = ("RidgeCV", "PairwiseRanker()")


def _central(size: tuple[int, int], share: float) -> tuple[int, int, int, int]:
    w, h = size
    dw, dh = round(w * (1 - share) / 2), round(h * (1 - share) / 2)
    return dw, dh, w - dw, h - dh


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def altered_features(paths: np.ndarray, embedder: TimmEmbedder) -> dict[str, np.ndarray]:
    """Each alteration's embeddings of every face (files written once under the cache folder)."""
    out = {}
    for name, alter in ALTERATIONS.items():
        folder = Path(default_cache_dir()) / "altered-omi" / name.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        altered = []
        for path in paths:
            target = folder / (Path(path).stem + ".png")
            if not target.exists():  # written under another name first: a cut run leaves no half file
                partial = target.with_suffix(".part.png")
                alter(Image.open(path).convert("RGB")).save(partial)
                partial.replace(target)
            altered.append(str(target))
        out[name] = np.asarray(embedder.transform(pd.Series(altered, name="image")), dtype=np.float32)
    return out


def pair_logistic(D: np.ndarray, y: np.ndarray) -> dict[float, np.ndarray]:
    """Per ``C`` of :data:`PAIR_CS`, the ``(n_features, n_attributes)`` weights of a logistic
    regression of each attribute's hard label on the pair differences ``D`` (its pairs only;
    each ``C`` starts from the weights of the one before)."""
    weights = {C: np.zeros((D.shape[1], y.shape[1])) for C in PAIR_CS}
    for k in range(y.shape[1]):
        known = np.isfinite(y[:, k])
        model = LogisticRegression(fit_intercept=False, max_iter=2000, warm_start=True)
        for C in PAIR_CS:
            weights[C][:, k] = model.set_params(C=C).fit(D[known], y[known, k] > 0.5).coef_[0]
    return weights


def new_faces(
    folds: int, seed: int, altered: bool = False, only_defaults: bool = False, pair_ceiling: bool = False
) -> dict:
    omi = load_omi(ATTRIBUTES)
    images = pd.Series(omi.means["image"].to_numpy(), name="image")
    embedder = TimmEmbedder(cache_dir=default_cache_dir()).fit(images)
    Z = np.asarray(embedder.transform(images), dtype=np.float32)
    Z_altered = altered_features(images.to_numpy(), embedder) if altered else {}
    means = omi.means[ATTRIBUTES].to_numpy(np.float64)
    rankers = {k: RANKERS[k] for k in OOD_MODELS if k in RANKERS} if only_defaults else RANKERS
    regressors = {} if only_defaults else REGRESSORS
    scores: dict[str, list] = {}
    ood: dict[str, dict[str, list]] = {k: {} for k in Z_altered}

    def score(name: str, predict, test: np.ndarray) -> None:
        s = np.asarray(predict(Z[test])).reshape(len(test), -1)
        scores.setdefault(name, []).append([pair_metrics(s[:, k], means[test, k])[0] for k in range(3)])
        if name in OOD_MODELS:
            for kind, Z_kind in Z_altered.items():
                s = np.asarray(predict(Z_kind[test])).reshape(len(test), -1)
                ood[kind].setdefault(name, []).append(
                    [pair_metrics(s[:, k], means[test, k])[0] for k in range(3)]
                )

    cv = ImageDisjointSplit(n_splits=folds, random_state=seed)
    for fold, (train, test) in enumerate(cv.split(omi.means[["image"]])):
        frame = pd.DataFrame(means[train], columns=ATTRIBUTES).assign(image=np.arange(len(train)))
        pairs = consensus_pairs(frame, ATTRIBUTES, n_pairs=20000, ties="drop", random_state=fold)
        a, b = pairs["image_a"].to_numpy(int), pairs["image_b"].to_numpy(int)
        X_pairs = np.hstack([Z[train][a], Z[train][b]])
        y_pairs = pairs[ATTRIBUTES].to_numpy(np.float32)
        fitted = {"RidgeCV": RidgeCV(alphas=np.logspace(-2, 4, 13), alpha_per_target=True)}
        fitted.update({k: RatingRegressor(random_state=seed, **p) for k, p in regressors.items()})
        for name, model in fitted.items():
            model.fit(Z[train], means[train])
            score(name, model.predict, test)
        for name, params in rankers.items():
            ranker = PairwiseRanker(random_state=seed, **params).fit(X_pairs, y_pairs)
            score(name, ranker.score_items, test)
        if pair_ceiling:
            for C, W in pair_logistic(Z[train][a] - Z[train][b], y_pairs).items():
                score(f"logistic C={C:g}", lambda Z_test, W=W: Z_test @ W, test)
        print(
            f"fold {fold}: "
            + "; ".join(f"{k} {' / '.join(f'{v:.3f}' for v in acc[-1])}" for k, acc in scores.items()),
            flush=True,
        )

    def mean(table: dict[str, list]) -> dict:
        return {k: dict(zip(ATTRIBUTES, np.round(np.mean(v, axis=0), 4).tolist())) for k, v in table.items()}

    result = mean(scores)
    if pair_ceiling:  # per attribute, the C best on average over the folds
        path = {C: result.pop(f"logistic C={C:g}") for C in PAIR_CS}
        best = {a: max(PAIR_CS, key=lambda C: path[C][a]) for a in ATTRIBUTES}
        result[PAIR_CEILING] = {a: path[best[a]][a] for a in ATTRIBUTES}
        result["pair logistic path"] = {f"{C:g}": path[C] for C in PAIR_CS}
        result["pair logistic best C"] = best
    if Z_altered:
        result = {"original": result, **{kind: mean(table) for kind, table in ood.items()}}
    return result


def _one_hot_pairs(table: pd.DataFrame) -> np.ndarray:
    items = {v: k for k, v in enumerate(sorted(set(table.item_a) | set(table.item_b)))}
    people = {v: k for k, v in enumerate(sorted(table.person.unique()))}
    item_eye, person_eye = np.eye(len(items), dtype=np.float32), np.eye(len(people), dtype=np.float32)
    person = person_eye[table.person.map(people).to_numpy()]
    return np.hstack([item_eye[table.item_a.map(items)], person, item_eye[table.item_b.map(items)], person])


def known_people(folder: Path, seeds: int = 3) -> dict:
    out = {}
    for name in ("topmodel2007", "cemschoice"):
        table = pd.read_csv(folder / f"{name}.csv")
        X, y = _one_hot_pairs(table), table["y"].to_numpy(np.float32)
        for per_person in (None, 5):
            accs: dict[str, list] = {k: [] for k in PAIRCOMP_RANKERS}
            for seed in range(seeds):
                order = np.random.RandomState(seed).permutation(len(table))
                rank = np.empty(len(table), dtype=int)
                rank[order] = pd.Series(order).groupby(table.person.to_numpy()[order]).cumcount().to_numpy()
                test = rank < 3
                train = ~test if per_person is None else (rank >= 3) & (rank < 3 + per_person)
                for k, params in PAIRCOMP_RANKERS.items():
                    ranker = PairwiseRanker(random_state=seed, **params).fit(X[train], y[train])
                    accs[k].append(pairwise_accuracy(y[test], ranker.predict_proba(X[test])[:, 1]))
            label = f"{name}, {'all' if per_person is None else per_person} per person"
            out[label] = {k: round(float(np.mean(v)), 4) for k, v in accs.items()}
            print(label + ": " + "; ".join(f"{k} {v:.3f}" for k, v in out[label].items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--paircomp", default=str(Path(__file__).resolve().parents[2] / "shared/data/paircomp")
    )
    parser.add_argument("--skip-omi", action="store_true")
    parser.add_argument("--skip-paircomp", action="store_true")
    parser.add_argument("--altered", action="store_true", help="also score altered photos (Part C)")
    parser.add_argument(
        "--only-defaults", action="store_true", help="Part A: RidgeCV and PairwiseRanker() only"
    )
    parser.add_argument(
        "--pair-ceiling",
        action="store_true",
        help="Part A: also a logistic regression on the pair differences, C chosen on the test faces",
    )
    add_result_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small heads: a second thread only adds contention
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    result: dict = {"benchmark": "head_defaults"}
    if not args.skip_omi:
        faces = new_faces(
            args.folds,
            args.seed,
            altered=args.altered,
            only_defaults=args.only_defaults,
            pair_ceiling=args.pair_ceiling,
        )
        tables = faces if args.altered else {"original": faces}
        result["omi_new_faces"] = tables["original"]
        if args.altered:
            result["omi_altered_faces"] = {k: v for k, v in tables.items() if k != "original"}
        for kind, table in tables.items():
            print(f"\nOMI, held-out faces, {kind} (trustworthy / attractive / smart):")
            for k, v in table.items():
                if k in ("pair logistic path", "pair logistic best C"):
                    print(f"  {k}: {v}")
                    continue
                print(f"  {k:28s} " + " / ".join(f"{v[a]:.3f}" for a in ATTRIBUTES))
            if "RidgeCV" in table and "PairwiseRanker()" in table:
                gap = [table["PairwiseRanker()"][a] - table["RidgeCV"][a] for a in ATTRIBUTES]
                print(f"  {'default - ridge':28s} " + " / ".join(f"{g:+.3f}" for g in gap))
    if not args.skip_paircomp:
        result["paircomp_held_out_judgments"] = known_people(Path(args.paircomp))
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))
    name = result_name(
        "head_defaults",
        "altered" if args.altered else None,
        "pair-ceiling" if args.pair_ceiling else None,
        f"seed{args.seed}" if args.seed else None,
    )
    save_result(args, name, result_tables(result, args), result)


def _row_label(name: str) -> str:
    """Part A's row names as the table shows them: which head, and which settings."""
    if name in ("RidgeCV", PAIR_CEILING, *OOD_MODELS) or name.endswith("()"):
        return name
    return f"{'RatingRegressor' if name in REGRESSORS else 'PairwiseRanker'}, {name}"


def result_tables(result: dict, args) -> list[dict]:
    """The tables of the result file: Part A (in domain), Part C (altered), Part B (paircomp)."""
    tables = []
    protocol = f"TimmEmbedder() features, {args.folds} image-disjoint folds, seed {args.seed}"
    if "omi_new_faces" in result:
        faces = result["omi_new_faces"]
        order = ["RidgeCV", *[k for k in RANKERS if k in faces], *[k for k in REGRESSORS if k in faces]]
        rows = [[_row_label(k), slashed(faces[k][a] for a in ATTRIBUTES)] for k in order]
        if PAIR_CEILING in faces:
            best = " / ".join(f"{faces['pair logistic best C'][a]:g}" for a in ATTRIBUTES)
            rows.append([f"{PAIR_CEILING} ({best})", slashed(faces[PAIR_CEILING][a] for a in ATTRIBUTES)])
        tables.append(
            table_record(
                "in-domain",
                f"The defaults against ridge and the old defaults: pair accuracy on held-out OMI faces ({protocol})",
                ["", "trustworthy / attractive / smart"],
                rows,
                note="The rankers learn from 20,000 consensus pairs of training faces, the others from "
                "the training faces' mean ratings.",
                strong=("PairwiseRanker()", "RatingRegressor()"),
            )
        )
    if "omi_altered_faces" in result:
        kinds = {"original": result["omi_new_faces"], **result["omi_altered_faces"]}
        rows = []
        for kind, faces in kinds.items():
            ridge, ranker = ([faces[m][a] for a in ATTRIBUTES] for m in OOD_MODELS)
            gap = " / ".join(f"{b - r:+.3f}" for r, b in zip(ridge, ranker))
            rows.append([kind, slashed(ridge), slashed(ranker), gap])
        tables.append(
            table_record(
                "altered",
                f"Out of domain: held-out faces altered, models trained on the original photos ({protocol})",
                ["held-out faces", "RidgeCV", "PairwiseRanker()", "default − ridge"],
                rows,
                note="Pair accuracy, trustworthy / attractive / smart. Brighter: PIL brightness ×1.6; "
                "cropped: the central 75 %, enlarged back; JPEG quality 12; grayscale.",
            )
        )
    if "paircomp_held_out_judgments" in result:
        known = result["paircomp_held_out_judgments"]
        rows = [[label, *(f"{v[k]:.3f}" for k in PAIRCOMP_RANKERS)] for label, v in known.items()]
        tables.append(
            table_record(
                "paircomp",
                "Known items and people (paircomp, one-hot items and people): accuracy on 3 held-out "
                "judgments per person, mean of 3 seeds",
                ["data, training judgments", *PAIRCOMP_RANKERS],
                rows,
                note="A tie earns half. 'all per person': every other judgment of each person trained on.",
            )
        )
    return tables


if __name__ == "__main__":
    main()
