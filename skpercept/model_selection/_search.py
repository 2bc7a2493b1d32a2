"""Optuna hyperparameter search over whole Pipelines, with epoch-level pruning.

:class:`PerceptSearchCV` has the scikit-learn search API (``fit``, ``best_params_``,
``best_score_``, ``best_estimator_``, ``cv_results_``) and runs an Optuna study underneath
(``study_``). It tunes any estimator, but its point is a :class:`~sklearn.pipeline.Pipeline`
whose final step is a skpercept skorch head (``PairwiseRanker``, ``RatingClassifier``, ...):
Optuna's own ``OptunaSearchCV`` can only prune estimators with ``partial_fit``, which a Pipeline
does not have.

How a trial is evaluated
------------------------
For every fold of ``cv`` the Pipeline's preprocessing steps (``pipeline[:-1]``) are fitted on the
training part and used to transform both parts; the head is then fitted with an extra skorch
callback that, after every epoch, scores the head on the *transformed validation fold of the
cross-validation* with ``scoring``. The trial's value is the mean score over folds; the per-fold
scores, their standard deviation and the epochs trained are stored as trial user attributes,
so the noise between folds is visible next to every mean (``cv_results_``, optuna-dashboard).

Pruning: every epoch's score is reported to Optuna with ``trial.report(score, step)`` and
the pruner (a ``PercentilePruner`` keeping the best 40 % by default) may stop the trial there. Optuna keeps one value per
step and compares trials step by step, while folds are trained one after another, so the step
must name the same (fold, epoch) in every trial: ``step = fold * 1000 + epoch`` (epochs
1-based, so fold 0 uses steps 1..999 and fold 2 steps 2001..). The stride is a constant, not
``max_epochs``, so steps stay comparable when ``max_epochs`` is tuned or early stopping ends
folds at different epochs. Averaging folds before reporting would need every fold trained
first, which is what pruning avoids (optuna/optuna#4373, #3203). With
``pruning_folds='first'`` only fold 0 is reported (``step = epoch``), the scheme Optuna's
LightGBM/XGBoost callbacks end up with: a pruned trial costs at most one fold, but a trial that
survives fold 0 trains every fold. Reporting all folds (the default) also stops trials that
looked fine on fold 0 by luck and fall behind on later folds; each fold is compared with the
same fold of earlier trials, so fold difficulty does not bias the decision.

Selection never touches a held-out test set
-------------------------------------------
Tune on the training part only and score the refitted best model once on a test set that the
search has never seen::

    outer = ImageDisjointSplit(...)           # or any splitter that keeps images apart
    train, test = next(outer.split(X, y, groups))
    search = PerceptSearchCV(pipe, space, cv=inner_cv).fit(X_train, y_train, groups=g_train)
    final = scorer(search.best_estimator_, X_test, y_test)   # reported once, never tuned on

``best_score_`` is a cross-validation estimate on the training folds and is optimistically
biased by the selection itself; only the test score is an unbiased estimate.

Storage, resuming and several workers
-------------------------------------
``storage=None`` keeps the study in memory. A URL (``"sqlite:///study.db"``,
``"postgresql://user:password@host/db"``) keeps it in a database, any other string or path in
an Optuna journal file (``"/shared/study.log"``: no server, for a filesystem that several
machines mount); with a ``study_name`` and ``load_if_exists=True`` a second ``fit`` continues
the same study. ``n_trials`` is the study's *total* budget of finished (complete or pruned)
trials, so re-running a script after it was killed only runs the trials that are missing, and
re-running a finished study only refits the best model.

Several processes, on one machine or many, can ``fit`` the same search with the same storage
and ``study_name`` at once: they share the budget (trials running in other workers count as
taken), and each returns only when the study holds ``n_trials`` finished trials. Run the
workers with ``refit=False`` and refit once, at the end, from the complete study (one more
``fit`` with ``refit=True``; it runs no trial). A database is the choice for many workers
(PostgreSQL or MySQL, ``pip install skpercept[postgres]`` for the driver; SQLite does not
take concurrent writers well); a journal file needs only a shared filesystem. With a
``random_state``, the default sampler seeds each trial from ``(random_state, trial number)``:
one process is reproducible, and workers draw different values instead of replaying one
random sequence each.

A process killed mid-trial (``kill -9``, a lost machine) leaves that trial RUNNING in storage;
for URL and journal storages this class turns on Optuna's heartbeat (``heartbeat_interval``
seconds, grace period twice that; Optuna's journal storage has none, so
``skpercept.model_selection._workers.HeartbeatJournalStorage`` adds it): once the grace period has passed,
any worker of the study (or the next ``fit``) marks the dead trial FAILED and re-enqueues its
parameters once (``RetryHeartbeatStaleTrialCallback``, formerly ``RetryFailedTrialCallback``),
so no finished trial is lost and the interrupted configuration is tried again. Heartbeats
rather than "fail everything RUNNING on resume" keep workers sharing one study safe. Pass a
``BaseStorage`` object instead of a URL or path to configure storage yourself. Use a
deterministic ``cv`` (an int, or a splitter with a fixed ``random_state``) when resuming or
with several workers, so that every trial is scored on the same folds.
"""

