"""Tests of skpercept.model_selection._search: pruning, resume (incl. kill -9), failures, Pipeline compatibility."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skpercept.model_selection._search import PerceptSearchCV
from tests.model_selection._tune_heads import make_data, make_head

optuna.logging.set_verbosity(optuna.logging.WARNING)
MAX_EPOCHS = 8


def _pipe(**head_params):
    return Pipeline([("scale", StandardScaler()), ("head", make_head(max_epochs=MAX_EPOCHS, **head_params))])


def test_pruning_stops_obviously_bad_trials():
    X, y = make_data()
    # A pre-created study in a storage object: enqueued trials fix the order, so three good
    # learning rates are the pruner's reference and the near-zero ones (stuck at chance)
    # must be stopped on fold 0.
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="p", direction="maximize")
    for lr in [0.05, 0.03, 0.02, 1e-9, 2e-9, 3e-9, 4e-9]:
        study.enqueue_trial({"head__lr": lr})
    search = PerceptSearchCV(
        _pipe(),
        {"head__lr": optuna.distributions.FloatDistribution(1e-9, 0.1, log=True)},
        cv=3,
        n_trials=7,
        storage=storage,
        study_name="p",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    ).fit(X, y)
    res = search.cv_results_
    lrs = np.array([p["head__lr"] for p in res["params"]])
    pruned = res["state"] == "PRUNED"
    assert search.n_pruned_ == pruned.sum() >= 2
    assert np.all(lrs[pruned] < 1e-6), "only the hopeless learning rates should be pruned"
    # A pruned trial stops inside fold 0: fewer epochs than one full fold.
    assert np.all(res["n_epochs"][pruned] < MAX_EPOCHS)
    assert np.all(np.isnan(res["mean_test_score"][pruned]))
    # Unfinished trials rank after every finished one.
    assert res["rank_test_score"][pruned].min() > res["rank_test_score"][~pruned].max()
    assert search.epochs_run_ == res["n_epochs"].sum() < 7 * 3 * MAX_EPOCHS
    assert search.best_params_["head__lr"] >= 0.02
    # Intermediate values: step = fold * 1000 + epoch (1-based), every fold.
    steps = sorted(search.study_.trials[0].intermediate_values)
    assert steps == [f * 1000 + e for f in range(3) for e in range(1, MAX_EPOCHS + 1)]

    first_only = clone(search).set_params(pruning_folds="first", storage=None, study_name=None)
    first_only.fit(X, y)
    assert sorted(first_only.study_.trials[0].intermediate_values) == list(range(1, MAX_EPOCHS + 1))


def test_a_later_fold_is_judged_on_its_own_scores():
    """A trial that peaked on fold 0 is still pruned when it falls behind on fold 1."""
    search = PerceptSearchCV(_pipe(), {}, pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study = optuna.create_study(direction="maximize", pruner=search._make_pruner(optuna))
    for fold0, fold1 in [(0.70, 0.80), (0.72, 0.82)]:
        done = study.ask()
        done.report(fold0, 1)
        done.report(fold1, 1001)
        study.tell(done, (fold0 + fold1) / 2)
    trial = study.ask()
    trial.report(0.95, 1)  # best of all on fold 0 ...
    assert not trial.should_prune()
    trial.report(0.60, 1001)  # ... worst on fold 1: its fold-0 peak must not shield it
    assert trial.should_prune()
    # The raw median pruner, judging the best value over all steps, would have kept it.
    raw = optuna.pruners.MedianPruner(n_startup_trials=1)
    assert not raw.prune(study, study.trials[-1])


def test_pipeline_search_api_and_results():
    X, y = make_data()
    space = {
        "head__lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
        "head__batch_size": [16, 32],
    }
    search = PerceptSearchCV(_pipe(), space, cv=3, n_trials=3, scoring="accuracy", random_state=0)
    search.fit(X, y)
    res = search.cv_results_
    for key in (
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "n_epochs",
        "state",
        "split0_test_score",
        "split2_test_score",
        "param_head__lr",
        "params",
    ):
        assert len(res[key]) == 3, key
    best = search.best_index_
    assert res["rank_test_score"][best] == 1
    assert search.best_score_ == pytest.approx(res["mean_test_score"][best])
    splits = [res[f"split{k}_test_score"][best] for k in range(3)]
    assert search.best_score_ == pytest.approx(np.mean(splits))
    assert res["std_test_score"][best] == pytest.approx(np.std(splits))
    trial = search.study_.best_trial
    assert trial.user_attrs["std_test_score"] == pytest.approx(np.std(splits))
    assert set(search.best_params_) == {"head__lr", "head__batch_size"}
    assert isinstance(search.best_estimator_, Pipeline)
    assert search.best_estimator_.get_params()["head__lr"] == search.best_params_["head__lr"]
    assert search.predict(X).shape == (len(X),)
    assert search.predict_proba(X).shape == (len(X), 2)
    assert 0.0 <= search.score(X, y) <= 1.0
    np.testing.assert_array_equal(search.classes_, [0, 1])
    assert search.epochs_run_ == 3 * 3 * MAX_EPOCHS  # default pruner cannot prune 3 trials


def test_fitted_search_saves_and_reloads_with_joblib(tmp_path):
    """A fitted search (its study and fold-local pruner included) round-trips through joblib."""
    import joblib

    X, y = make_data()
    space = {"head__lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    search = PerceptSearchCV(_pipe(), space, cv=2, n_trials=2, random_state=0).fit(X, y)
    joblib.dump(search, tmp_path / "search.joblib")
    loaded = joblib.load(tmp_path / "search.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), search.predict_proba(X))
    assert loaded.best_params_ == search.best_params_
    assert repr(loaded.study_.pruner).startswith("FoldLocalPruner(")
    assert [t.value for t in loaded.study_.trials] == [t.value for t in search.study_.trials]


def test_clone_get_params_and_callable_space():
    def space(trial):
        width = trial.suggest_int("width", 2, 6, step=2)
        # Returned values need not be JSON; the search replays the callable to rebuild them.
        return {
            "head__hidden_layer_sizes": (width * 2,),
            "scale": StandardScaler(with_mean=trial.suggest_categorical("c", [True])),
        }

    search = PerceptSearchCV(_pipe(), space, cv=2, n_trials=2, random_state=1)
    params = search.get_params()
    assert params["estimator__head__max_epochs"] == MAX_EPOCHS and params["n_trials"] == 2
    copy = clone(search)
    assert copy.get_params()["param_distributions"] is space
    X, y = make_data(n=40)
    copy.fit(X, y)
    assert copy.best_params_["head__hidden_layer_sizes"] in [(4,), (8,), (12,)]
    assert isinstance(copy.best_params_["scale"], StandardScaler)
    assert isinstance(copy.cv_results_["params"][0]["scale"], str)  # stored as repr
    assert not hasattr(search, "study_")


def test_resume_from_sqlite_keeps_trials_and_budget(tmp_path):
    X, y = make_data(n=40)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"head__lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    kw = dict(cv=2, storage=url, study_name="s", random_state=0, refit=False)
    first = PerceptSearchCV(_pipe(), space, n_trials=2, **kw).fit(X, y)
    values = [t.value for t in first.study_.trials]
    second = PerceptSearchCV(_pipe(), space, n_trials=4, **kw).fit(X, y)
    assert second.n_trials_ == 4
    assert [t.value for t in second.study_.trials[:2]] == values
    again = PerceptSearchCV(_pipe(), space, n_trials=4, **kw).fit(X, y)
    assert again.n_trials_ == 4  # budget reached: nothing new runs
    assert again.best_score_ == second.best_score_
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        PerceptSearchCV(_pipe(), space, n_trials=4, load_if_exists=False, **kw).fit(X, y)


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
import optuna
sys.path.insert(0, {root!r})
from tests.model_selection._tune_heads import make_data, make_head
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skpercept.model_selection._search import PerceptSearchCV

hang = Path({hang!r})

def space(trial):
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    if trial.number == 2 and not hang.exists():  # the trial that gets killed
        hang.write_text("x")
        time.sleep(120)
    return {{"head__lr": lr}}

X, y = make_data(n=40)
pipe = Pipeline([("scale", StandardScaler()), ("head", make_head(max_epochs=3))])
PerceptSearchCV(pipe, space, cv=2, n_trials=4, storage={url!r}, study_name="k",
                random_state=0, refit=False, heartbeat_interval=1).fit(X, y)
"""


