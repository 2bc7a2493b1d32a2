"""Several worker processes sharing one Optuna study of :class:`skpercept.model_selection.PerceptSearchCV`.

Workers on one machine or many run the same search against one storage: a database URL (an
``RDBStorage``, e.g. PostgreSQL) or the path of a journal file on a shared filesystem (Optuna's
``JournalStorage``, no server needed). Three things make that safe:

* **Heartbeats.** A running trial records a heartbeat every ``heartbeat_interval`` seconds; a
  RUNNING trial silent for longer than the grace period belongs to a dead worker (``kill -9``,
  a lost machine) and is marked FAILED, then re-enqueued once with its parameters
  (``RetryHeartbeatStaleTrialCallback``, formerly ``RetryFailedTrialCallback``). ``RDBStorage``
  has heartbeats; ``JournalStorage`` has none in Optuna (optuna/optuna#6615), so
  :class:`HeartbeatJournalStorage` adds them as a trial system attribute in the journal.
* **A shared budget.** :func:`run_trial_budget` runs trials until the *study* holds ``n_trials``
  finished ones, counting trials that other workers are running as taken, and waits for those
  before returning, so the best model is refitted from the complete study.
* **Different draws per worker.** A seeded sampler restarted in every worker would replay the
  same random sequence in each; :class:`TrialSeededSampler` seeds every trial from
  ``(random_state, trial number)``, so one process is reproducible and workers, which get
  different trial numbers, explore different values.

Optuna is imported at the top: this module is only imported when a search is fitted.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

#: Trial system attribute holding the last heartbeat (Unix time) of a journal-stored trial.
HEARTBEAT_ATTR = "skpercept:heartbeat"

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _retry_callback() -> Callable:
    # Optuna >= 4.9 renamed the callback; the old name remains a deprecated alias.
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:  # pragma: no cover - optuna < 4.9
        cls = optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=1)


class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat of ``RDBStorage``.

    Each heartbeat appends one small record (a trial system attribute) to the journal, so a
    60-second interval adds one line per running trial and minute. Heartbeat times are the
    writing machine's clock: the machines sharing a journal need clocks that agree to well
    within the grace period (NTP does).

    Parameters
    ----------
    backend : optuna.storages.journal.BaseJournalBackend
        Where the journal lives, e.g. ``JournalFileBackend(path)``.
    heartbeat_interval : int
        Seconds between heartbeats of a running trial.
    grace_period : int or None, default=None
        Seconds without a heartbeat after which a running trial is stale; None means twice
        ``heartbeat_interval``.
    heartbeat_stale_trial_callback : callable or None, default=None
        Called with ``(study, frozen_trial)`` for each trial failed as stale, e.g.
        ``RetryHeartbeatStaleTrialCallback(max_retry=1)``.
    """

    def __init__(
        self,
        backend: Any,
        *,
        heartbeat_interval: int,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable | None = None,
    ) -> None:
        super().__init__(backend)
        if heartbeat_interval < 1 or (grace_period is not None and grace_period < 1):
            raise ValueError("heartbeat_interval and grace_period must be positive integers.")
        self.heartbeat_interval = int(heartbeat_interval)
        self.grace_period = int(grace_period or 2 * heartbeat_interval)
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker already failed it as stale; its own worker finds out on tell

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:
                continue  # never beat (heartbeats off in its worker): as RDBStorage, never stale
            # A retried trial inherits its dead original's system attributes, old heartbeat
            # included: its own start time counts as a beat until its first real one.
            start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            if now - max(float(beat), start) > self.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable | None:
        return self.heartbeat_stale_trial_callback

    def get_failed_trial_callback(self) -> Callable | None:  # the optuna < 4.9 name
        return self.heartbeat_stale_trial_callback


