"""Benchmark: what a new person's judgments add to a given model of other people.

A team starts from a model fitted on other people (``skpercept label --model``, or
``skpercept.personal.add_users`` on a saved model) and each new person's deviation is added to
it from their own judgments; the model is never refitted. This measures how far those
judgments move a person's model, and why.

Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the shipped backbone
(``TimmEmbedder()``, EfficientNet-Lite0, 1280-d; cached, nothing downloaded). Per run
(``--seed``) the faces are shuffled: 150 are the new people's pool, 30 are held out, the rest
are the given model's.

People: ``benchmarks/labelling.py``'s (``AttributeTastes``): the standardized OMI mean of
``--attribute`` plus ``--personal`` (default 2: people who differ) times ``benchmarks/personal.py``'s
own taste, standardized; Bradley–Terry answers with repeat agreement 0.85.

The given model: ``--population`` (100) other people × ``--population-judgments`` (40) random
pairs of the given model's faces, in a Pipeline ``PairFeatures(embedding lookup, UserEncoder()) →
PairwiseRanker(user_features='auto')``: at its constructor defaults (``--head ranker-default``),
or as ``skpercept fit`` builds it for a pairs table with people (``--head ranker``, the registered
preset: a 128-unit GELU trunk, dropout 0.3, weight decay 0.01, up to 20 epochs), with any
``--head-params`` JSON set on top, e.g. ``'{"hidden_layer_sizes": []}'``. Then each of
``--people`` (12) new people answers 80 random pairs of the pool, and their first k = 10 / 20 /
40 / 80 are added with ``add_users`` (each k to a fresh copy of the given model).

Measured: the accuracy at ordering every pair of the held-out faces as the person's noise-free
taste does (mean ± sd over the new people), for k = 0 (the shared part: someone the model does
not know) and each k; framed by the attribute's population mean and ridge on the embedding
fitted to the person's true taste of all pool faces (what these features allow with unlimited
judgments). And the given model's representation, on which a person's deviation acts
(``s(x, u) = h(x)·(w + V u) + b``): the trunk's ``h(x)`` over all 1,004 faces, its effective
rank (``exp`` of the entropy of its principal components' variance shares), the share of the
first component and the units that are zero on every face. A representation of effective rank
near 1 leaves a person's deviation little more than a rescaling of the shared score.

``--strength-factors F ...``: also adds each new person's first 20 and 80 judgments with the
given model's prior strength (``user_alpha_``, and the learned prior's precision with it)
multiplied by each ``F``, and measures the order as above and the cross-entropy of the
model's ``P(a ≻ b)`` over every pair of held-out faces against the person's true
probability ``σ(β (u_a − u_b))`` (the simulation's own, so no sampling noise): whether the
strength ``fit`` chose on the given people suits a new person's judgments.

Hardware: printed. Ends with one JSON line; the tables also go to
``benchmarks/results/personal_given[-ranker][-<head params>][-personalW][-strengths][-seedS].json``
(``--no-save``: no file). Usage:
``python benchmarks/personal_given.py [--seed 0] [--personal 2] [--people 12] [--population 100]
[--population-judgments 40] [--attribute trustworthy] [--head ranker-default|ranker]
[--head-params JSON] [--strength-factors F ...] [--quick] [--no-save]``
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline

from skpercept.heads import HeadSettings, make_head
from skpercept.label import EmbeddingLookup
from skpercept.personal import UserEncoder, add_users
from skpercept.preprocessing import PairFeatures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers beside this script
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
from personal import order_accuracy

STEPS = (10, 20, 40, 80)
POOL, HELD_OUT = 150, 30
#: ``--strength-factors``: the numbers of a new person's judgments added at each strength.
STRENGTH_STEPS = (20, 80)


def random_pairs(faces: np.ndarray, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs of ``faces``, no face against itself."""
    a, b = rng.choice(faces, size=(2, n))
    while (same := a == b).any():
        b[same] = rng.choice(faces, size=int(same.sum()))
    return a, b


