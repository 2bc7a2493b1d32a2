"""Several worker processes sharing one PerceptSearchCV study: journal file, SQLite, PostgreSQL.

Workers are subprocesses running ``tests/model_selection/_tune_heads.py``. The PostgreSQL cases need a server:
``.ci/run`` starts one and exports ``SKPERCEPT_TEST_POSTGRES_URL``
(``postgresql+psycopg://user:password@host:port/database``); without it they are skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skpercept.model_selection._search import PerceptSearchCV
from skpercept.model_selection._workers import HEARTBEAT_ATTR, HeartbeatJournalStorage, make_storage
from tests.model_selection._tune_heads import lr_space, make_data, make_head

optuna.logging.set_verbosity(optuna.logging.WARNING)
WORKER = str(Path(__file__).with_name("_tune_heads.py"))
POSTGRES_ENV = "SKPERCEPT_TEST_POSTGRES_URL"
# Generous bounds: the machine running the tests may be busy (2 shared cores).
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 300


def _storage(kind: str, tmp_path: Path) -> str:
    if kind == "journal":
        return str(tmp_path / "study.log")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run starts one)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install skpercept[postgres]")
    return url


def _worker(storage: str, study: str, n_trials: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, WORKER, "--storage", storage, "--study-name", study, "--n-trials", str(n_trials)]
    return subprocess.Popen(
        [*cmd, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"worker {proc.pid} did not finish within {RUN_TIMEOUT_S} s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _search(storage: str, study: str, n_trials: int, **kw) -> PerceptSearchCV:
    pipe = Pipeline([("scale", StandardScaler()), ("head", make_head(max_epochs=3))])
    return PerceptSearchCV(
        pipe,
        lr_space,
        cv=2,
        n_trials=n_trials,
        storage=storage,
        study_name=study,
        random_state=0,
        heartbeat_interval=1,
        **kw,
    )


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_two_workers_share_one_study_then_refit_once(kind, tmp_path):
    storage, study, n_trials = _storage(kind, tmp_path), f"two-{uuid.uuid4().hex[:8]}", 8
    ready = tmp_path / "ready"
    ready.mkdir()
    common = ("--ready-dir", str(ready), "--n-workers", "2", "--trial-sleep", "0.3")
    # A heartbeat of 10 s: no live trial may look stale on a busy machine.
    procs = [_worker(storage, study, n_trials, *common, "--heartbeat-interval", "10") for _ in range(2)]
    results = [_result(proc) for proc in procs]
    assert not any(r["refit"] for r in results), "workers run with refit=False"

    trials = optuna.load_study(study_name=study, storage=make_storage(storage, 10)).trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), "duplicate or missing trial numbers"
    states = [t.state.name for t in trials]
    assert set(states) <= {"COMPLETE", "PRUNED"}, states
    # Trials running in the other worker count as taken: the budget is met, at most one over
    # when both workers finish a trial at the same instant.
    assert n_trials <= len(trials) <= n_trials + 1
    workers = {t.user_attrs["worker"] for t in trials}
    assert workers == {r["pid"] for r in results}, "both workers ran trials"
    lrs = [t.params["lr"] for t in trials]
    assert len(set(lrs)) == len(lrs), "workers replayed the same random draws"

    # The best model is refitted once, from the complete study, by a fit that runs no trial.
    X, y = make_data(n=40)
    final = _search(storage, study, n_trials).fit(X, y)
    assert final.n_trials_ == len(trials)
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert final.best_params_ == {"head__lr": best.params["lr"]}
    assert final.best_estimator_.predict(X).shape == (len(X),)


@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
def test_killed_worker_trial_is_failed_retried_and_the_study_completes(kind, tmp_path):
    storage, study, n_trials = _storage(kind, tmp_path), f"kill-{uuid.uuid4().hex[:8]}", 4
    hang = tmp_path / "hang"
    victim = _worker(storage, study, n_trials, "--hang-marker", str(hang))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not hang.exists():
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the worker never started a trial"
        time.sleep(0.1)
    time.sleep(0.5)  # its heartbeat thread has written
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    killed = int(hang.read_text())
    shared = make_storage(storage, 1)
    (trial,) = optuna.load_study(study_name=study, storage=shared).trials
    assert (trial.number, trial.state.name) == (killed, "RUNNING")

    # A surviving worker (this process) fails the silent trial after the grace period, runs
    # its retry and completes the study; nothing is left RUNNING.
    X, y = make_data(n=40)
    search = _search(storage, study, n_trials, refit=False).fit(X, y)
    trials = search.study_.trials
    assert trials[killed].state.name == "FAIL"
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == trial.params
    states = [t.state.name for t in trials]
    assert len(states) == n_trials + 1 and states.count("FAIL") == 1, states
    assert search.n_failed_ == 1 and np.isnan(search.cv_results_["mean_test_score"][killed])


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_journal_heartbeat_marks_only_silent_trials_stale(tmp_path):
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
    storage = HeartbeatJournalStorage(backend, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="hb")
    beating, silent, never = study.ask(), study.ask(), study.ask()
    assert storage.get_heartbeat_interval() == 1 and storage.get_heartbeat_stale_trial_callback() is None
    old = time.time() - 10
    storage.set_trial_system_attr(silent._trial_id, HEARTBEAT_ATTR, old)
    storage.record_heartbeat(beating._trial_id)
    # A just-started trial that inherited an old heartbeat (a retry) is not stale yet.
    assert storage._get_stale_trial_ids(study._study_id) == []
    time.sleep(2.5)
    storage.record_heartbeat(beating._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == [silent._trial_id]
    study.tell(never, 1.0)
    storage.record_heartbeat(never._trial_id)  # finished: ignored, not an error
    with pytest.raises(ValueError, match="positive"):
        HeartbeatJournalStorage(backend, heartbeat_interval=0)


def test_storage_strings_and_per_trial_seeds(tmp_path):
    assert isinstance(make_storage(str(tmp_path / "a.log"), 5), HeartbeatJournalStorage)
    assert isinstance(make_storage(tmp_path / "b.log", 5), HeartbeatJournalStorage)
    rdb = make_storage(f"sqlite:///{tmp_path / 'c.db'}", 5)
    assert isinstance(rdb, optuna.storages.RDBStorage) and rdb.heartbeat_interval == 5
    assert rdb.grace_period == 10 and make_storage(None, 5) is None

    X, y = make_data(n=40)
    first = _search(None, None, 3, refit=False).fit(X, y)
    again = _search(None, None, 3, refit=False).fit(X, y)
    lrs = [t.params["lr"] for t in first.study_.trials]
    assert lrs == [t.params["lr"] for t in again.study_.trials], "one process is reproducible"
    assert len(set(lrs)) == 3
    # A path (not a URL) is a journal file, accepted as a str or a path object.
    journal = _search(tmp_path / "d.log", "d", 2, refit=False).fit(X, y)
    assert journal.n_trials_ == 2 and (tmp_path / "d.log").stat().st_size > 0
    assert isinstance(journal.study_._storage, HeartbeatJournalStorage)
