"""
Tuning history of an Optuna search with pruning
===============================================

:class:`~skpercept.model_selection.PerceptSearchCV` tunes a whole Pipeline with Optuna and
scores the head on each cross-validation fold after every epoch, so that a pruner can stop
trials that fall behind the earlier ones. This example runs a small search (10 trials, 3
image-disjoint folds, 12 epochs) for a :class:`~skpercept.heads.PairwiseRanker` on pairs of
240 of the shipped One Million Impressions faces (``load_omi``; CC BY-NC-SA 4.0), ordered by
their consensus trustworthiness, then plots what every trial did. ``examples/optuna_study.py``
is the full-size version: a study stored in a database, resumed, shared by several workers.
"""

# %%
# The search
# ----------
# The search space is a function of an Optuna trial; it returns scikit-learn parameter names
# of the Pipeline. Selection uses the training faces only; 20 % of the faces are held out and
# scored once, after the search.

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
from sklearn.pipeline import Pipeline

from skpercept.datasets import consensus_pairs, load_omi
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.model_selection import ImageDisjointSplit, PerceptSearchCV, image_disjoint_train_test_split
from skpercept.preprocessing import PairFeatures

omi = load_omi(["trustworthy"])
faces = omi.means.sample(300, random_state=0).reset_index(drop=True)
train_faces, test_faces = image_disjoint_train_test_split(faces, test_size=0.2, random_state=0)
train = consensus_pairs(train_faces, "trustworthy", n_pairs=1500, ties="drop", random_state=0)
test = consensus_pairs(test_faces, "trustworthy", ties="drop", random_state=0)

pipe = Pipeline(
    [
        ("pairs", PairFeatures(item_transformer=TimmEmbedder(cache_dir=default_cache_dir()))),
        ("ranker", PairwiseRanker(max_epochs=12, early_stopping=False, random_state=0)),
    ]
)


def search_space(trial: optuna.Trial) -> dict:
    return {
        "ranker__hidden_layer_sizes": (trial.suggest_int("width", 8, 256, log=True),),
        "ranker__lr": trial.suggest_float("lr", 1e-5, 3e-2, log=True),
        "ranker__weight_decay": trial.suggest_float("weight_decay", 1e-4, 1.0, log=True),
        "ranker__dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


search = PerceptSearchCV(
    pipe,
    search_space,
    cv=ImageDisjointSplit(n_splits=3, random_state=0),
    n_trials=10,
    random_state=0,
)
search.fit(train[["image_a", "image_b"]], train["trustworthy"])
print(
    f"{search.n_trials_} trials, {search.n_pruned_} pruned; {search.epochs_run_} epochs trained "
    f"of the {search.n_trials_ * 3 * 12} a search without pruning would train"
)
print(f"best cross-validated pair accuracy {search.best_score_:.3f} with {search.best_params_}")
test_score = search.score(test[["image_a", "image_b"]], test["trustworthy"])  # once, after selection
print(f"held-out faces, every pair: accuracy {test_score:.3f}")

# %%
# Every trial, epoch by epoch
# ---------------------------
# ``search.study_`` is the Optuna study. Each trial reported its validation accuracy after every
# epoch of every fold, at step ``fold * 1000 + epoch``; the left panel shows fold 0. The pruner
# (by default: once 5 trials have completed, stop a trial whose best score so far is below the
# best 40 % of the completed trials at the same step) cut the grey ones short, marked × where
# they stopped; a grey curve that reaches the last epoch was stopped on a later fold. The right
# panel shows each complete trial's mean score over the three folds and the best so far.

states = optuna.trial.TrialState
fig, (curves, history) = plt.subplots(1, 2, figsize=(11, 4.2))
for trial in search.study_.trials:
    steps = {s: v for s, v in trial.intermediate_values.items() if s < 1000}  # fold 0
    pruned = trial.state == states.PRUNED
    curves.plot(
        list(steps), list(steps.values()), color="grey" if pruned else None, alpha=0.6 if pruned else 0.9
    )
    if pruned and trial.last_step < 1000:
        curves.plot(trial.last_step, steps[trial.last_step], "x", color="black")
curves.set(xlabel="epoch", ylabel="validation pair accuracy (fold 0)", title="learning curves (grey: pruned)")

complete = [t for t in search.study_.trials if t.state == states.COMPLETE]
numbers = [t.number for t in complete]
values = [t.value for t in complete]
history.plot(numbers, values, "o", label="complete trial (mean of 3 folds)")
best_so_far = np.maximum.accumulate(values)
last = search.study_.trials[-1].number
history.step([*numbers, last], [*best_so_far, best_so_far[-1]], where="post", label="best so far")
for t in search.study_.trials:
    if t.state == states.PRUNED:
        history.axvline(t.number, color="grey", alpha=0.3, linewidth=4)
history.set(xlabel="trial", ylabel="pair accuracy", title="search history (grey bands: pruned)")
history.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The same results as scikit-learn's ``cv_results_`` (NaN for folds a pruned trial never
# finished):

columns = ["number", "state", "n_epochs", "split0_test_score", "split1_test_score", "split2_test_score"]
print(pd.DataFrame(search.cv_results_)[[*columns, "mean_test_score"]].round(3).to_string(index=False))
