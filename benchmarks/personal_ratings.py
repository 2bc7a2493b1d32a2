"""Benchmark: how sure a personal rating model is — its temperature against none, and against the
shared model on the same ratings.

Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the shipped backbone
(``TimmEmbedder()``, EfficientNet-Lite0, 1280-d; cached, nothing downloaded), and the simulated
people of ``benchmarks/labelling.py`` (``AttributeTastes``: an OMI attribute's population mean
plus ``--personal`` times a person's own taste, standardized), who rate a face 1..``--levels`` by
an ordered logit on the comparisons' noise scale (repeat agreement 0.85).

Per world (``--seed``): the faces are split 80/20 at random; ``--people`` people each rate ``k``
random training faces, for k = 5, 10, 20, 40; every model is scored on the same people's held-out
faces (``--test-faces`` of the 20 %, never rated). Models, each at its defaults otherwise:

- shared: ``RatingClassifier`` on the image features alone (what a model without people says);
- personal, no temperature: ``RatingClassifier(user_features=..., calibration=None)``;
- personal, temperature: ``RatingClassifier(user_features=...)`` (``calibration='auto'``: a
  temperature per attribute fitted on the early-stopping hold-out's ratings inside ``fit``).

``--head lora`` measures ``LoRARatingClassifier`` the same way: the shipped EfficientNet-Lite0
tower fine-tuned end to end on the rated photos (``--image-size`` px, adapters on the last
``--last-n-targets`` layers, as ``benchmarks/lora_omi.py``), its personal part named by a
``user_id`` column; the shared model is the same estimator with ``user_features=None``.

``--head joint`` measures ``JointRatingRanker`` the same way: each person also compares ``k``
random pairs of training faces (Bradley–Terry on the same taste and noise scale), and every
model learns from both label types; the pair table adds the ECE of ``P(left ≻ right)`` of
``--test-pairs`` random pairs of each person's held-out faces (the probability of the
predicted winner against the chance that the person picks it).

Metrics, per model and k, pooled over people and held-out faces:

- ECE: the probability of the predicted rating (the "% sure" a user reads) against the chance
  that the person gives that rating (the simulation's own probabilities, so no sampling noise),
  over 10 equal-width bins;
- stated / right: the mean of each;
- log-loss: the cross-entropy of the model's level probabilities against the person's true ones;
- order: the share of pairs of held-out faces that the expected rating orders as the person's
  noise-free taste does.

Hardware: printed. Ends with one JSON line; the tables also go to
``benchmarks/results/personal_ratings[-joint|-lora][-seedS].json`` (``--no-save``: no file). Usage:
``python benchmarks/personal_ratings.py [--head rating|joint|lora] [--people 30] [--test-faces 60]
[--test-pairs 200] [--personal 0.5] [--attribute trustworthy] [--levels 4] [--image-size 128]
[--last-n-targets 12] [--seed 0] [--quick] [--no-save]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from skpercept.heads import JointRatingRanker, RatingClassifier, join_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from _shared import (
    add_result_options,
    hardware_line,
    omi_attributes,
    omi_embeddings,
    result_name,
    save_result,
    table_record,
)
from labelling import AttributeTastes
from personal import order_accuracy, pair_rows

STEPS = (5, 10, 20, 40)
MODELS = ("shared", "personal, no temperature", "personal, temperature")


def ece(stated: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of stated probabilities against the chance of being right."""
    which = np.minimum((stated * bins).astype(int), bins - 1)
    return float(
        sum(
            np.mean(which == b) * abs(stated[which == b].mean() - right[which == b].mean())
            for b in np.unique(which)
        )
    )


def score(proba: np.ndarray, truth: np.ndarray, tastes: np.ndarray, levels: int) -> dict:
    """Pooled metrics of ``(people, faces, levels)`` probabilities against the true ones."""
    predicted = proba.argmax(axis=2)
    stated = proba.max(axis=2).ravel()
    right = np.take_along_axis(truth, predicted[..., None], axis=2).ravel()
    expected = (proba * np.arange(1, levels + 1)).sum(axis=2)
    return {
        "ece": ece(stated, right),
        "stated": float(stated.mean()),
        "right": float(right.mean()),
        "log_loss": float(-(truth * np.log(np.clip(proba, 1e-12, None))).sum(axis=2).mean()),
        "order": float(np.mean([order_accuracy(e, t) for e, t in zip(expected, tastes)])),
    }


def pair_score(p_left: np.ndarray, true_left: np.ndarray) -> dict:
    """ECE of the predicted winner's probability against the chance that the person picks it."""
    left = p_left >= 0.5
    stated = np.where(left, p_left, 1 - p_left)
    right = np.where(left, true_left, 1 - true_left)
    return {
        "pair_ece": ece(stated, right),
        "pair_stated": float(stated.mean()),
        "pair_right": float(right.mean()),
    }