def pair_frame(names: list[str], a: np.ndarray, b: np.ndarray, person: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"image_a": [names[i] for i in a], "image_b": [names[i] for i in b], "user_id": person}
    )


def given_model(Z, names, sim, faces, args, rng) -> tuple[Pipeline, float]:
    """The model of ``args.population`` other people, and its fitting seconds."""
    who = np.repeat(np.arange(args.population), args.population_judgments)
    a, b = random_pairs(faces, len(who), rng)
    y = np.concatenate([sim.judge(sim.utility(), a[who == p], b[who == p]) for p in range(args.population)])
    head = make_head(args.head, HeadSettings(seed=args.seed))
    head.set_params(user_features="auto", **args.head_params)
    lookup = EmbeddingLookup(names, Z)
    model = Pipeline(
        [("pairs", PairFeatures(item_transformer=lookup, context_transformer=UserEncoder())), ("head", head)]
    )
    t0 = time.perf_counter()
    model.fit(pair_frame(names, a, b, [f"other{w}" for w in who]), y.astype(int))
    return model, time.perf_counter() - t0


def person_scores(model: Pipeline, person: str, Z: np.ndarray) -> np.ndarray:
    """The scores ``model`` gives ``person`` (unknown: the shared part) for the rows of ``Z``."""
    pairs, head = model[0], model[-1]
    context = pairs.context_transformer_.transform(pd.DataFrame({"user_id": [person] * len(Z)}))
    context = context.toarray() if hasattr(context, "toarray") else np.asarray(context)
    scores = np.asarray(head.score_items(np.hstack([Z.astype(np.float64), context])))
    return scores.reshape(len(Z), -1)[:, 0]


def added_person_scores(person: Pipeline, names, answer, k: int, p: int, Z_test: np.ndarray) -> np.ndarray:
    """New person ``p``'s first ``k`` answers added to ``person`` (a copy of the given model,
    changed in place), and the scores it then gives them for ``Z_test``."""
    a, b, y = answer
    add_users(person, pair_frame(names, a[:k], b[:k], [f"new{p}"] * k), y[:k].astype(int))
    return person_scores(person, f"new{p}", Z_test)


def with_strength(model: Pipeline, factor: float) -> Pipeline:
    """A copy of ``model`` whose people are fitted at ``factor`` times the prior strength ``fit``
    chose (``user_alpha_``, and the learned prior's precision, which scales with it):
    benchmark instrumentation, since a fitted model keeps the strength it chose."""
    copied = copy.deepcopy(model)
    head = copied[-1]
    head.user_alpha_ = np.asarray(head.user_alpha_, dtype=np.float64) * factor
    if getattr(head, "user_precision_", None) is not None:
        head.user_precision_ = np.asarray(head.user_precision_) * factor
    return copied


def strength_rows(model, answers, tastes, names, Z_test, beta, factors) -> dict:
    """Per factor and number of judgments, the new people's mean order and cross-entropy."""
    i, j = np.triu_indices(len(Z_test), k=1)
    out: dict = {}
    for factor in factors:
        for k in STRENGTH_STEPS:
            order, entropy = [], []
            for p, answer in enumerate(answers):
                scores = added_person_scores(with_strength(model, factor), names, answer, k, p, Z_test)
                u = tastes[p]
                order.append(order_accuracy(scores, u))
                truth = expit(beta * (u[i] - u[j]))
                stated = np.clip(expit(scores[i] - scores[j]), 1e-7, 1 - 1e-7)
                entropy.append(-np.mean(truth * np.log(stated) + (1 - truth) * np.log(1 - stated)))
            out.setdefault(f"{factor:g}", {})[k] = {
                "order": round(float(np.mean(order)), 4),
                "cross_entropy": round(float(np.mean(entropy)), 4),
            }
            print(
                f"strength × {factor:g}, k = {k}: order {np.mean(order):.3f}, cross-entropy {np.mean(entropy):.4f}"
            )
    return out


