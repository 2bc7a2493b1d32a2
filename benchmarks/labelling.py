"""Benchmark: the labelling app — simulated people clicking through its HTTP API.

Data: the 1,004 OMI faces shipped with skpercept (CC BY-NC-SA 4.0) through the shipped backbone
(``TimmEmbedder()``, EfficientNet-Lite0, 1280-d; cached, nothing downloaded). Per run (``--seed``)
the faces are shuffled: ``--faces`` of them (default 150) are the project's images, the pool the
app asks about, and ``--held-out`` others (default 30) are never shown.

People: as in ``benchmarks/personal.py`` (its ``Simulator``), with the question's attribute in
front. A person's utility is the face's standardized OMI mean of ``--attribute`` plus
``--personal`` (default 0.5) times personal.py's own taste (a Dirichlet mixture of 2–3 OMI
attributes plus a small personal direction in embedding space), standardized; answers are
Bradley–Terry with one noise scale, set (as in personal.py) so a person's repeat agreement is
0.85. The same ``--people`` people (default 8) label once per strategy.

The app: for each strategy (``'variance'``, the app's default, and ``'information'``: active,
with the app's default exploring: half the questions drawn at random; ``'random'``) a fresh
``LabelProject(..., embeddings=..., strategy=s, background=True)`` (the learner's defaults
otherwise: ``min_judgments``, ``update_every``, ``batch``) and its Flask app through the test
client, i.e. real requests through the WSGI app: each person opens their page
(``/l/<token>/``, the CSRF token read from its ``data-csrf``), then answers "which of these two is
more <attribute>?" by ``GET /l/<token>/api/next`` and ``POST /l/<token>/api/judge`` (JSON, with
``X-CSRF-Token``). The people take turns, one click each (a team labelling at once), with a
pause of ``--pause-ms`` (150 ms) after every click, so that each of 8 people answers about every
1.3 s (``--pause-ms 0``: as fast as the server answers, a stress test); the model updates on the
app's background thread meanwhile.

Measured: after 10 / 20 / 40 / 80 answers per person, the accuracy of that person's model at
ordering every pair of the held-out faces as the person's noise-free utility does (mean ± sd
over people). At each checkpoint the clicking stops, the background updates finish
(``learner.wait()``) and each person's update is forced, so the model includes all their
answers. Before the attribute has ``min_judgments`` judgments the app has no model; accuracy is
then 0.5 (chance). Framing it: the attribute's population mean (what the app could know with
no personal judgments) and ridge on the embedding fitted to the person's true utility of all
pool faces (what these features allow with unlimited judgments); and, per strategy, the same
model's scores for a person it does not know (its shared part), to show what the personal part
adds. Server time per click as the
client sees it: the ``next`` request, the ``judge`` request and their sum, p50 / p95 / max in ms,
with the model updating in the background (checkpoint pauses excluded). Also: the share of
questions the app drew at random because no prepared question was waiting (the background
had not caught up), the background updates and full refits (seconds; and the clicks that began
while one ran), the ``user_alpha_`` of the last refit, and how spread the team's questions were
(distinct faces, the share of the 10 most asked, pairs already asked of someone else).

Starting point (``--start``): ``nothing`` (the default) is a team starting an empty project: random
questions until the attribute has ``min_judgments`` judgments, then the app's own model, refitted
on everyone's judgments as they double. ``population`` is the issue's other cold start, a given
model: before anyone clicks, a personal model is fitted on ``--population`` (default 100) other
simulated people of the same kind × ``--population-judgments`` (default 40) random pairs of the
faces outside the pool and the held-out set (a Pipeline ``PairFeatures(embedding lookup,
UserEncoder()) → PairwiseRanker(user_features='auto')`` at its constructor defaults; ``skpercept
fit`` builds its registered preset instead, and ``benchmarks/personal_given.py`` measures both;
``--given-trunk linear``: ``hidden_layer_sizes=()``, the linear model the labelling guide
recommends for a model labellers will be added to, ``skpercept fit --hidden``),
and the project starts from it (``LabelProject(..., model=...)``, what
``skpercept label --model`` does): every question comes from it from the first click, and each
labeller's deviation is added to it as they answer; it is never refitted. The checkpoint 0 row
is that model for someone it does not know.

Ratings (``--kind rating --levels L``, default 4): the same people rate one face at a time, 1..L,
by an ordered logit on the same noise scale (cut points at the standard normal's quantiles of a
person's standardized taste); the app's model is its ``RatingClassifier`` (the given model a
``RatingClassifier`` of the other people's ratings). Accuracy then orders the held-out faces by
the expected rating, and a second table asks how sure the model is: the probability of its
predicted rating (the "% sure" of the ranked page) against the chance that the person gives that
rating, as an expected calibration error over held-out faces.

Goals (from the issue): p95 < 50 ms per click on a CPU; active reaching random's 80-answer
accuracy within 40 answers.

Hardware: printed. Ends with one JSON line; the tables and figures also go to
``benchmarks/results/labelling[-ratingL][-population][-linear][-pauseP][-personalW][-quick][-seedS].json``
(``--no-save``: no file). Usage:
``python benchmarks/labelling.py [--quick] [--people 8] [--faces 150] [--held-out 30]
[--attribute trustworthy] [--personal 0.5] [--start nothing|population] [--population 100]
[--population-judgments 40] [--given-trunk default|linear] [--kind pairs|rating] [--levels 4]
[--seed 0] [--pause-ms 150]
[--no-save]``
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline

from skpercept.heads import PairwiseRanker, RatingClassifier
from skpercept.label import EmbeddingLookup, LabelProject, create_app
from skpercept.personal import UserEncoder
from skpercept.preprocessing import PairFeatures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import (
    add_result_options,
    hardware_line,
    omi_attributes,
    omi_embeddings,
    result_name,
    save_result,
    table_record,
)
from personal import Simulator, order_accuracy

#: The runs compared: the app's default (``'variance'`` questions, half of them drawn at random to
#: explore), ``'information'`` questions (the same exploring), and random questions only.
RUNS = {
    "variance": {"strategy": "variance"},
    "information": {"strategy": "information"},
    "random": {"strategy": "random"},
}
STRATEGIES = tuple(RUNS)
CHECKPOINTS = (10, 20, 40, 80)
#: The pause after every click, ms: with 8 people taking turns, each answers about every 1.3 s.
DEFAULT_PAUSE_MS = 150.0


class AttributeTastes(Simulator):
    """personal.py's people, asked about one attribute: its population mean plus their own taste."""

    def __init__(self, attributes: np.ndarray, Z: np.ndarray, column: int, personal: float, seed: int):
        self.column, self.personal = column, personal
        super().__init__(attributes, Z, seed)  # calibrates the noise on this utility

    def utility(self) -> np.ndarray:
        u = self.A[:, self.column] + self.personal * super().utility()
        return (u - u.mean()) / u.std()

    def level_probs(self, u: np.ndarray, faces: np.ndarray, levels: int) -> np.ndarray:
        """``(n_faces, levels)`` probabilities of each rating 1..levels: ordered logit on the
        same noise scale as the comparisons, ``P(rating ≤ k) = expit(β (c_k − u))``, cut points
        ``c_k`` at the standard normal's quantiles (equal shares of a standardized taste)."""
        cuts = norm.ppf(np.arange(1, levels) / levels)
        below = expit(self.beta * (cuts[None, :] - u[faces][:, None]))
        cdf = np.hstack([np.zeros((len(faces), 1)), below, np.ones((len(faces), 1))])
        return np.diff(cdf, axis=1)

    def rate(self, u: np.ndarray, faces: np.ndarray, levels: int) -> np.ndarray:
        """One rating 1..levels per face, drawn from :meth:`level_probs`."""
        cdf = np.cumsum(self.level_probs(u, faces, levels), axis=1)
        draw = self.rng.uniform(size=(len(faces), 1))
        return 1 + (draw > cdf[:, :-1]).sum(axis=1)


