"""Plumbing of :class:`skpercept.model_selection.PerceptSearchCV`: suggestions, fold-local pruning, the
results table, logging, and how a Pipeline and its fit parameters are split for each fold.

Several workers sharing one study (storages, heartbeats, the shared budget) live in
:mod:`skpercept.model_selection`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from optuna import distributions as d
from sklearn import get_config
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import process_routing

from skpercept._compat import safe_indexing
from skpercept.model_selection._pruner import FoldLocalPruner


def fold_local_pruner(pruner: Any) -> Any:
    """``pruner`` wrapped so that it judges a trial on the fold it is training now
    (:class:`~skpercept.model_selection._pruner.FoldLocalPruner`)."""
    return FoldLocalPruner(pruner)


def suggest_one(trial: Any, name: str, dist: Any) -> Any:
    """Draw one value through the public ``suggest_*`` API for a distribution or choice list."""
    if isinstance(dist, (list, tuple)):
        return trial.suggest_categorical(name, list(dist))
    if isinstance(dist, d.CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, d.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, d.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(
        f"search space entry {name!r} must be an optuna distribution or a list of choices, got {dist!r}."
    )


def scoring_name(scoring: Any) -> str:
    if scoring is None or isinstance(scoring, str):
        return str(scoring)
    func = getattr(scoring, "_score_func", scoring)
    return getattr(func, "__name__", type(func).__name__)


def jsonable(params: Mapping[str, Any]) -> dict:
    out = {}
    for key, value in params.items():
        try:
            json.dumps(value)
            out[key] = value
        except (TypeError, ValueError):
            out[key] = repr(value)
    return out


def cv_results(trials: list, n_splits: int, states: Any) -> dict:
    n = len(trials)
    attrs = [t.user_attrs for t in trials]
    results: dict[str, Any] = {
        "number": np.array([t.number for t in trials], dtype=int),
        "state": np.array([t.state.name for t in trials], dtype=object),
        "params": [a.get("params", dict(t.params)) for a, t in zip(attrs, trials)],
    }
    names = sorted({k for p in results["params"] for k in p})
    for name in names:
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, p in enumerate(results["params"]):
            if name in p:
                column[i] = p[name]
        results[f"param_{name}"] = column
    split = np.full((n, n_splits), np.nan)
    for i, a in enumerate(attrs):
        for k in range(n_splits):
            split[i, k] = a.get(f"split{k}_test_score", np.nan)
    for k in range(n_splits):
        results[f"split{k}_test_score"] = split[:, k]
    complete = np.array([t.state == states.COMPLETE for t in trials])
    mean = np.array([a.get("mean_test_score", np.nan) for a in attrs], dtype=float)
    mean[~complete] = np.nan
    results["mean_test_score"] = mean
    results["std_test_score"] = np.array([a.get("std_test_score", np.nan) for a in attrs], dtype=float)
    # Like sklearn's error_score=nan: unfinished trials rank after every complete one.
    # Unfinished trials (NaN mean) rank after every finished one, as failed fits in sklearn.
    order = np.argsort(np.where(np.isnan(mean), np.inf, -mean), kind="stable")
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(1, n + 1)
    results["rank_test_score"] = rank
    results["fail_reason"] = np.array([a.get("fail_reason", "") for a in attrs], dtype=object)
    results["n_epochs"] = np.array([a.get("n_epochs", 0) for a in attrs], dtype=int)
    results["duration_s"] = np.array(
        [t.duration.total_seconds() if t.duration is not None else np.nan for t in trials]
    )
    return results


@contextmanager
def optuna_verbosity(optuna: Any, verbose: int):
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def fold_params(params: dict, indices: np.ndarray, n_samples: int) -> dict:
    """Fit parameters of one training fold: per-row arrays are indexed, others kept."""
    return {
        key: safe_indexing(value, indices)
        if hasattr(value, "__len__") and not isinstance(value, str) and len(value) == n_samples
        else value
        for key, value in params.items()
    }


def step_params(estimator: Any, params: dict) -> tuple[dict, dict]:
    """Split fit parameters between a Pipeline's preprocessing steps and its final step.

    With metadata routing the Pipeline says which step requested what; without it,
    ``step__param`` names select the step (scikit-learn's legacy convention). For an estimator
    that is not a Pipeline, everything goes to its ``fit``.
    """
    if not isinstance(estimator, Pipeline):
        return {}, params
    if not params:
        return {}, {}
    name = estimator.steps[-1][0]
    if get_config()["enable_metadata_routing"]:
        routed = process_routing(estimator, "fit", **params)
        head = dict(routed[name].fit)
        steps = [step for step, _ in estimator.steps[:-1]]
        wanted = {k for step in steps for method in routed[step].values() for k in method}
        return {k: v for k, v in params.items() if k in wanted}, head
    head = {k.split("__", 1)[1]: v for k, v in params.items() if k.startswith(f"{name}__")}
    return {k: v for k, v in params.items() if not k.startswith(f"{name}__")}, head


def split_pipeline(estimator: Any) -> tuple[Pipeline | None, Any]:
    """Return (preprocessing steps or None, final step); slices share the step objects."""
    if isinstance(estimator, Pipeline):
        head = estimator.steps[-1][1]
        if head is None or head == "passthrough":
            raise ValueError("the Pipeline's final step must be an estimator, not passthrough.")
        prefix = estimator[:-1] if len(estimator.steps) > 1 else None
        return prefix, head
    return None, estimator


# -- a fitted search's state as plain data (joblib and skops files alike) -----------------------
_DISTRIBUTION = "optuna_distribution"
_BUILTIN_EXCEPTION = "builtin_exception"


def study_as_data(study: Any) -> dict:
    """``study``'s name, direction and trials as dicts, lists, numbers and text: no optuna
    object, so a safe loader (skops) rebuilds it without trusting optuna's classes."""
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append(
            {
                "number": t.number,
                "state": t.state.name,
                "values": None if t.values is None else [float(v) for v in t.values],
                "params": dict(t.params),
                "distributions": {k: d.distribution_to_json(v) for k, v in t.distributions.items()},
                "user_attrs": dict(t.user_attrs),
                "system_attrs": dict(t.system_attrs),
                "intermediate_values": [[int(s), float(v)] for s, v in t.intermediate_values.items()],
                "datetime_start": None if t.datetime_start is None else t.datetime_start.isoformat(),
                "datetime_complete": None if t.datetime_complete is None else t.datetime_complete.isoformat(),
            }
        )
    return {"study_name": study.study_name, "direction": study.direction.name, "trials": trials}


def study_from_data(data: dict, sampler: Any, pruner: Any) -> Any:
    """An in-memory study holding the trials :func:`study_as_data` kept."""
    import datetime

    import optuna

    def when(text: str | None) -> datetime.datetime | None:
        return None if text is None else datetime.datetime.fromisoformat(text)

    study = optuna.create_study(
        study_name=data["study_name"], direction=data["direction"].lower(), sampler=sampler, pruner=pruner
    )
    for t in data["trials"]:
        state = optuna.trial.TrialState[t["state"]]
        trial = optuna.trial.FrozenTrial(
            number=t["number"],
            state=state,
            value=None,
            values=t["values"] if state == optuna.trial.TrialState.COMPLETE else None,
            datetime_start=when(t["datetime_start"]),
            datetime_complete=when(t["datetime_complete"]),
            params=t["params"],
            distributions={k: d.json_to_distribution(v) for k, v in t["distributions"].items()},
            user_attrs=t["user_attrs"],
            system_attrs=t["system_attrs"],
            intermediate_values={int(s): float(v) for s, v in t["intermediate_values"]},
            trial_id=t["number"],
        )
        study.add_trial(trial)
    return study


def space_as_data(space: Any) -> Any:
    """A search space with optuna's distributions as their JSON text (other entries as given)."""
    if not isinstance(space, Mapping):
        return space
    return {
        k: {_DISTRIBUTION: d.distribution_to_json(v)} if isinstance(v, d.BaseDistribution) else v
        for k, v in space.items()
    }


def space_from_data(space: Any) -> Any:
    if not isinstance(space, Mapping):
        return space
    return {
        k: d.json_to_distribution(v[_DISTRIBUTION])
        if isinstance(v, dict) and set(v) == {_DISTRIBUTION}
        else v
        for k, v in space.items()
    }


def catch_as_data(catch: Any) -> Any:
    """``catch`` with Python's built-in exception classes by name (a safe loader rebuilds a
    name from the builtins module only; other classes stay as they are)."""
    import builtins

    return tuple(
        {_BUILTIN_EXCEPTION: c.__name__}
        if isinstance(c, type) and getattr(builtins, c.__name__, None) is c and issubclass(c, BaseException)
        else c
        for c in catch
    )


def catch_from_data(catch: Any) -> Any:
    import builtins

    def one(c: Any) -> Any:
        if isinstance(c, dict) and set(c) == {_BUILTIN_EXCEPTION}:
            found = getattr(builtins, str(c[_BUILTIN_EXCEPTION]), None)
            if not (isinstance(found, type) and issubclass(found, BaseException)):
                raise ValueError(f"catch names {c[_BUILTIN_EXCEPTION]!r}, which is not a built-in exception.")
            return found
        return c

    return tuple(one(c) for c in catch)