def representation(model: Pipeline, Z: np.ndarray) -> dict:
    """The trunk's ``h(x)`` over ``Z`` (no person): effective rank, first component's share, dead units."""
    head = model[-1]
    H = np.asarray(head.item_representation(np.hstack([Z, np.zeros((len(Z), head.n_user_features_))])))
    variance = np.linalg.svd(H - H.mean(axis=0), compute_uv=False) ** 2
    share = variance / variance.sum()
    positive = share[share > 0]
    return {
        "width": int(H.shape[1]),
        "effective_rank": round(float(np.exp(-(positive * np.log(positive)).sum())), 2),
        "first_component_share": round(float(share[0]), 3),
        "dead_units": int((np.abs(H).max(axis=0) == 0).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--personal", type=float, default=2.0, help="weight of the person's own taste")
    parser.add_argument("--people", type=int, default=12, help="new people added to the given model")
    parser.add_argument("--population", type=int, default=100, help="the given model's people")
    parser.add_argument("--population-judgments", type=int, default=40, help="random pairs per given person")
    parser.add_argument("--attribute", default="trustworthy")
    parser.add_argument(
        "--head",
        choices=("ranker-default", "ranker"),
        default="ranker-default",
        help="the given model's PairwiseRanker: its constructor defaults, or skpercept fit's preset",
    )
    parser.add_argument(
        "--head-params",
        type=json.loads,
        default={},
        help="the given model's PairwiseRanker parameters (JSON)",
    )
    parser.add_argument(
        "--strength-factors",
        type=float,
        nargs="+",
        default=None,
        help="also add the new people at these multiples of the given model's prior strength",
    )
    parser.add_argument("--quick", action="store_true", help="3 new people, 30 given people: a smoke run")
    add_result_options(parser)
    args = parser.parse_args()
    if args.strength_factors and min(args.strength_factors) <= 0:
        parser.error("--strength-factors: positive numbers")
    if args.quick:
        args.people, args.population = 3, 30
    torch.set_num_threads(1)
    print(hardware_line(), flush=True)
    omi, Z = omi_embeddings(None)
    attributes = omi_attributes(omi)
    if args.attribute not in attributes:
        parser.error(f"--attribute: one of {list(attributes)}")
    column = list(attributes).index(args.attribute)
    names = [str(Path(p)) for p in omi.means["image"]]
    sim = AttributeTastes(attributes.to_numpy(np.float64), Z, column, args.personal, args.seed)
    rng = np.random.RandomState(args.seed)
    faces = rng.permutation(len(Z))
    pool, test, others = faces[:POOL], faces[POOL : POOL + HELD_OUT], faces[POOL + HELD_OUT :]
    tastes = [sim.utility() for _ in range(args.people)]
    answers = []
    for u in tastes:
        a, b = random_pairs(pool, max(STEPS), rng)
        answers.append((a, b, sim.judge(u, a, b)))
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13), alpha_per_target=True)
    oracle = ridge.fit(Z[pool], np.stack([u[pool] for u in tastes], axis=1)).predict(Z[test])
    frame = {
        "population mean of the attribute": float(
            np.mean([order_accuracy(sim.A[test, column], u[test]) for u in tastes])
        ),
        "ridge on the true taste (oracle)": float(
            np.mean([order_accuracy(oracle[:, p], u[test]) for p, u in enumerate(tastes)])
        ),
    }
    model, seconds = given_model(Z, names, sim, others, args, rng)
    head = model[-1]
    about = {
        "fit_seconds": round(seconds, 1),
        "hidden_layer_sizes_": list(head.hidden_layer_sizes_),
        "user_alpha_": [round(float(v), 4) for v in np.ravel(head.user_alpha_)],
        "user_prior_": str(head.user_prior_),
        "epochs": len(head.net_.history),
        **representation(model, Z),
    }
    print(f"given model: {about}", flush=True)
    accuracy = {0: [order_accuracy(person_scores(model, "nobody", Z[test]), u[test]) for u in tastes]}
    for k in STEPS:
        accuracy[k] = []
        for p, answer in enumerate(answers):
            scores = added_person_scores(copy.deepcopy(model), names, answer, k, p, Z[test])
            accuracy[k].append(order_accuracy(scores, tastes[p][test]))
        print(f"k = {k}: {np.mean(accuracy[k]):.3f}", flush=True)
    curve = {k: [round(float(np.mean(v)), 4), round(float(np.std(v)), 4)] for k, v in accuracy.items()}
    strengths = None
    if args.strength_factors:
        strengths = strength_rows(
            model, answers, [u[test] for u in tastes], names, Z[test], sim.beta, args.strength_factors
        )
    params = json.dumps(args.head_params, sort_keys=True) if args.head_params else ""
    preset = "PairwiseRanker" if args.head == "ranker-default" else "skpercept fit's PairwiseRanker"
    described = (
        f"{preset}({params}) of {args.population} people × {args.population_judgments} pairs, "
        f"{args.people} new people added (trustworthy plus {args.personal:g} × their own taste), seed {args.seed}"
    )
    tables = [
        table_record(
            "curve",
            f"Held-out faces ordered as the new person's taste orders them, by their judgments added; {described}",
            ["judgments added", "order (mean ± sd)"],
            [[k if k else "0 (the shared part)", f"{m:.3f} ± {s:.3f}"] for k, (m, s) in curve.items()],
            note=(
                f"Population mean of the attribute {frame['population mean of the attribute']:.3f}; ridge on "
                f"the true taste of all {POOL} pool faces {frame['ridge on the true taste (oracle)']:.3f}."
            ),
        ),
        table_record(
            "representation",
            f"The given model's trunk h(x) over the 1,004 faces; {described}",
            ["units", "effective rank", "first component's share", "dead units", "user_alpha_", "epochs"],
            [
                [
                    about["width"],
                    f"{about['effective_rank']:.2f}",
                    f"{about['first_component_share']:.3f}",
                    about["dead_units"],
                    ", ".join(f"{v:g}" for v in about["user_alpha_"]),
                    about["epochs"],
                ]
            ],
        ),
    ]
    if strengths:
        chosen = ", ".join(f"{v:g}" for v in about["user_alpha_"])
        tables.append(
            table_record(
                "strength",
                f"New people added at multiples of the chosen prior strength ({chosen}); {described}",
                [
                    "strength × chosen",
                    *(
                        f"{what}, {k} judgments"
                        for k in STRENGTH_STEPS
                        for what in ("order", "cross-entropy")
                    ),
                ],
                [
                    [
                        factor,
                        *(
                            f"{v[k][m]:.{3 if m == 'order' else 4}f}"
                            for k in STRENGTH_STEPS
                            for m in ("order", "cross_entropy")
                        ),
                    ]
                    for factor, v in strengths.items()
                ],
                note="Cross-entropy of P(a ≻ b) over every pair of held-out faces against the person's true "
                "probability σ(β (u_a − u_b)); lower is better.",
            )
        )
    figures = {
        "benchmark": "personal_given",
        "head": args.head,
        "seed": args.seed,
        "personal": args.personal,
        "head_params": args.head_params,
        "frame": {k: round(v, 4) for k, v in frame.items()},
        "given_model": about,
        "curve": curve,
        "accuracy_per_person": {k: [round(float(v), 4) for v in vs] for k, vs in accuracy.items()},
        "strengths": strengths,
    }
    tags = [None if args.head == "ranker-default" else args.head, params or None]
    tags += [f"personal{args.personal:g}" if args.personal != 2 else None]
    tags += ["strengths" if args.strength_factors else None]
    tags += ["quick" if args.quick else None, f"seed{args.seed}" if args.seed else None]
    path = save_result(args, result_name("personal_given", *tags), tables, figures)
    if path:
        print(f"wrote {path}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