def heldout_proba(learner, labeller: str, attribute: str, Z: np.ndarray) -> np.ndarray | None:
    """A rating project: the person's model's ``(n, levels)`` probabilities for faces outside the
    project (the item's embedding, then the person's columns, as the model's ColumnTransformer
    lays them out); None: no model."""
    with learner._lock:
        model = learner.models.get(attribute)
        if model is None:
            return None
        features, head = model[0], model[-1]
        encoder, columns = next((t, c) for _, t, c in features.transformers_ if isinstance(t, UserEncoder))
        column = columns if isinstance(columns, str) else columns[0]
        person = encoder.transform(pd.DataFrame({column: [labeller] * len(Z)}))
        person = person.toarray() if hasattr(person, "toarray") else np.asarray(person)
        proba = head.predict_proba(np.hstack([np.asarray(Z, dtype=np.float64), person]))
        if isinstance(proba, list):  # a model of several attributes: this one's output
            proba = proba[learner.outputs[attribute][0] if attribute in learner.outputs else 0]
        return np.asarray(proba, dtype=np.float64)


def heldout_scores(learner, labeller: str, attribute: str, Z: np.ndarray) -> np.ndarray | None:
    """The person's model's scores of faces outside the project (as ``learner.ranking`` scores
    the project's own images: the item's embedding, then the person's columns; for ratings the
    expected rating); None: no model."""
    if learner.kind == "rating":
        proba = heldout_proba(learner, labeller, attribute, Z)
        return None if proba is None else proba @ np.arange(1, proba.shape[1] + 1)
    with learner._lock:
        model = learner.models.get(attribute)
        if model is None:
            return None
        pairs, head = model[0], model[-1]
        half = np.asarray(Z, dtype=np.float64)
        if pairs.n_context_features_:
            context = pairs.context_transformer_.transform(pd.DataFrame({"user_id": [labeller] * len(Z)}))
            context = context.toarray() if hasattr(context, "toarray") else np.asarray(context)
            half = np.hstack([half, context])
        return np.asarray(head.score_items(half), dtype=np.float64).reshape(len(Z), -1)[:, 0]