def make_models(head: type, classes: np.ndarray, user_columns: np.ndarray, seed: int) -> dict:
    """The three models compared, as ``head`` (``RatingClassifier`` or ``JointRatingRanker``)."""
    return {
        "shared": head(classes=classes, random_state=seed),
        "personal, no temperature": head(
            classes=classes, user_features=user_columns, calibration=None, random_state=seed
        ),
        "personal, temperature": head(classes=classes, user_features=user_columns, random_state=seed),
    }


def lora_models(args) -> dict:
    """The three models compared with ``--head lora`` (image paths in, a ``user_id`` column)."""
    from skpercept.finetune import LoRARatingClassifier

    settings = dict(image_size=args.image_size, last_n_targets=args.last_n_targets, random_state=args.seed)
    return {
        "shared": LoRARatingClassifier(user_features=None, **settings),
        "personal, no temperature": LoRARatingClassifier(calibration=None, **settings),
        "personal, temperature": LoRARatingClassifier(**settings),
    }


def lora_rows(paths: np.ndarray, faces: np.ndarray, who: np.ndarray | None) -> pd.DataFrame:
    """Rating rows of the LoRA estimators: the photo, and the person unless ``who`` is None."""
    rows = pd.DataFrame({"image": paths[faces]})
    return rows if who is None else rows.assign(user_id=[f"person {p}" for p in who])


def world(Z, attributes, column, args, paths: np.ndarray | None = None) -> dict:
    sim = AttributeTastes(attributes, Z, column, args.personal, args.seed)
    rng = np.random.RandomState(args.seed)
    faces = rng.permutation(len(Z))
    n_test = len(Z) // 5
    train_faces, test_faces = faces[n_test:], faces[:n_test][: args.test_faces]
    tastes = np.stack([sim.utility() for _ in range(args.people)])
    truth = np.stack([sim.level_probs(u, test_faces, args.levels) for u in tastes])
    # each person's held-out pairs (joint): two different held-out faces, and the true P(a ≻ b)
    a, b = rng.randint(0, len(test_faces), size=(2, args.people, args.test_pairs))
    b = np.where(a == b, (b + 1) % len(test_faces), b)
    a, b = test_faces[a], test_faces[b]
    true_left = np.stack([expit(sim.beta * (u[a[p]] - u[b[p]])) for p, u in enumerate(tastes)])
    people = np.eye(args.people, dtype=np.float32)
    width = Z.shape[1]
    user_columns = np.arange(width, width + args.people)
    classes = np.arange(1, args.levels + 1)
    joint, lora = args.head == "joint", args.head == "lora"
    steps = STEPS[:2] if args.quick else STEPS
    out: dict = {}
    for k in steps:
        rated = np.stack([rng.choice(train_faces, size=k, replace=False) for _ in range(args.people)])
        y = np.concatenate([sim.rate(u, f, args.levels) for u, f in zip(tastes, rated)])
        who = np.repeat(np.arange(args.people), k)
        X = np.hstack([Z[rated.ravel()], people[who]])
        if joint:
            # k comparisons each, of random pairs of training faces
            pa, pb = (rng.choice(train_faces, size=(args.people, k)) for _ in range(2))
            prefs = np.concatenate([sim.judge(u, pa[p], pb[p]) for p, u in enumerate(tastes)])
            X_pairs = pair_rows(Z, pa.ravel(), pb.ravel(), people[who])
            X, y = join_labels(X, y, X_pairs, prefs)
            shared_X = np.hstack([X[:, :width], X[:, width + args.people : 2 * width + args.people]])
            models = make_models(JointRatingRanker, classes, user_columns, args.seed)
        elif lora:
            shared_X, X = lora_rows(paths, rated.ravel(), None), lora_rows(paths, rated.ravel(), who)
            models = lora_models(args)
        else:
            shared_X = X[:, :width]
            models = make_models(RatingClassifier, classes, user_columns, args.seed)
        out[k] = {}
        for name, head in models.items():
            start = time.perf_counter()
            head.fit(shared_X if name == "shared" else X, y)
            seconds = time.perf_counter() - start
            if not np.array_equal(np.asarray(head.classes_), classes):
                raise RuntimeError(
                    f"k={k}: the ratings drawn miss a level ({head.classes_}); use more people"
                )

            def own(p: int, rows: np.ndarray, model: str = name) -> np.ndarray | pd.DataFrame:
                """Rows of held-out faces as person ``p`` (the shared model: without the person)."""
                if lora:
                    return lora_rows(
                        paths, test_faces, None if model == "shared" else np.full(len(test_faces), p)
                    )
                return rows if model == "shared" else np.hstack([rows, np.repeat(people[[p]], len(rows), 0)])

            rate = head.predict_rating_proba if joint else head.predict_proba
            proba = np.stack([rate(own(p, Z[test_faces])) for p in range(args.people)])
            metrics = score(proba, truth, tastes[:, test_faces], args.levels)
            if joint:
                p_left = np.stack(
                    [
                        head.predict_pair_proba(np.hstack([own(p, Z[a[p]]), own(p, Z[b[p]])]))[:, 1]
                        for p in range(args.people)
                    ]
                )
                metrics.update(pair_score(p_left.ravel(), true_left.ravel()))
            metrics["seconds"] = seconds
            calibrated = getattr(head, "calibration_", None)
            temperature = np.asarray(getattr(head, "temperature_", np.ones(1)))
            if joint:
                metrics["pair_temperature"] = float(temperature[:, 0].mean()) if calibrated else None
                temperature = temperature[:, 1]
            metrics["temperature"] = float(temperature.mean()) if calibrated else None
            out[k][name] = {key: None if v is None else round(v, 4) for key, v in metrics.items()}
            print(
                f"k={k:>2} {name:<26} " + " ".join(f"{key} {v}" for key, v in out[k][name].items()),
                flush=True,
            )
    return out


