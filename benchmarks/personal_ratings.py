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

Metrics, per model and k, pooled over people and held-out faces:

- ECE: the probability of the predicted rating (the "% sure" a user reads) against the chance
  that the person gives that rating (the simulation's own probabilities, so no sampling noise),
  over 10 equal-width bins;
- stated / right: the mean of each;
- log-loss: the cross-entropy of the model's level probabilities against the person's true ones;
- order: the share of pairs of held-out faces that the expected rating orders as the person's
  noise-free taste does.

Hardware: printed. Ends with one JSON line; the tables also go to
``benchmarks/results/personal_ratings[-seedS].json`` (``--no-save``: no file). Usage:
``python benchmarks/personal_ratings.py [--people 30] [--test-faces 60] [--personal 0.5]
[--attribute trustworthy] [--levels 4] [--seed 0] [--quick] [--no-save]``
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

from skpercept import TimmEmbedder
from skpercept.datasets import load_omi
from skpercept.embed import default_cache_dir
from skpercept.heads import RatingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script
from _shared import add_result_options, hardware_line, result_name, save_result, table_record
from labelling import AttributeTastes
from personal import order_accuracy

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


def world(Z, attributes, column, args) -> dict:
    sim = AttributeTastes(attributes, Z, column, args.personal, args.seed)
    rng = np.random.RandomState(args.seed)
    faces = rng.permutation(len(Z))
    n_test = len(Z) // 5
    train_faces, test_faces = faces[n_test:], faces[:n_test][: args.test_faces]
    tastes = np.stack([sim.utility() for _ in range(args.people)])
    truth = np.stack([sim.level_probs(u, test_faces, args.levels) for u in tastes])
    people = np.eye(args.people, dtype=np.float32)
    width = Z.shape[1]
    user_columns = np.arange(width, width + args.people)
    classes = np.arange(1, args.levels + 1)
    steps = STEPS[:2] if args.quick else STEPS
    out: dict = {}
    for k in steps:
        rated = np.stack([rng.choice(train_faces, size=k, replace=False) for _ in range(args.people)])
        y = np.concatenate([sim.rate(u, f, args.levels) for u, f in zip(tastes, rated)])
        who = np.repeat(np.arange(args.people), k)
        X = np.hstack([Z[rated.ravel()], people[who]])
        models = {
            "shared": (RatingClassifier(classes=classes, random_state=args.seed), X[:, :width]),
            "personal, no temperature": (
                RatingClassifier(
                    classes=classes, user_features=user_columns, calibration=None, random_state=args.seed
                ),
                X,
            ),
            "personal, temperature": (
                RatingClassifier(classes=classes, user_features=user_columns, random_state=args.seed),
                X,
            ),
        }
        out[k] = {}
        for name, (head, X_fit) in models.items():
            start = time.perf_counter()
            head.fit(X_fit, y)
            seconds = time.perf_counter() - start
            proba = np.stack(
                [
                    head.predict_proba(
                        Z[test_faces]
                        if name == "shared"
                        else np.hstack([Z[test_faces], np.repeat(people[[p]], len(test_faces), 0)])
                    )
                    for p in range(args.people)
                ]
            )
            metrics = score(proba, truth, tastes[:, test_faces], args.levels)
            metrics["seconds"] = seconds
            metrics["temperature"] = (
                float(np.mean(head.temperature_)) if getattr(head, "calibration_", None) else None
            )
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
    setting = (
        f"{args.people} simulated people rating OMI faces 1–{args.levels} ({args.attribute} plus "
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
    temps = [
        [str(k), f"{result[k]['personal, temperature']['temperature']:.2f}"]
        for k in result
        if result[k]["personal, temperature"]["temperature"] is not None
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
    if temps:
        out.append(
            table_record(
                "temperature",
                "The fitted temperature (mean over the ensemble)",
                ["ratings per person", "T"],
                temps,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--test-faces", type=int, default=60, help="held-out faces each person is scored on")
    parser.add_argument("--personal", type=float, default=0.5, help="weight of the person's own taste")
    parser.add_argument("--attribute", default="trustworthy", help="an OMI attribute")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (k = 5, 10; 12 people)")
    add_result_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.people = min(args.people, 12)
    torch.set_num_threads(2)
    print(hardware_line(), flush=True)
    omi = load_omi(None)
    images = pd.Series(omi.means["image"].to_numpy(), name="image")
    Z = np.asarray(TimmEmbedder(cache_dir=default_cache_dir()).fit_transform(images), dtype=np.float32)
    attributes = omi.means.drop(columns=["stimulus", "image"], errors="ignore").select_dtypes("number")
    if args.attribute not in attributes:
        parser.error(f"--attribute: one of {list(attributes)}")
    column = list(attributes).index(args.attribute)
    result = world(Z, attributes.to_numpy(np.float64), column, args)
    figures = {
        "people": args.people,
        "test_faces": args.test_faces,
        "personal": args.personal,
        "levels": args.levels,
        "seed": args.seed,
        "results": result,
    }
    print(json.dumps(figures))
    name = result_name(
        "personal_ratings", "quick" if args.quick else None, f"seed{args.seed}" if args.seed else None
    )
    save_result(args, name, tables(result, args), figures)


if __name__ == "__main__":
    main()