def population_model(Z, names, sim, faces, args, rng) -> tuple[Pipeline, dict]:
    """A personal model of ``args.population`` other simulated people, fitted at the ranker's
    constructor defaults on ``args.population_judgments`` random pairs each of ``faces``: the
    given model a project can start from."""
    tastes = [sim.utility() for _ in range(args.population)]
    who = np.repeat(np.arange(args.population), args.population_judgments)
    if args.kind == "rating":
        return _population_ratings(Z, names, sim, faces, tastes, who, args, rng)
    a, b = rng.choice(faces, size=(2, len(who)))
    b = np.where(a == b, rng.choice(faces, size=len(b)), b)
    y = np.concatenate([sim.judge(tastes[p], a[who == p], b[who == p]) for p in range(args.population)])
    X = pd.DataFrame(
        {
            "image_a": [names[i] for i in a],
            "image_b": [names[i] for i in b],
            "user_id": [f"other{w}" for w in who],
        }
    )
    model = Pipeline(
        [
            (
                "pairs",
                PairFeatures(item_transformer=EmbeddingLookup(names, Z), context_transformer=UserEncoder()),
            ),
            ("head", PairwiseRanker(user_features="auto", random_state=args.seed, **_given_trunk(args))),
        ]
    )
    t0 = time.perf_counter()
    model.fit(X, y.astype(int))
    return model, _about(model, len(y), faces, t0, args)


def _population_ratings(Z, names, sim, faces, tastes, who, args, rng) -> tuple[Pipeline, dict]:
    """The rating version: each person rates ``args.population_judgments`` random faces 1..levels."""
    shown = np.concatenate([rng.choice(faces, size=args.population_judgments, replace=False) for _ in tastes])
    y = np.concatenate([sim.rate(tastes[p], shown[who == p], args.levels) for p in range(args.population)])
    X = pd.DataFrame({"image": [names[i] for i in shown], "user_id": [f"other{w}" for w in who]})
    width = Z.shape[1]
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [("image", EmbeddingLookup(names, Z), "image"), ("user", UserEncoder(), ["user_id"])]
                ),
            ),
            (
                "head",
                RatingClassifier(
                    classes=np.arange(1, args.levels + 1),
                    user_features=np.arange(width, width + args.population),
                    random_state=args.seed,
                    **_given_trunk(args),
                ),
            ),
        ]
    )
    t0 = time.perf_counter()
    model.fit(X, y)
    return model, _about(model, len(y), faces, t0, args)


def _given_trunk(args) -> dict:
    """The given model's trunk: the head's default, or linear (``--given-trunk linear``)."""
    return {"hidden_layer_sizes": ()} if args.given_trunk == "linear" else {}


def _about(model, n_judgments: int, faces, t0: float, args) -> dict:
    head = model[-1]
    about = {
        "people": args.population,
        "judgments": n_judgments,
        "faces": len(faces),
        "fit_seconds": round(time.perf_counter() - t0, 1),
        "hidden_layer_sizes_": list(getattr(head, "hidden_layer_sizes_", head.hidden_layer_sizes)),
        "user_alpha_": [round(float(v), 4) for v in np.ravel(head.user_alpha_)],
        "user_prior_": str(getattr(head, "user_prior_", head.user_prior)),
    }
    return about