from __future__ import annotations

import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from sklearn import get_config
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import get_tags
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable
from skorch.callbacks import Callback

from skpercept._compat import HasMethods, Interval, StrOptions, fit_context, safe_indexing
from skpercept._utils import SavedFormatMixin
from skpercept.model_selection._pruner import FOLD_STEP_STRIDE
from skpercept.model_selection._study import (
    catch_as_data,
    catch_from_data,
    cv_results,
    fold_local_pruner,
    fold_params,
    jsonable,
    optuna_verbosity,
    scoring_name,
    space_as_data,
    space_from_data,
    split_pipeline,
    step_params,
    study_as_data,
    study_from_data,
    suggest_one,
)
from skpercept.model_selection._workers import TrialSeededSampler, make_storage, run_trial_budget

_PRUNING_CB_NAME = "skpercept_pruning"


class TrialPruningCallback(Callback):
    """skorch callback: score the head on a validation fold each epoch and let Optuna prune.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The running trial.
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.
    estimator : estimator
        The head being fitted; scored mid-training through its own ``predict`` methods.
    X_valid, y_valid : array-like
        The validation fold, already transformed by the Pipeline's preprocessing steps.
    report : bool, default=True
        Whether to report scores to the trial and check ``trial.should_prune()``. When False
        the callback only counts epochs.
    step_offset : int, default=0
        Added to the (1-based) epoch to form the reported step, e.g. ``fold * 1000``.

    Attributes
    ----------
    n_epochs_ : int
        Epochs seen so far.
    scores_ : list of float
        The per-epoch validation scores (only when ``report``).

    Examples
    --------
    :class:`PerceptSearchCV` adds one to the head of every fold; by hand, for one trial:

    >>> import numpy as np, optuna
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.metrics import spearman_rho_scorer
    >>> from skpercept.model_selection import TrialPruningCallback
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)).astype(np.float32)
    >>> y = 50 + 10 * X[:, 0]
    >>> study = optuna.create_study(direction="maximize")
    >>> trial = study.ask()
    >>> head = RatingRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0)
    >>> callback = TrialPruningCallback(trial, spearman_rho_scorer, head, X[40:], y[40:])
    >>> head = head.set_params(callbacks=[("prune", callback)]).fit(X[:40], y[:40])
    >>> callback.n_epochs_, sorted(study.trials[0].intermediate_values)  # one step per epoch
    (3, [1, 2, 3])

    A pruner that stops every trial stops the fit after its first epoch:

    >>> pruner = optuna.pruners.ThresholdPruner(lower=2.0)  # no Spearman ρ reaches 2
    >>> trial = optuna.create_study(direction="maximize", pruner=pruner).ask()
    >>> head = RatingRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0)
    >>> callback = TrialPruningCallback(trial, spearman_rho_scorer, head, X[40:], y[40:])
    >>> head.set_params(callbacks=[("prune", callback)]).fit(X[:40], y[:40])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    optuna.exceptions.TrialPruned: pruned at step 1 (epoch 1, score ...)
    """

    def __init__(
        self,
        trial: Any,
        scorer: Callable,
        estimator: Any,
        X_valid: Any,
        y_valid: Any,
        report: bool = True,
        step_offset: int = 0,
    ) -> None:
        self.trial = trial
        self.scorer = scorer
        self.estimator = estimator
        self.X_valid = X_valid
        self.y_valid = y_valid
        self.report = report
        self.step_offset = step_offset

    def initialize(self) -> TrialPruningCallback:
        self.n_epochs_ = 0
        self.scores_ = []
        return self

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        self.n_epochs_ += 1
        if not self.report:
            return

        try:
            score = float(self.scorer(self.estimator, self.X_valid, self.y_valid))
        except NotFittedError as exc:
            raise RuntimeError(
                f"{type(self.estimator).__name__} cannot predict while it is training, so its "
                "per-epoch validation score cannot be computed for pruning. Use a skpercept "
                "head, or pass a pruner=optuna.pruners.NopPruner()."
            ) from exc
        self.scores_.append(score)
        epoch = len(net.history)
        if epoch >= FOLD_STEP_STRIDE:
            return  # a longer fold would collide with the next fold's steps
        self.trial.report(score, step=self.step_offset + epoch)
        if self.trial.should_prune():
            # skorch only swallows KeyboardInterrupt in fit, so this reaches the objective.
            raise optuna.TrialPruned(
                f"pruned at step {self.step_offset + epoch} (epoch {epoch}, score {score:.4f})"
            )


