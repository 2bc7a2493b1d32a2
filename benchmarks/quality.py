"""Rater-quality analytics: random-clicker detection AUROC and run time at 100k rows.

Data (synthetic, seeded): 200 raters, 3000 images, 3 attributes. Each image has a latent
score per attribute plus 3 latent "taste" traits; each genuine rater rates
``clip(round(2.5 + bias + slope * score + taste . traits + noise), 1, 4)`` with noise sd 0.9
and a personal slope in [0.3, 1.3] (and one rater in ten with a reversed slope), and prefers
in comparisons the image with the higher personal utility (logistic noise). 5 % of raters
(10) are planted random clickers: ratings drawn from their own random 1-4 distribution
(so their marginals look plausible), comparisons by coin flip. 100k rating rows and 100k
comparison rows; each rater rates ~500 images (4 % repeated) and compares ~500 pairs.

Reported: AUROC of ``-random_z`` from ``random_rater_scores`` for spotting the planted random
raters (target >= 0.95), the same for the consistency / transitivity scores, and the wall
time of each function on the full data (target < 10 s each on 2 cores). No train/test split:
these are unsupervised scores; the planted labels are used only for the AUROC.

Run: ``nice -n 5 python benchmarks/quality.py [--no-save]``; the last line is a JSON object of
the figures, also written with the printed table to ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from skpercept.raters import (
    agreement_matrix,
    filter_raters,
    labeling_speed,
    random_rater_scores,
    rating_comparison_consistency,
    transitivity_violations,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, save_result, table_record

ATTRS = ["attractive", "smart", "trustworthy"]


def make_data(n_users=200, n_items=3000, n_rows=100_000, frac_random=0.05, seed=0):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(n_items, len(ATTRS)))
    traits = rng.normal(size=(n_items, 3))
    is_random = np.zeros(n_users, bool)
    is_random[rng.choice(n_users, int(round(frac_random * n_users)), replace=False)] = True
    slope = rng.uniform(0.3, 1.3, size=(n_users, 1)) * np.where(rng.random((n_users, 1)) < 0.1, -1, 1)
    taste = rng.normal(scale=0.5, size=(n_users, 3, len(ATTRS)))
    bias = rng.normal(scale=0.4, size=(n_users, 1))
    marg = rng.dirichlet(np.ones(4) * 2, size=n_users)
    per_user = n_rows // n_users

    def utility(u, items):
        return bias[u] + slope[u] * score[items] + np.einsum("nk,ka->na", traits[items], taste[u])

    rat, com = [], []
    for u in range(n_users):
        items = rng.choice(n_items, per_user, replace=False)
        items[: per_user // 25] = items[per_user // 25 : 2 * (per_user // 25)]  # some repeats
        if is_random[u]:
            vals = rng.choice(np.arange(1, 5), size=(per_user, len(ATTRS)), p=marg[u]).astype(float)
        else:
            vals = np.clip(
                np.rint(2.5 + utility(u, items) + rng.normal(scale=0.9, size=(per_user, len(ATTRS)))), 1, 4
            )
        t0 = rng.uniform(0, 1e6)
        rat.append(
            pd.DataFrame(
                {
                    "user_id": u,
                    "image": items,
                    **dict(zip(ATTRS, vals.T)),
                    "insert_time": t0 + np.cumsum(rng.exponential(6.0, per_user)),
                }
            )
        )
        a, b = rng.choice(items, per_user), rng.choice(items, per_user)
        b = np.where(a == b, (b + 1) % n_items, b)
        if is_random[u]:
            prefs = rng.integers(0, 2, size=(per_user, len(ATTRS))).astype(float)
        else:
            diff = utility(u, a) - utility(u, b)
            prefs = (rng.random((per_user, len(ATTRS))) < 1 / (1 + np.exp(-3 * diff))).astype(float)
        com.append(
            pd.DataFrame(
                {
                    "user_id": u,
                    "image_a": a,
                    "image_b": b,
                    **dict(zip(ATTRS, prefs.T)),
                    "insert_time": t0 + 5e3 + np.cumsum(rng.exponential(4.0, per_user)),
                }
            )
        )
    return pd.concat(rat, ignore_index=True), pd.concat(com, ignore_index=True), is_random


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_result_options(parser)
    args = parser.parse_args()
    ratings, comparisons, is_random = make_data()
    users = np.arange(len(is_random))
    figures = {
        "n_ratings": len(ratings),
        "n_comparisons": len(comparisons),
        "n_users": len(users),
        "n_random": int(is_random.sum()),
    }
    rs, figures["time_random_rater_scores_s"] = timed(random_rater_scores, ratings)
    tv, figures["time_transitivity_violations_s"] = timed(transitivity_violations, comparisons)
    cs, figures["time_rating_comparison_consistency_s"] = timed(
        rating_comparison_consistency, ratings, comparisons
    )
    _, figures["time_labeling_speed_s"] = timed(labeling_speed, ratings)
    _, figures["time_agreement_matrix_comparisons_s"] = timed(agreement_matrix, comparisons)
    _, figures["time_agreement_matrix_ratings_s"] = timed(agreement_matrix, ratings)
    report, figures["time_filter_raters_s"] = timed(filter_raters, ratings, comparisons)

    figures["auroc_random_z"] = roc_auc_score(is_random, -rs["random_z"].reindex(users))
    figures["auroc_rmse_ratio"] = roc_auc_score(is_random, rs["rmse_ratio"].reindex(users))
    figures["auroc_consistency"] = roc_auc_score(is_random, -cs["consistency"].reindex(users))
    figures["auroc_cycle_fraction"] = roc_auc_score(is_random, tv["cycle_fraction"].reindex(users).fillna(0))
    flag = rs["flag_random"].reindex(users).to_numpy()
    figures["random_flag_recall"] = float(flag[is_random].mean())
    figures["random_flag_false_positive_rate"] = float(flag[~is_random].mean())
    drop = ~report["keep"].reindex(users).to_numpy()
    figures["filter_recall"] = float(drop[is_random].mean())
    figures["filter_false_positive_rate"] = float(drop[~is_random].mean())
    figures["overall_cycle_fraction"] = tv.attrs["overall"]["cycle_fraction"]

    print(
        f"skpercept.raters benchmark | {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, shared machine (times inflated by other jobs)"
    )
    print(
        f"data: {len(ratings)} rating rows, {len(comparisons)} comparison rows, "
        f"{len(users)} raters ({int(is_random.sum())} planted random), 3 attributes\n"
    )
    print(f"{'figure':40s} {'value':>10s}")
    for k, v in figures.items():
        print(f"{k:40s} {v:10.3f}" if isinstance(v, float) else f"{k:40s} {v:10d}")
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    print(json.dumps(rounded))
    rows = [[k, f"{v:.3f}" if isinstance(v, float) else str(v)] for k, v in figures.items()]
    note = (
        f"{len(ratings):,} rating rows, {len(comparisons):,} comparison rows, {len(users)} raters "
        f"({int(is_random.sum())} planted random), 3 attributes; times in seconds on the whole data."
    )
    table = table_record(
        "figures", "Random-rater detection and run times", ["figure", "value"], rows, note=note
    )
    save_result(args, "quality", [table], rounded)


if __name__ == "__main__":
    main()