def make_storage(storage: Any, heartbeat_interval: int) -> Any:
    """Build the Optuna storage of a search.

    Parameters
    ----------
    storage : str, path-like, optuna storage or None
        A URL (``scheme://...``: ``sqlite:///study.db``, ``postgresql://user:pw@host/db``) is
        an ``RDBStorage``; any other string or path is a journal file (created if missing);
        a storage object and None are returned as given.
    heartbeat_interval : int
        Heartbeat of URL and journal storages; the grace period is twice as long.

    Returns
    -------
    storage : optuna storage or None
    """
    if storage is None or not isinstance(storage, (str, os.PathLike)):
        return storage
    with warnings.catch_warnings():
        # Heartbeats and the journal are "experimental" in Optuna; this is their intended use.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        hooks = dict(
            heartbeat_interval=int(heartbeat_interval),
            grace_period=2 * int(heartbeat_interval),
            heartbeat_stale_trial_callback=_retry_callback(),
        )
        if isinstance(storage, str) and "://" in storage:
            return _rdb_storage(storage, hooks)
        journal = optuna.storages.journal
        backend_cls = getattr(journal, "JournalFileBackend", None)
        if backend_cls is None:  # pragma: no cover - optuna < 4.0
            backend_cls = optuna.storages.JournalFileStorage
        return HeartbeatJournalStorage(backend_cls(os.fspath(storage)), **hooks)


def _rdb_storage(url: str, hooks: dict, attempts: int = 5) -> Any:
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **hooks)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers started together on an empty database race to create Optuna's tables
            # (PostgreSQL: duplicate type or table); the losers find them there next time.
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random draws are seeded per trial from ``(seed, trial number)``.

    Every trial gets its own ``TPESampler(seed=...)``, built when the trial starts and dropped
    when it ends (TPE keeps no state between trials beyond its random generator: it reads the
    history from the study). ``constant_liar`` keeps workers from proposing values next to
    trials still running elsewhere.

    Parameters
    ----------
    seed : int or None
        Base seed; None draws fresh seeds (no reproducibility).
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._per_trial: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _sampler(self, trial: FrozenTrial) -> Any:
        with self._lock:
            sampler = self._per_trial.get(trial.number)
            if sampler is None:
                seed = None
                if self.seed is not None:
                    seed = int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
                self._per_trial[trial.number] = sampler
            return sampler

    def infer_relative_search_space(self, study: Any, trial: FrozenTrial) -> dict:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: FrozenTrial, search_space: dict) -> dict:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: FrozenTrial, name: str, distribution: Any) -> Any:
        return self._sampler(trial).sample_independent(study, trial, name, distribution)

    def before_trial(self, study: Any, trial: FrozenTrial) -> None:
        self._sampler(trial).before_trial(study, trial)

    def after_trial(
        self, study: Any, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)
        with self._lock:
            self._per_trial.pop(trial.number, None)

    def reseed_rng(self) -> None:
        # Optuna reseeds samplers for n_jobs > 1; per-trial seeds already differ between threads.
        pass

    def __getstate__(self) -> dict:
        return {"seed": self.seed}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["seed"])

    def __repr__(self) -> str:
        return f"TrialSeededSampler(seed={self.seed!r})"