def run_strategy(
    strategy, folder, items, Z_pool, Z_test, tastes, sim, pool, test, args, checkpoints, given=None
) -> dict:
    """One project, every person labelling with ``strategy``: accuracy per checkpoint, timings.
    ``given``: a fitted personal model to start from (a copy is used; labellers are added to it)."""
    workspace = Path(tempfile.mkdtemp(prefix="skpercept-labelling-"))
    project = LabelProject(
        folder, [args.attribute], items=items, workspace=workspace, embeddings=Z_pool,
        kind=args.kind, levels=args.levels if args.kind == "rating" else 2,
        model=None if given is None else copy.deepcopy(given),
        **RUNS[strategy], random_state=args.seed, background=True,
    )  # fmt: skip
    learner = project.learner
    drawn = {"random": 0}
    draw = learner._random_question

    def counted(*a):  # benchmark instrumentation: a question drawn at random (exploring, or none prepared)
        drawn["random"] += 1
        return draw(*a)

    learner._random_question = counted
    updates: dict = {"update": [], "refit": [], "suggest": []}
    busy = {"now": False}
    update, suggest = learner._update, learner._suggest

    def timed(key):  # benchmark instrumentation: how long each background update takes
        before = learner.fitted_on.get(args.attribute)
        busy["now"] = True
        t0 = time.perf_counter()
        try:
            update(key)
        finally:
            busy["now"] = False
        kind = "refit" if learner.fitted_on.get(args.attribute) != before else "update"
        updates[kind].append(time.perf_counter() - t0)

    def timed_suggest(*a, **kw):  # the part of an update that chooses the questions
        t0 = time.perf_counter()
        out = suggest(*a, **kw)
        updates["suggest"].append(time.perf_counter() - t0)
        return out

    learner._update, learner._suggest = timed, timed_suggest
    client = create_app(project).test_client()
    people = [f"person{p}" for p in range(len(tastes))]
    tokens = {who: project.store.add_labeller(who) for who in people}
    csrf = {}
    for who in people:
        page = client.get(f"/l/{tokens[who]}/").get_data(as_text=True)
        csrf[who] = re.search(r'data-csrf="([0-9a-f]+)"', page).group(1)
    index = {name: k for k, name in enumerate(items)}
    times = {"next": [], "judge": [], "click": []}
    during = []  # whether a background update was running when the click began
    accuracy: dict = {k: [] for k in checkpoints}
    sure: dict = {}  # ratings: how sure the model said it was of its predicted rating, and how often right
    unknown: dict = {k: [] for k in checkpoints}  # the shared model alone, for the same people
    first_model = None
    done = 0
    for k in checkpoints:
        if k == 0:  # a given model before anyone answers: the shared part for everyone
            shared = heldout_scores(learner, "nobody-in-particular", args.attribute, Z_test)
            accuracy[0] = unknown[0] = [order_accuracy(shared, u[test]) for u in tastes]
            if args.kind == "rating":
                sure[0] = how_sure(learner, people, args, tastes, sim, test, Z_test)
            continue
        for _ in range(k - done):
            for p, who in enumerate(people):
                during.append(busy["now"])
                t0 = time.perf_counter()
                question = client.get(f"/l/{tokens[who]}/api/next?attribute={args.attribute}").get_json()
                t1 = time.perf_counter()
                a = pool[index[question["item_a"]]]
                if args.kind == "rating":
                    value = int(sim.rate(tastes[p], np.array([a]), args.levels)[0])
                else:
                    b = pool[index[question["item_b"]]]
                    value = 1 if sim.judge(tastes[p], np.array([a]), np.array([b]))[0] == 1 else 2
                body = {
                    "client_id": uuid.uuid4().hex,
                    "attribute": args.attribute,
                    "item_a": question["item_a"],
                    "item_b": question.get("item_b"),
                    "value": value,
                }
                t2 = time.perf_counter()
                answer = client.post(
                    f"/l/{tokens[who]}/api/judge", json=body, headers={"X-CSRF-Token": csrf[who]}
                )
                t3 = time.perf_counter()
                if answer.status_code != 200 or not answer.get_json()["stored"]:
                    raise RuntimeError(
                        f"judge answered {answer.status_code}: {answer.get_data(as_text=True)}"
                    )
                times["next"].append(t1 - t0)
                times["judge"].append(t3 - t2)
                times["click"].append(t1 - t0 + t3 - t2)
                if first_model is None and question["model"]:
                    first_model = len(times["click"])
                if args.pause_ms:
                    time.sleep(args.pause_ms / 1000)
        done = k
        # Checkpoint: let the background finish, then force each person's update so their model
        # includes every answer. Calling the private _update after wait() is a benchmark's
        # shortcut: the app itself updates every update_every clicks, so between updates it
        # lags by up to that many answers.
        learner.wait(timeout=600)
        for who in people:
            learner._update((who, args.attribute))
        # the shared part alone: the model's scores for someone it does not know
        shared = heldout_scores(learner, "nobody-in-particular", args.attribute, Z_test)
        for p, who in enumerate(people):
            scores = heldout_scores(learner, who, args.attribute, Z_test)
            # no model yet (fewer than min_judgments judgments): chance
            accuracy[k].append(0.5 if scores is None else order_accuracy(scores, tastes[p][test]))
            unknown[k].append(0.5 if shared is None else order_accuracy(shared, tastes[p][test]))
        if args.kind == "rating":
            sure[k] = how_sure(learner, people, args, tastes, sim, test, Z_test)
        print(
            f"  {strategy:12s} {k:3d} answers each: held-out accuracy {np.mean(accuracy[k]):.3f} ± "
            f"{np.std(accuracy[k]):.3f} (shared part alone {np.mean(unknown[k]):.3f}); clicks so far p50 {1e3 * np.median(times['click']):.1f} ms, "
            f"p95 {1e3 * np.percentile(times['click'], 95):.1f} ms; drawn at random {drawn['random']}",
            flush=True,
        )
    # the scores used here are the ones the app shows: check against learner.ranking once
    ranked = learner.ranking(people[0], args.attribute)
    if len(ranked):
        mine = heldout_scores(learner, people[0], args.attribute, Z_pool)
        shown = ranked.set_index("item").loc[items, "score"].to_numpy()
        if not np.allclose(mine, shown, atol=1e-5):
            raise RuntimeError("held-out scoring disagrees with learner.ranking")
    out = {
        "sure": sure,
        "accuracy": {k: [round(float(x), 4) for x in v] for k, v in accuracy.items()},
        "shared_only": {k: [round(float(x), 4) for x in v] for k, v in unknown.items()},
        "times_ms": {key: [round(1e3 * t, 2) for t in v] for key, v in times.items()},
        "clicks": len(times["click"]),
        "click_began_during_update": during,
        "drawn_at_random": drawn["random"],
        "first_model_click": first_model,
        "background_updates": learner.updates,
        "update_seconds": {k: [round(t, 3) for t in v] for k, v in updates.items()},
        "refits_fitted_on": learner.fitted_on.get(args.attribute),
        "last_error": learner.last_error,
        "settings": {
            "min_judgments": learner.min_judgments,
            "update_every": learner.update_every,
            "batch": learner.batch,
            "explore": learner.explore,
        },
    }
    head = learner.models[args.attribute][-1] if args.attribute in learner.models else None
    if head is not None:  # how strongly the last refit shrinks a person toward the shared model
        out["user_alpha_"] = [round(float(a), 4) for a in np.ravel(getattr(head, "user_alpha_", []))]
        out["user_alpha_reason_"] = getattr(head, "user_alpha_reason_", None)
    # what the team was asked: how many faces, how concentrated, how many pairs asked twice
    asked = project.store.judgments(attribute=args.attribute)
    shown = pd.concat([asked["item_a"], asked["item_b"]]).value_counts()
    pairs = (
        list(asked["item_a"])
        if args.kind == "rating"
        else [tuple(sorted(pair)) for pair in zip(asked["item_a"], asked["item_b"])]
    )
    out["asked"] = {
        "distinct_faces": int(shown.size),
        "top10_faces_share": round(float(shown.iloc[:10].sum() / shown.sum()), 3),
        "most_asked_face": int(shown.iloc[0]),
        "pairs_asked_before": int(pd.Series(pairs).duplicated().sum()),
    }
    project.close()
    shutil.rmtree(workspace, ignore_errors=True)
    return out