def test_kill9_mid_trial_resumes_without_losing_finished_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    hang = tmp_path / "hang"
    script = tmp_path / "run.py"
    script.write_text(
        _KILL_SCRIPT.format(root=str(Path(__file__).resolve().parents[2]), hang=str(hang), url=url)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not hang.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "subprocess never reached the third trial"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()

    study = optuna.load_study(study_name="k", storage=url)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "RUNNING"]
    finished = {t.number: t.value for t in study.trials[:2]}
    killed_lr = study.trials[2].params["lr"]
    time.sleep(2.5)  # the grace period (2 x heartbeat_interval) runs out

    search = PerceptSearchCV(
        Pipeline([("scale", StandardScaler()), ("head", make_head(max_epochs=3))]),
        _resume_space(hang),
        cv=2,
        n_trials=4,
        storage=url,
        study_name="k",
        random_state=0,
        refit=False,
        heartbeat_interval=1,
    )
    X, y = make_data(n=40)
    search.fit(X, y)
    trials = search.study_.trials
    assert {t.number: t.value for t in trials[:2]} == finished
    assert trials[2].state.name == "FAIL"
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 2]
    assert len(retried) == 1 and retried[0].params["lr"] == killed_lr
    assert retried[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4


def _resume_space(hang):
    def space(trial):
        return {"head__lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}

    return space


def test_failing_trial_is_recorded_and_search_continues():
    X, y = make_data(n=40)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="f", direction="maximize")
    for optimizer in ("bogus", "adamw", "bogus", "adamw"):
        study.enqueue_trial({"head__optimizer": optimizer})
    search = PerceptSearchCV(
        _pipe(),
        {"head__optimizer": ["adamw", "bogus"]},
        cv=2,
        n_trials=2,
        storage=storage,
        study_name="f",
    )
    search.fit(X, y)
    # n_trials counts finished trials; each fit makes at most n_trials attempts.
    assert search.n_failed_ == 1 and search.n_trials_ == 2
    search.set_params(n_trials=3).fit(X, y)
    assert [t.state.name for t in search.study_.trials] == ["FAIL", "COMPLETE", "FAIL", "COMPLETE"]
    assert "FAIL" in set(search.cv_results_["state"])
    assert search.best_params_ == {"head__optimizer": "adamw"}
    failed = next(t for t in search.study_.trials if t.state.name == "FAIL")
    bad_optimizer = "The 'optimizer' parameter of PairwiseRanker must be a str among"
    assert bad_optimizer in failed.user_attrs["fail_reason"]
    assert bad_optimizer in search.cv_results_["fail_reason"][0]

    strict = PerceptSearchCV(_pipe(optimizer="bogus"), {"head__lr": [0.01]}, cv=2, n_trials=2, catch=())
    with pytest.raises(ValueError, match="The 'optimizer' parameter of PairwiseRanker must be a str among"):
        strict.fit(X, y)


def test_all_trials_failing_raises_clear_error():
    X, y = make_data(n=40)
    search = PerceptSearchCV(_pipe(optimizer="bogus"), {"head__lr": [0.01]}, cv=2, n_trials=2)
    with pytest.raises(
        RuntimeError, match="no trial .* completed .*The 'optimizer' parameter of PairwiseRanker"
    ):
        search.fit(X, y)


def test_bad_parameters_raise():
    X, y = make_data(n=40)
    with pytest.raises(ValueError, match="The 'n_trials' parameter of PerceptSearchCV must be an int"):
        PerceptSearchCV(_pipe(), {}, n_trials=0).fit(X, y)
    with pytest.raises(TypeError, match="optuna distribution"):
        PerceptSearchCV(_pipe(), {"head__lr": 0.1}, n_trials=1, cv=2).fit(X, y)
    # One scorer only: a list of metrics is not a valid `scoring`.
    with pytest.raises(
        ValueError,
        match="The 'scoring' parameter of PerceptSearchCV must be an instance of 'str', a callable",
    ):
        PerceptSearchCV(_pipe(), {}, scoring=["accuracy", "f1"], n_trials=1).fit(X, y)
    with pytest.raises(TypeError, match="The 'pruning_folds' parameter of PerceptSearchCV"):
        PerceptSearchCV(_pipe(), {}, pruning_folds=2, n_trials=1).fit(X, y)


def test_non_skorch_final_step_trains_without_pruning():
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(n=40)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    search = PerceptSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=2, n_trials=2, random_state=0).fit(X, y)
    assert search.n_pruned_ == 0 and search.epochs_run_ == 0
    assert search.best_params_["clf__C"] in (0.1, 1.0)


def test_leak_free_pair_splitter_through_groups():
    from skpercept.model_selection import ImageDisjointSplit

    rng = np.random.RandomState(0)
    emb = rng.normal(size=(12, 3))
    a, b = np.triu_indices(12, 1)
    X = np.hstack([emb[a], emb[b]])  # pair layout: [left | right]
    y = (emb[a, 0] > emb[b, 0]).astype(int)
    search = PerceptSearchCV(
        _pipe(),
        {"head__lr": [0.03, 0.05]},
        cv=ImageDisjointSplit(n_splits=3, random_state=0),
        n_trials=2,
        random_state=0,
    ).fit(X, y, groups=np.c_[a, b])
    assert search.n_splits_ == 3
    assert not np.isnan(search.cv_results_["split2_test_score"]).any()