def run_trial_budget(
    study: Any,
    objective: Callable,
    *,
    n_trials: int,
    timeout: float | None,
    n_jobs: int,
    catch: tuple,
    prepare: Callable | None = None,
) -> None:
    """Run trials until ``study`` holds ``n_trials`` finished (complete or pruned) ones.

    Other workers may be running the same study. With heartbeats on, trials they are running
    count as taken (so k workers do not overshoot the budget by k - 1 trials), and once every
    remaining slot is taken this worker waits for those trials, failing the stale ones of dead
    workers (whose retries it then runs), until the study is complete. This process makes at
    most ``n_trials`` minus the finished trials at its start attempts, so trials that keep
    failing cannot loop forever; ``timeout`` bounds the whole call. Every worker of a study
    needs heartbeats (``make_storage`` turns them on): a RUNNING trial that never beats is
    never stale, so a killed worker without them is waited for until ``timeout``.

    Threads (``n_jobs`` > 1) of a study no other worker shares run in rounds
    (:func:`_run_rounds`): each round's trials draw their parameters (``prepare``) one after
    another before any of them starts, so a seeded sampler gives the same trials every time.
    """
    heartbeat = is_heartbeat_enabled(study._storage)
    n_threads = _threads(n_jobs)
    if n_threads > 1 and not heartbeat:
        _run_rounds(
            study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            n_threads=n_threads,
            catch=catch,
            prepare=prepare,
        )
        return
    taken = _FINISHED + (TrialState.RUNNING,) if heartbeat else _FINISHED
    deadline = None if timeout is None else time.monotonic() + timeout
    poll = min(float(study._storage.get_heartbeat_interval()), 2.0) if heartbeat else 0.0

    def count(states: tuple) -> int:
        return len(study.get_trials(deepcopy=False, states=states))

    attempts = [0]

    def counted(study: Any, trial: FrozenTrial) -> None:
        attempts[0] += 1

    budget = n_trials - count(_FINISHED)
    stop = optuna.study.MaxTrialsCallback(n_trials, states=taken)
    while attempts[0] < budget:
        if heartbeat:
            _fail_stale_trials(study)
        if count(_FINISHED) >= n_trials:
            return
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        free = n_trials - count(taken)
        if free > 0:
            study.optimize(
                objective,
                n_trials=min(free, budget - attempts[0]),
                timeout=left,
                n_jobs=n_jobs,
                catch=catch,
                callbacks=[stop, counted],
            )
        elif heartbeat:
            time.sleep(poll if left is None else max(0.0, min(poll, left)))
        else:
            return


def _threads(n_jobs: int) -> int:
    """Optuna's reading of ``n_jobs``: -1 (or any value below 1) is one thread per CPU."""
    return int(n_jobs) if n_jobs > 0 else (os.cpu_count() or 1)


def _run_rounds(
    study: Any,
    objective: Callable,
    *,
    n_trials: int,
    timeout: float | None,
    n_threads: int,
    catch: tuple,
    prepare: Callable | None,
) -> None:
    """Run trials ``n_threads`` at a time, in rounds whose outcome does not depend on timing.

    With ``study.optimize(n_jobs=k)`` each thread asks for its next trial when its last one
    ends, so what the sampler has seen, and what it proposes, depends on which trial finished
    first; so does what the pruner compares against. Here a round's trials are asked for and
    ``prepare``-d (their parameters drawn) in trial order in this thread; then they train in
    parallel; then each is told its result in trial order. A trial's parameters depend only on
    the rounds before it and the trials asked before it in its round (running ones, as
    ``constant_liar`` sees them); the pruner compares with complete trials, all from earlier
    rounds. A round waits for its slowest trial.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    deadline = None if timeout is None else time.monotonic() + timeout
    budget = n_trials - len(study.get_trials(deepcopy=False, states=_FINISHED))
    attempts = 0
    with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="skpercept-trial") as pool:
        while attempts < budget and (deadline is None or time.monotonic() < deadline):
            trials = []
            for _ in range(min(n_threads, budget - attempts)):
                trial = study.ask()
                trials.append(trial)
                if prepare is not None:
                    try:
                        prepare(trial)
                    except Exception:
                        for asked in trials:
                            study.tell(asked, state=TrialState.FAIL)
                        raise
            attempts += len(trials)
            futures = [pool.submit(objective, trial) for trial in trials]
            wait(futures)  # told only once all have ended: a told trial is one the pruner reads
            error = None
            for trial, future in zip(trials, futures):
                exc = future.exception()
                if exc is None:
                    study.tell(trial, future.result())
                elif isinstance(exc, optuna.TrialPruned):
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, state=TrialState.FAIL)
                    if isinstance(exc, catch):
                        optuna.logging.get_logger("optuna").warning(
                            f"Trial {trial.number} failed with {type(exc).__name__}: {exc}"
                        )
                    elif error is None:
                        error = exc
            if error is not None:
                raise error


def _fail_stale_trials(study: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