def how_sure(learner, people, args, tastes, sim, test, Z_test) -> dict | None:
    """Ratings: the model's probability of its predicted rating (the "% sure" the ranked page
    shows) against the chance the person gives that rating (from the simulation's own rating
    probabilities), over every held-out face of every person: mean of each, and the expected
    calibration error over 10 equal-width bins of the stated probability."""
    stated, right = [], []
    for p, who in enumerate(people):
        proba = heldout_proba(learner, who, args.attribute, Z_test)
        if proba is None:
            return None
        predicted = proba.argmax(axis=1)
        stated.append(proba.max(axis=1))
        right.append(sim.level_probs(tastes[p], test, args.levels)[np.arange(len(test)), predicted])
    stated, right = np.concatenate(stated), np.concatenate(right)
    bins = np.minimum((stated * 10).astype(int), 9)
    ece = sum(
        np.mean(bins == b) * abs(stated[bins == b].mean() - right[bins == b].mean()) for b in np.unique(bins)
    )
    return {
        "ece": round(float(ece), 4),
        "stated": round(float(stated.mean()), 4),
        "right": round(float(right.mean()), 4),
    }


def percentiles(values_ms: list) -> tuple[float, float, float]:
    return float(np.median(values_ms)), float(np.percentile(values_ms, 95)), float(np.max(values_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--people", type=int, default=8, help="simulated people (each labels per strategy)")
    parser.add_argument("--faces", type=int, default=150, help="the project's images (the pool asked about)")
    parser.add_argument("--held-out", type=int, default=30, help="faces never shown, for the accuracy")
    parser.add_argument("--attribute", default="trustworthy", help="an OMI attribute: the question")
    parser.add_argument("--personal", type=float, default=0.5, help="weight of the person's own taste")
    parser.add_argument(
        "--pause-ms", type=float, default=DEFAULT_PAUSE_MS, help="pause after every click (0: click at once)"
    )
    parser.add_argument(
        "--start",
        choices=("nothing", "population"),
        default="nothing",
        help="what the project starts from: nothing (the app's own model once there are judgments) or "
        "a personal model fitted on other simulated people (a given model, as with `skpercept label --model`)",
    )
    parser.add_argument("--population", type=int, default=100, help="--start population: its people")
    parser.add_argument(
        "--population-judgments", type=int, default=40, help="--start population: random pairs per person"
    )
    parser.add_argument(
        "--given-trunk",
        choices=("default", "linear"),
        default="default",
        help="--start population: the given model's trunk, the head's default or linear (hidden_layer_sizes=())",
    )
    parser.add_argument(
        "--kind",
        choices=("pairs", "rating"),
        default="pairs",
        help="the question: which of two (pairs) or a rating 1..--levels of one face",
    )
    parser.add_argument("--levels", type=int, default=4, help="--kind rating: the rating levels")
    parser.add_argument("--seed", type=int, default=0)
    add_result_options(parser)
    args = parser.parse_args()
    if args.given_trunk != "default" and args.start != "population":
        parser.error("--given-trunk: only with --start population (a given model)")
    if args.quick:
        args.people, args.faces, args.held_out = 3, 60, 20
    checkpoints = CHECKPOINTS[:2] if args.quick else CHECKPOINTS
    if args.start == "population":
        checkpoints = (0, *checkpoints)
    torch.set_num_threads(1)  # small heads: a second thread only adds contention
    print(hardware_line(), flush=True)
    start = time.perf_counter()
    omi, Z = omi_embeddings(None)
    images = omi.means["image"].to_numpy()
    attributes = omi_attributes(omi)
    if args.attribute not in attributes:
        parser.error(f"--attribute: one of {list(attributes)}")
    column = list(attributes).index(args.attribute)
    sim = AttributeTastes(attributes.to_numpy(np.float64), Z, column, args.personal, args.seed)
    rng = np.random.RandomState(args.seed)
    faces = rng.permutation(len(Z))
    pool, test = faces[: args.faces], faces[args.faces : args.faces + args.held_out]
    tastes = [sim.utility() for _ in range(args.people)]
    paths = [Path(images[i]) for i in pool]
    folder = paths[0].parent
    items = [path.relative_to(folder).as_posix() for path in paths]
    # what frames the curves: the attribute's population mean; ridge on the true utility
    population = sim.A[:, column]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13), alpha_per_target=True)
    ridge.fit(Z[pool], np.stack([u[pool] for u in tastes], axis=1))
    best = ridge.predict(Z[test])
    frame = {
        "noise_beta": round(float(sim.beta), 3),
        "population mean of the attribute": round(
            float(np.mean([order_accuracy(population[test], u[test]) for u in tastes])), 4
        ),
        "ridge on the true utility (oracle)": round(
            float(np.mean([order_accuracy(best[:, p], u[test]) for p, u in enumerate(tastes)])), 4
        ),
    }
    print(
        f"{len(pool)} pool faces, {len(test)} held-out faces, {args.people} people, attribute "
        f"{args.attribute!r}, β = {sim.beta:.2f}; population mean {frame['population mean of the attribute']:.3f}, "
        f"ridge oracle {frame['ridge on the true utility (oracle)']:.3f}",
        flush=True,
    )
    given = None
    if args.start == "population":
        others = faces[args.faces + args.held_out :]
        names = [str(Path(p)) for p in images]  # the model takes image paths, as fit's models do
        given, frame["given model"] = population_model(Z, names, sim, others, args, rng)
        about = frame["given model"]
        print(
            f"given model: {about['people']} other people x {args.population_judgments} {'ratings' if args.kind == 'rating' else 'pairs'} of "
            f"{about['faces']} other faces, fitted in {about['fit_seconds']:.0f} s (trunk "
            f"{about['hidden_layer_sizes_']}, user_alpha_ {about['user_alpha_']}, prior {about['user_prior_']})",
            flush=True,
        )
    runs = {}
    for strategy in STRATEGIES:
        t0 = time.perf_counter()
        runs[strategy] = run_strategy(
            strategy, folder, items, Z[pool], Z[test], tastes, sim, pool, test, args, checkpoints, given
        )
        runs[strategy]["seconds"] = round(time.perf_counter() - t0, 1)

    settings = runs[STRATEGIES[0]]["settings"]
    print(
        f"\nHeld-out pair accuracy after k answers per person (mean ± sd over {args.people} people; "
        f"no model before {settings['min_judgments']} judgments in all: 0.5)"
    )
    columns = [*STRATEGIES, *(f"{s}: shared part" for s in STRATEGIES)]
    print(f"{'answers':>8s}" + "".join(f"{c:>26s}" for c in columns))
    curves, rows = {}, []
    for k in checkpoints:
        cells = []
        for column, (s, key) in zip(
            columns, [(s, "accuracy") for s in STRATEGIES] + [(s, "shared_only") for s in STRATEGIES]
        ):
            v = runs[s][key][k]
            curves.setdefault(column, {})[k] = [round(float(np.mean(v)), 4), round(float(np.std(v)), 4)]
            cells.append(f"{np.mean(v):.3f} ± {np.std(v):.3f}")
        print(f"{k:8d}" + "".join(f"{c:>26s}" for c in cells))
        rows.append([str(k), *cells])
    for key, value in frame.items():
        print(f"  {key}: {value}")

    print("\nServer time per click, ms (as the client sees it; the model updating in the background)")
    print(f"{'strategy':18s}{'request':>14s}{'p50':>9s}{'p95':>9s}{'max':>9s}{'n':>7s}")
    timing, timing_rows = {}, []
    for s in STRATEGIES:
        for key in ("next", "judge", "click"):
            p50, p95, worst = percentiles(runs[s]["times_ms"][key])
            timing.setdefault(s, {})[key] = {
                "p50": round(p50, 2),
                "p95": round(p95, 2),
                "max": round(worst, 2),
            }
            n = len(runs[s]["times_ms"][key])
            label = "next + judge" if key == "click" else key
            print(f"{s:18s}{label:>14s}{p50:9.1f}{p95:9.1f}{worst:9.1f}{n:7d}")
            timing_rows.append([s, label, f"{p50:.1f}", f"{p95:.1f}", f"{worst:.1f}", str(n)])
    print("\nBackground (per strategy)")
    for s in STRATEGIES:
        r = runs[s]
        print(
            f"  {s}: {r['clicks']} clicks, {r['drawn_at_random']} questions drawn at random (exploring, or none prepared; "
            f"{r['drawn_at_random'] / r['clicks']:.0%}), first model at click {r['first_model_click']}, "
            f"{r['background_updates']} updates, last full refit on {r['refits_fitted_on']} judgments, "
            f"error {r['last_error']}, {r['seconds']:.0f} s; last refit's user_alpha_ "
            f"{r.get('user_alpha_')} ({r.get('user_alpha_reason_')})"
        )
        a = r["asked"]
        print(
            f"    asked: {a['distinct_faces']} distinct faces of {len(pool)}; the 10 most asked in "
            f"{a['top10_faces_share']:.0%} of the appearances (the most asked in {a['most_asked_face']} "
            f"judgments); {a['pairs_asked_before']} of {r['clicks']} pairs already asked of someone"
        )
        click, during = np.asarray(r["times_ms"]["click"]), np.asarray(r["click_began_during_update"], bool)
        for label, rows_ in (
            ("began while an update ran", during),
            ("began with the background idle", ~during),
        ):
            if rows_.any():
                print(
                    f"    clicks that {label}: {rows_.sum()}, p50 {np.median(click[rows_]):.1f} ms, "
                    f"p95 {np.percentile(click[rows_], 95):.1f} ms"
                )
        for kind, v in r["update_seconds"].items():
            if v:
                print(
                    f"    {kind}s (forced ones included): {len(v)}, median {np.median(v):.3f} s, "
                    f"max {np.max(v):.3f} s"
                )

    last = checkpoints[-1]
    goal = curves["random"][last][0]
    targets = {
        f"p95 ms per click (next + judge), {s} (goal < 50)": timing[s]["click"]["p95"] for s in STRATEGIES
    }
    for s in STRATEGIES[:-1]:  # the active ones against random
        reached = [k for k in checkpoints if k and curves[s][k][0] >= goal]
        targets[f"answers for {s} to reach random's {last}-answer accuracy (goal <= 40)"] = (
            min(reached) if reached else None
        )
    print("\nTargets")
    for key, value in targets.items():
        print(f"  {key}: {value}")
    figures = {
        "benchmark": "labelling",
        "quick": args.quick,
        "people": args.people,
        "pool_faces": len(pool),
        "held_out_faces": len(test),
        "attribute": args.attribute,
        "personal": args.personal,
        "start": args.start,
        "kind": args.kind,
        "levels": args.levels if args.kind == "rating" else 2,
        "pause_ms": args.pause_ms,
        "seed": args.seed,
        "learner_settings": settings,
        "curves": curves,
        "accuracy_per_person": {s: runs[s]["accuracy"] for s in STRATEGIES},
        "frame": frame,
        "timing_ms": timing,
        "background": {
            s: {
                k: runs[s][k]
                for k in (
                    "clicks",
                    "drawn_at_random",
                    "first_model_click",
                    "background_updates",
                    "update_seconds",
                    "refits_fitted_on",
                    "last_error",
                    "seconds",
                    "user_alpha_",
                    "user_alpha_reason_",
                    "asked",
                )
                if k in runs[s]
            }
            for s in STRATEGIES
        },
        "targets": targets,
        "seconds": round(time.perf_counter() - start, 1),
    }
    sure_rows = []
    if args.kind == "rating":
        figures["how_sure"] = {s: runs[s]["sure"] for s in STRATEGIES}
        print(
            "\nHow sure (ratings): expected calibration error of the predicted rating's probability "
            "(mean stated / mean chance the person gives it)"
        )
        for k in checkpoints:
            cells = []
            for s in STRATEGIES:
                r = runs[s]["sure"].get(k)
                cells.append(
                    "no model" if r is None else f"{r['ece']:.3f} ({r['stated']:.2f} / {r['right']:.2f})"
                )
            print(f"{k:8d}" + "".join(f"{c:>26s}" for c in cells))
            sure_rows.append([str(k), *cells])
    print(json.dumps(figures))
    where = f"{args.people} simulated people, {len(pool)} pool faces, {len(test)} held-out faces, '{args.attribute}'"
    if given is not None:
        about = frame["given model"]
        where += (
            f"; starting from a given model of {about['people']} other people x "
            f"{args.population_judgments} {'ratings' if args.kind == 'rating' else 'pairs'} of other faces"
        )
        start_note = (
            "The project starts from that model (never refitted; each labeller's deviation added as they "
            "answer); 0 answers: the model for someone it does not know. "
        )
    else:
        start_note = f"The app's own model once the attribute has {settings['min_judgments']} judgments; no model yet: 0.5. "
    tables = [
        table_record(
            "accuracy",
            f"Labelling app, simulated people on OMI faces: held-out pair accuracy after k answers "
            f"per person (mean ± sd over people; {where})",
            ["answers", *columns],
            rows,
            note=f"Answers through the app's HTTP API, the people taking turns; the model updating in the "
            f"background (min_judgments {settings['min_judgments']}, update_every {settings['update_every']}, "
            f"batch {settings['batch']}, explore {settings['explore']} for the active strategies), each person's update forced at a checkpoint. "
            + start_note
            + "Shared part: the same "
            f"model's scores for a person it does not know (the team's common taste), judged against each "
            f"person's utility. "
            f"Population mean of the attribute: {frame['population mean of the attribute']:.3f}; ridge on "
            f"the true utility (oracle): {frame['ridge on the true utility (oracle)']:.3f}.",
        ),
        table_record(
            "timing",
            f"Server time per click, ms, as the Flask test client sees it ({where})",
            ["strategy", "request", "p50", "p95", "max", "n"],
            timing_rows,
            note="The model updating on the app's background thread meanwhile; checkpoint pauses excluded. "
            + "; ".join(
                f"{s}: {runs[s]['drawn_at_random']} of {runs[s]['clicks']} questions drawn at random "
                "(exploring, or none prepared yet)"
                for s in STRATEGIES
            ),
        ),
    ]
    name = result_name(
        "labelling",
        f"rating{args.levels}" if args.kind == "rating" else None,
        "population" if args.start == "population" else None,
        "linear" if args.given_trunk == "linear" else None,  # only with --start population (checked)
        f"pause{args.pause_ms:g}" if args.pause_ms != DEFAULT_PAUSE_MS else None,
        f"personal{args.personal:g}" if args.personal != 0.5 else None,
        "quick" if args.quick else None,
        f"seed{args.seed}" if args.seed else None,
    )
    if sure_rows:
        tables.append(
            table_record(
                "sure",
                f"How sure the ranked page's \"% sure\" is: the predicted rating's probability against the "
                f"chance the person gives that rating, held-out faces ({where})",
                ["answers", *STRATEGIES],
                sure_rows,
                note="Expected calibration error over 10 equal-width bins of the stated probability, pooled "
                "over people and held-out faces; in brackets the mean stated probability and the mean chance "
                "that the person gives the predicted rating (the simulation's own rating probabilities).",
            )
        )
    save_result(args, name, tables, figures)


if __name__ == "__main__":
    main()