class PerceptSearchCV(SavedFormatMixin, MetaEstimatorMixin, BaseEstimator):
    """Optuna search over a Pipeline ending in a skorch head, pruning bad trials per epoch.

    Parameters
    ----------
    estimator : estimator
        Usually a Pipeline whose last step is a skpercept head with a ``callbacks`` parameter;
        any estimator works, but only such heads can be pruned (others train to the end).
    param_distributions : dict or callable
        Either ``{param_name: optuna distribution or list of choices}`` with sklearn names
        (``"head__lr"``), or a function ``f(trial) -> dict`` that calls ``trial.suggest_*`` and
        returns the parameters to set (values may be any objects, e.g. derived from several
        suggestions).
    cv : int, cross-validation generator or iterable, default=5
        Splitter for the trials, e.g. a leak-free ``ImageDisjointSplit``; its ``groups`` come
        from ``fit(..., groups=...)``. The splits are drawn once per ``fit`` and shared by all
        trials.
    scoring : str, callable or None, default=None
        One sklearn scorer (greater is better); None uses the estimator's ``score``.
    n_trials : int, default=20
        Total number of finished (complete + pruned) trials the study should hold; a resumed
        study only runs the missing ones, and workers sharing the study share it. Failed
        trials do not count but each ``fit`` makes at most ``n_trials`` attempts.
    timeout : float or None, default=None
        Stop starting new trials (and waiting for other workers' trials) after this many
        seconds of this ``fit``.
    storage : str, path-like, optuna storage or None, default=None
        None: in memory. A URL (``"sqlite:///study.db"``, ``"postgresql://..."``) is a
        database, any other string or path a journal file; both get heartbeats and can be
        shared by several worker processes (see the module docstring). A storage object is
        used as given.
    study_name : str or None, default=None
        Name of the study in ``storage``; needed to resume.
    load_if_exists : bool, default=True
        Continue an existing study of the same name instead of failing.
    pruner : optuna pruner or None, default=None
        None means ``PercentilePruner(40.0, n_startup_trials=5, n_warmup_steps=1)``: once 5
        trials have completed, a trial whose best score so far on the fold it is training is
        below the best 40 % of the completed trials' scores at the same epoch of that fold is
        stopped, as early as after its first epoch (epochs are reported from step 1, so the
        one warm-up step exempts none of them). The heads reach their best held-out score
        within a few epochs, so the first epochs already sort trials; on OMI
        (``examples/optuna_study.py --compare``, 20 trials) this trains 41 % of the unpruned
        study's epochs, best score 0.814 against the unpruned study's 0.820, where a median
        pruner with 3 warm-up epochs trained 57 %. Pass
        ``optuna.pruners.NopPruner()`` to train every trial to the end.
    pruning_folds : {'all', 'first'}, default='all'
        Which folds report per-epoch scores (see the module docstring for the steps). With
        ``'all'`` the pruner judges a trial on its current fold's scores only, against the same
        fold of other trials (the pruner is wrapped; its own settings are kept).
    sampler : optuna sampler or None, default=None
        None means TPE (``constant_liar=True``) seeded per trial from ``random_state`` and the
        trial number, so that workers sharing a study draw different values.
    random_state : int or None, default=None
        Seed of the default sampler.
    refit : bool, default=True
        Refit the best parameters on all of ``X`` (``best_estimator_``, ``predict``, ...).
        Workers of a shared study use False; one final ``fit`` refits from the whole study.
    catch : tuple of exception types, default=(Exception,)
        Exceptions raised by a trial that mark it FAILED and let the search continue. Use
        ``()`` to stop at the first error (the trial is still recorded as FAILED).
    n_jobs : int, default=1
        Trials run in this many threads (-1: one per CPU). Unless other workers share the
        study, they run in rounds of ``n_jobs``: a round's parameters are drawn in trial order
        before its trials start, and results are recorded in trial order, so a seeded search
        (``random_state``, seeded estimator) gives the same trials every time; a round waits
        for its slowest trial.
    heartbeat_interval : int, default=60
        Seconds between heartbeats of a running trial when ``storage`` is a URL or a journal
        path; a trial silent for twice this long is considered dead (killed worker) and is
        retried once. Every worker of a study should use the same value.
    verbose : int, default=0
        0 shows Optuna warnings only, 1 logs every trial.

    Attributes
    ----------
    study_ : optuna.study.Study
        The study (all trials, including those of earlier sessions).
    best_params_ : dict
        Parameters of the best complete trial, as sklearn parameter names.
    best_score_ : float
        Its mean cross-validation score.
    best_index_ : int
        Its row in ``cv_results_``.
    best_estimator_ : estimator
        ``estimator`` refitted on all data with ``best_params_`` (when ``refit``).
    cv_results_ : dict of arrays
        One row per trial: ``number``, ``state``, ``params``, ``param_<name>``,
        ``split<k>_test_score``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``n_epochs``, ``duration_s``. Pruned and failed trials have NaN scores for the folds
        they did not finish.
    n_trials_, n_pruned_, n_failed_ : int
        Trials in the study, and how many were pruned / failed.
    epochs_run_ : int
        Epochs trained by all trials of the study (all folds), excluding the refit.
    n_splits_ : int
        Number of cross-validation folds.
    refit_time_ : float
        Seconds spent refitting the best model.
    scorer_ : callable
        The scorer used.

    Examples
    --------
    >>> import optuna
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skpercept.model_selection import PerceptSearchCV
    >>> X, y = make_classification(n_samples=60, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), LogisticRegression())
    >>> space = {"logisticregression__C": optuna.distributions.FloatDistribution(1e-3, 1e2, log=True)}
    >>> search = PerceptSearchCV(pipe, space, cv=3, n_trials=4, random_state=0).fit(X, y)
    >>> search.n_trials_, len(search.cv_results_["mean_test_score"])
    (4, 4)
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [Mapping, callable],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "n_trials": [Interval(numbers.Integral, 1, None, closed="left")],
        "timeout": [Interval(numbers.Real, 0, None, closed="neither"), None],
        # An optuna storage URL or object (duck-typed: optuna is imported only when fitting).
        "storage": [str, os.PathLike, HasMethods(["create_new_study", "get_all_trials"]), None],
        "study_name": [str, None],
        "load_if_exists": ["boolean"],
        "pruner": [HasMethods(["prune"]), None],
        "sampler": [HasMethods(["sample_relative", "sample_independent"]), None],
        "random_state": [Interval(numbers.Integral, 0, 2**32 - 1, closed="both"), None],
        "refit": ["boolean"],
        "catch": [tuple],
        "n_jobs": [numbers.Integral],
        "pruning_folds": [StrOptions({"all", "first"})],
        "heartbeat_interval": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any] | Callable[[Any], dict],
        *,
        cv: Any = 5,
        scoring: Any = None,
        n_trials: int = 20,
        timeout: float | None = None,
        storage: Any = None,
        study_name: str | None = None,
        load_if_exists: bool = True,
        pruner: Any = None,
        sampler: Any = None,
        random_state: int | None = None,
        refit: bool = True,
        catch: tuple[type[BaseException], ...] = (Exception,),
        n_jobs: int = 1,
        pruning_folds: str = "all",
        heartbeat_interval: int = 60,
        verbose: int = 0,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.cv = cv
        self.scoring = scoring
        self.n_trials = n_trials
        self.timeout = timeout
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists
        self.pruner = pruner
        self.sampler = sampler
        self.random_state = random_state
        self.refit = refit
        self.catch = catch
        self.n_jobs = n_jobs
        self.pruning_folds = pruning_folds
        self.heartbeat_interval = heartbeat_interval
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    # The trials' estimators validate their own parameters (a bad value fails its trial).
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None, groups: Any = None, **params: Any) -> PerceptSearchCV:
        """Run (or resume) the study, then refit the best parameters on all data.

        Parameters
        ----------
        X : array-like or DataFrame
            Training data (never the held-out test set).
        y : array-like, optional
            Targets.
        groups : array-like, optional
            Group labels for group-aware splitters. With metadata routing enabled
            (``sklearn.set_config(enable_metadata_routing=True)``) they go where they are
            requested: to ``cv`` (``set_split_request(groups=True)`` for splitters that do not
            request them already) and to the estimator's steps (e.g. a head's item hold-out,
            ``set_fit_request(groups=True)``), split by fold like every per-row parameter.
        **params : dict
            Further fit parameters. With metadata routing they are routed as above; without
            it they go to the estimator's ``fit`` (``step__param`` names for a Pipeline), as
            in scikit-learn's searches.

        Returns
        -------
        self : PerceptSearchCV
        """
        self._check_search_space()
        X, y, groups = indexable(X, y, groups)
        if get_config()["enable_metadata_routing"]:
            metadata = {} if groups is None else {"groups": groups}
            routed = process_routing(self, "fit", **metadata, **params)
            split_params, fit_params = routed.splitter.split, routed.estimator.fit
        else:
            split_params, fit_params = {"groups": groups}, params
        self.scorer_ = self._make_scorer()
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, **split_params))
        self.n_splits_ = len(splits)

        with optuna_verbosity(optuna, self.verbose):
            study = optuna.create_study(
                storage=make_storage(self.storage, self.heartbeat_interval),
                sampler=self.sampler or TrialSeededSampler(self.random_state),
                pruner=self._make_pruner(optuna),
                study_name=self.study_name,
                direction="maximize",
                load_if_exists=self.load_if_exists,
            )
            self._check_study(study)
            run_trial_budget(
                study,
                lambda trial: self._objective(trial, X, y, splits, fit_params),
                n_trials=self.n_trials,
                timeout=self.timeout,
                n_jobs=self.n_jobs,
                catch=tuple(self.catch),
                prepare=self._suggest,
            )
        self.study_ = study
        self._collect_results(optuna)
        if self.refit:
            start = time.perf_counter()
            best = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_ = best.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
        return self

    def get_metadata_routing(self) -> MetadataRouter:
        """Routing of fit metadata (e.g. ``groups``) to ``estimator`` and ``cv``.

        Returns
        -------
        routing : MetadataRouter
        """
        return (
            MetadataRouter(owner=type(self).__name__)
            .add(estimator=self.estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit"))
            .add(
                splitter=check_cv(self.cv),
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        )

    def _check_search_space(self) -> None:
        # The constraints check that param_distributions is a dict or a callable; the entries
        # of a dict are checked here.
        if callable(self.param_distributions):
            return

        for name, dist in self.param_distributions.items():
            if not isinstance(dist, (list, tuple, BaseDistribution)):
                raise TypeError(
                    f"search space entry {name!r} must be an optuna distribution or a list "
                    f"of choices, got {dist!r}."
                )

    def _make_pruner(self, optuna: Any) -> Any:
        pruner = self.pruner or optuna.pruners.PercentilePruner(40.0, n_startup_trials=5, n_warmup_steps=1)
        if self.pruning_folds == "all":
            return fold_local_pruner(pruner)
        return pruner

    def _make_scorer(self) -> Callable:
        return check_scoring(self.estimator, scoring=self.scoring)

    def _check_study(self, study: Any) -> None:
        if len(study.directions) != 1 or study.direction.name != "MAXIMIZE":
            raise ValueError(
                f"study {study.study_name!r} in storage is not a single-objective maximization "
                "study; PerceptSearchCV maximizes a scorer. Use another study_name."
            )
        setup = {
            "n_splits": self.n_splits_,
            "scoring": scoring_name(self.scoring),
            "pruning_folds": self.pruning_folds,
        }
        previous = study.user_attrs.get("skpercept_cv")
        if previous is None:
            study.set_user_attr("skpercept_cv", setup)
        elif previous != setup:
            warnings.warn(
                f"resuming study {study.study_name!r} created with {previous}, now {setup}: "
                "scores of old and new trials are not comparable.",
                UserWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------ one trial
    def _suggest(self, trial: Any) -> dict:
        space = self.param_distributions
        if callable(space):
            params = space(trial)
            if not isinstance(params, Mapping):
                raise TypeError(f"the search-space callable must return a dict, got {params!r}.")
            return dict(params)
        return {name: suggest_one(trial, name, dist) for name, dist in space.items()}

    def _objective(self, trial: Any, X: Any, y: Any, splits: list, fit_params: dict) -> float:
        scores: list[float] = []
        epoch_log: list = []  # per fold: an int, or the live callback of a fold being trained
        try:
            params = self._suggest(trial)
            trial.set_user_attr("params", jsonable(params))
            estimator = clone(self.estimator).set_params(**params)
            for fold, (train, valid) in enumerate(splits):
                n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
                this_fold = fold_params(fit_params, train, n_rows)
                score = self._fit_fold(trial, estimator, X, y, train, valid, fold, epoch_log, this_fold)
                scores.append(score)
                trial.set_user_attr(f"split{fold}_test_score", score)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            # Kept in storage so that a failed trial explains itself in cv_results_ / dashboard.
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:1000])
            raise
        finally:
            # Also for pruned and failed trials: the epochs they cost are what pruning saves.
            n_epochs = sum(e if isinstance(e, int) else getattr(e, "n_epochs_", 0) for e in epoch_log)
            trial.set_user_attr("n_epochs", int(n_epochs))
        mean, std = float(np.mean(scores)), float(np.std(scores))
        trial.set_user_attr("mean_test_score", mean)
        trial.set_user_attr("std_test_score", std)
        return mean

    def _fit_fold(
        self,
        trial: Any,
        estimator: Any,
        X: Any,
        y: Any,
        train: Any,
        valid: Any,
        fold: int,
        epoch_log: list,
        fit_params: dict,
    ) -> float:
        estimator = clone(estimator)
        prefix, head = split_pipeline(estimator)
        prefix_params, head_params = step_params(estimator, fit_params)
        X_train, X_valid = safe_indexing(X, train), safe_indexing(X, valid)
        y_train = None if y is None else safe_indexing(y, train)
        y_valid = None if y is None else safe_indexing(y, valid)
        if prefix is not None:
            X_train = prefix.fit_transform(X_train, y_train, **prefix_params)
            X_valid = prefix.transform(X_valid)
        if "callbacks" in head.get_params(deep=False):
            callback = TrialPruningCallback(
                trial,
                self.scorer_,
                head,
                X_valid,
                y_valid,
                report=fold == 0 or self.pruning_folds == "all",
                step_offset=fold * FOLD_STEP_STRIDE,
            )
            user_callbacks = list(head.get_params(deep=False)["callbacks"] or [])
            head.set_params(callbacks=user_callbacks + [(_PRUNING_CB_NAME, callback)])
            epoch_log.append(callback)
            head.fit(X_train, y_train, **head_params)
        else:
            head.fit(X_train, y_train, **head_params)
            history = getattr(getattr(head, "net_", None), "history", None)
            epoch_log.append(len(history) if history is not None else 0)
        return float(self.scorer_(head, X_valid, y_valid))

    # -------------------------------------------------------------- results
    def _collect_results(self, optuna: Any) -> None:
        states = optuna.trial.TrialState
        # Enqueued trials that have not started yet are not results.
        trials = [t for t in self.study_.get_trials(deepcopy=False) if t.state != states.WAITING]
        trials.sort(key=lambda t: t.number)
        complete = [t for t in trials if t.state == states.COMPLETE]
        self.n_trials_ = len(trials)
        self.n_pruned_ = sum(t.state == states.PRUNED for t in trials)
        self.n_failed_ = sum(t.state == states.FAIL for t in trials)
        self.epochs_run_ = int(sum(t.user_attrs.get("n_epochs", 0) for t in trials))
        self.cv_results_ = cv_results(trials, self.n_splits_, states)
        if not complete:
            reasons = {t.user_attrs.get("fail_reason") for t in trials} - {None}
            raise RuntimeError(
                f"no trial of study {self.study_.study_name!r} completed "
                f"({self.n_pruned_} pruned, {self.n_failed_} failed). "
                + (f"Failure reasons: {sorted(reasons)[:3]}" if reasons else "")
            )
        best = self.study_.best_trial
        self.best_index_ = [t.number for t in trials].index(best.number)
        self.best_score_ = float(best.value)
        self.best_params_ = self._params_of(best, optuna)

    def _params_of(self, frozen: Any, optuna: Any) -> dict:
        if callable(self.param_distributions):
            # Replaying the callable on the trial's suggestions rebuilds values (objects, derived
            # numbers) that the storage cannot hold.
            return dict(self.param_distributions(optuna.trial.FixedTrial(frozen.params)))
        return dict(frozen.params)

    # ------------------------------------------------------------ delegation
    def _delegate(self, method: str, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return getattr(self.best_estimator_, method)(X)

    @available_if(lambda self: _estimator_has(self, "predict"))
    def predict(self, X: Any) -> np.ndarray:
        """Predict with ``best_estimator_``."""
        return self._delegate("predict", X)

    @available_if(lambda self: _estimator_has(self, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from ``best_estimator_``."""
        return self._delegate("predict_proba", X)

    @available_if(lambda self: _estimator_has(self, "decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of ``best_estimator_``."""
        return self._delegate("decision_function", X)

    @available_if(lambda self: _estimator_has(self, "transform"))
    def transform(self, X: Any) -> Any:
        """Transform with ``best_estimator_``."""
        return self._delegate("transform", X)

    def score(self, X: Any, y: Any = None) -> float:
        """Score ``best_estimator_`` with the search's scorer (use once, on held-out data)."""
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, X, y))

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    # -------------------------------------------------------------- saving
    def __getstate__(self) -> dict:
        # Data only (joblib and skops alike): the study as its trials, the search space's
        # distributions and the built-in exceptions of ``catch`` as text; the scorer is rebuilt.
        state = super().__getstate__()
        state["param_distributions"] = space_as_data(state["param_distributions"])
        state["catch"] = catch_as_data(state["catch"])
        if "study_" in state:
            state["study_"] = study_as_data(state["study_"])
        state.pop("scorer_", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.param_distributions = space_from_data(self.param_distributions)
        self.catch = catch_from_data(self.catch)
        if isinstance(self.__dict__.get("study_"), dict):
            import optuna

            # a copy in memory of the study as it was saved (reopen ``storage`` for the live one)
            sampler = self.sampler or TrialSeededSampler(self.random_state)
            self.study_ = study_from_data(self.study_, sampler, self._make_pruner(optuna))
            self.scorer_ = self._make_scorer()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.input_tags.allow_nan = sub.input_tags.allow_nan
        tags.target_tags.required = sub.target_tags.required
        return tags


# ------------------------------------------------------------------ helpers
def _estimator_has(search: PerceptSearchCV, attr: str) -> bool:
    if hasattr(search, "best_estimator_"):
        return hasattr(search.best_estimator_, attr)
    return hasattr(search.estimator, attr)


def open_storage(storage: Any, heartbeat_interval: int = 60) -> Any:
    """The Optuna storage that :class:`PerceptSearchCV` opens for ``storage``.

    Use it to read or share a study outside a search (``optuna.load_study(...,
    storage=open_storage("/shared/ranker.log"))``): a URL is an ``RDBStorage``, any other string
    or path a journal file, both with heartbeats every ``heartbeat_interval`` seconds.

    Parameters
    ----------
    storage : str, path-like, optuna storage or None
    heartbeat_interval : int, default=60

    Returns
    -------
    storage : optuna storage or None

    Examples
    --------
    A journal file (a URL such as ``"sqlite:///study.db"`` gives an ``RDBStorage`` instead),
    written by one study and read by another:

    >>> import os, tempfile
    >>> import optuna
    >>> from skpercept.model_selection import open_storage
    >>> open_storage(None) is None  # in memory
    True
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     journal = os.path.join(folder, "study.log")
    ...     storage = open_storage(journal)
    ...     study = optuna.create_study(storage=storage, study_name="ranker")
    ...     study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    ...     shared = optuna.load_study(study_name="ranker", storage=open_storage(journal))
    ...     n_trials = len(shared.trials)
    >>> isinstance(storage, optuna.storages.JournalStorage), n_trials
    (True, 2)
    """
    return make_storage(storage, heartbeat_interval)


__all__ = ["PerceptSearchCV", "TrialPruningCallback", "open_storage"]
