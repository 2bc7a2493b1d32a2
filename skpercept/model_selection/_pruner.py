"""The fold-local pruner of :class:`skpercept.model_selection.PerceptSearchCV`, in a module of its own so
that it imports optuna only when a search runs and pickles by reference (a fitted search keeps
its study, whose pruner this is)."""

from __future__ import annotations

import copy
from typing import Any

import optuna

#: Reported step = fold * FOLD_STEP_STRIDE + epoch; epochs beyond it are not reported.
FOLD_STEP_STRIDE = 1000


class FoldLocalPruner(optuna.pruners.BasePruner):
    """Judge a trial on the fold it is training now, with ``base`` (any optuna pruner).

    Optuna's percentile / median pruners compare the *best* value a trial reported at any
    step with other trials' values at the current step. With one step sequence over all folds
    that best value can come from an earlier, easier fold, and a trial that peaked there could
    never be pruned later. This pruner shows ``base`` only the current fold's reports of the
    trial (other trials are read at the same step, which already names the same fold).
    """

    def __init__(self, base: Any) -> None:
        self.base = base

    def prune(self, study: Any, trial: Any) -> bool:
        step = trial.last_step
        if step is None:
            return self.base.prune(study, trial)
        fold = step // FOLD_STEP_STRIDE
        local = copy.copy(trial)
        local.intermediate_values = {
            s: v for s, v in trial.intermediate_values.items() if s // FOLD_STEP_STRIDE == fold
        }
        return self.base.prune(study, local)

    def __repr__(self) -> str:
        return f"FoldLocalPruner({self.base!r})"