def tables(result: dict, args) -> list[dict]:
    def by_model(key: str) -> list[list[str]]:
        return [[str(k), *(f"{result[k][name][key]:.3f}" for name in MODELS)] for k in result]

    header = ["ratings per person", *MODELS]
    head = {
        "joint": "JointRatingRanker, k ratings and k comparisons each",
        "lora": f"LoRARatingClassifier (EfficientNet-Lite0 fine-tuned at {args.image_size} px)",
    }.get(args.head, "RatingClassifier")
    setting = (
        f"{head}; {args.people} simulated people rating OMI faces 1–{args.levels} ({args.attribute} plus "
        f"{args.personal} × their own taste), {args.test_faces} held-out faces each, seed {args.seed}"
    )
    sure = [
        [
            str(k),
            *(
                f"{result[k][n]['ece']:.3f} ({result[k][n]['stated']:.2f} / {result[k][n]['right']:.2f})"
                for n in MODELS
            ),
        ]
        for k in result
    ]
    calibrated = {k: result[k]["personal, temperature"] for k in result}
    temps = [
        [str(k), *(f"{m[key]:.2f}" for key in ("temperature", "pair_temperature") if key in m)]
        for k, m in calibrated.items()
        if m["temperature"] is not None
    ]
    out = [
        table_record(
            "ece",
            f"How sure, and how right: ECE of the predicted rating's probability (stated / right), {setting}",
            header,
            sure,
            note="Right: the chance that the person gives the predicted rating (the simulation's own probabilities).",
        ),
        table_record(
            "log-loss",
            f"Log-loss against the person's true level probabilities, {setting}",
            header,
            by_model("log_loss"),
        ),
        table_record(
            "order",
            f"Held-out faces ordered as the person's taste orders them, {setting}",
            header,
            by_model("order"),
        ),
    ]
    if args.head == "joint":
        pairs = [
            [
                str(k),
                *(
                    f"{result[k][n]['pair_ece']:.3f} ({result[k][n]['pair_stated']:.2f} / "
                    f"{result[k][n]['pair_right']:.2f})"
                    for n in MODELS
                ),
            ]
            for k in result
        ]
        out.append(
            table_record(
                "pair-ece",
                f"ECE of P(left ≻ right) on {args.test_pairs} held-out pairs per person (stated / right), {setting}",
                ["ratings and comparisons per person", *MODELS],
                pairs,
            )
        )
    if temps:
        columns = ["T (ratings)", "T (pairs)"] if args.head == "joint" else ["T"]
        out.append(
            table_record(
                "temperature",
                "The fitted temperature (mean over the ensemble)",
                ["ratings per person", *columns],
                temps,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", choices=("rating", "joint", "lora"), default="rating")
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--test-faces", type=int, default=60, help="held-out faces each person is scored on")
    parser.add_argument(
        "--test-pairs", type=int, default=200, help="held-out pairs per person (--head joint)"
    )
    parser.add_argument("--personal", type=float, default=0.5, help="weight of the person's own taste")
    parser.add_argument("--attribute", default="trustworthy", help="an OMI attribute")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=128, help="photo size of --head lora")
    parser.add_argument("--last-n-targets", type=int, default=12, help="layers adapted by --head lora")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (k = 5, 10; 12 people)")
    add_result_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.people = min(args.people, 12)
    torch.set_num_threads(2)
    print(hardware_line(), flush=True)
    omi, Z = omi_embeddings(None)
    attributes = omi_attributes(omi)
    if args.attribute not in attributes:
        parser.error(f"--attribute: one of {list(attributes)}")
    column = list(attributes).index(args.attribute)
    paths = omi.means["image"].to_numpy()
    result = world(Z, attributes.to_numpy(np.float64), column, args, paths)
    figures = {
        "people": args.people,
        "test_faces": args.test_faces,
        "personal": args.personal,
        "levels": args.levels,
        "seed": args.seed,
        "head": args.head,
        **(
            {"image_size": args.image_size, "last_n_targets": args.last_n_targets}
            if args.head == "lora"
            else {}
        ),
        "results": result,
    }
    print(json.dumps(figures))
    name = result_name(
        "personal_ratings",
        args.head if args.head != "rating" else None,
        "quick" if args.quick else None,
        f"seed{args.seed}" if args.seed else None,
    )
    save_result(args, name, tables(result, args), figures)


if __name__ == "__main__":
    main()
