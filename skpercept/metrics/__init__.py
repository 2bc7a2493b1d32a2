"""Metrics and scorers for human judgments: pairs, ratings, calibration, reliability.

Conventions shared by every metric here:

- ``y_true`` and the prediction may be 1-D, or 2-D with one column per attribute (e.g.
  attractive / smart / trustworthy). ``NaN`` marks a missing label: those entries are ignored
  (masked), never imputed. Shapes must match exactly, or a ValueError says how they differ.
- ``multioutput='uniform_average'`` (default) returns the mean over attributes of the
  per-attribute score; ``'raw_values'`` returns one score per attribute. An attribute without
  a single label is NaN in the raw values and left out of the average.
- Pair labels follow the pair contract: ``1`` where the LEFT item is preferred, ``0`` where the
  right is, soft labels in ``[0, 1]`` (e.g. the share of raters preferring left; ``0.5`` = tie).

The metrics, by what they judge:

- order: :func:`pairwise_accuracy`, :func:`kendall_tau`, :func:`spearman_rho` (pairs and item
  scores);
- ratings: :func:`rating_mae`, :func:`quadratic_weighted_kappa`;
- probabilities: :func:`brier_score`, :func:`expected_calibration_error`;
- people: :func:`per_user_report`, :func:`per_user_scores`;
- photo collections: :func:`map_at_k`, :func:`recall_at_k`, :func:`retrieval_scorer`,
  :func:`top1_in_series_accuracy`, :func:`grouping_ari`, :func:`grouping_errors`;
- what any model can reach on given ratings: :func:`noise_ceiling`, :func:`pair_order_ceiling`.

Scorers (``pairwise_accuracy_scorer``, ``neg_brier_scorer``, ... or :func:`percept_scorer` by
name) plug into ``scoring=`` of ``GridSearchCV`` / ``cross_val_score``.
"""

from skpercept.metrics._ordering import kendall_tau, pairwise_accuracy, spearman_rho
from skpercept.metrics._people import per_user_report, per_user_scores
from skpercept.metrics._photos import (
    grouping_ari,
    grouping_errors,
    map_at_k,
    recall_at_k,
    retrieval_scorer,
    top1_in_series_accuracy,
)
from skpercept.metrics._proba import brier_score, expected_calibration_error
from skpercept.metrics._ratings import quadratic_weighted_kappa, rating_mae
from skpercept.metrics._reliability import noise_ceiling, pair_order_ceiling
from skpercept.metrics._scorers import (
    METRICS,
    kendall_tau_scorer,
    neg_brier_scorer,
    neg_ece_scorer,
    neg_rating_mae_scorer,
    pairwise_accuracy_scorer,
    percept_scorer,
    qwk_scorer,
    spearman_rho_scorer,
)

__all__ = [
    "METRICS",
    "brier_score",
    "expected_calibration_error",
    "grouping_ari",
    "grouping_errors",
    "kendall_tau",
    "kendall_tau_scorer",
    "map_at_k",
    "neg_brier_scorer",
    "neg_ece_scorer",
    "neg_rating_mae_scorer",
    "noise_ceiling",
    "pair_order_ceiling",
    "pairwise_accuracy",
    "pairwise_accuracy_scorer",
    "per_user_report",
    "per_user_scores",
    "percept_scorer",
    "quadratic_weighted_kappa",
    "qwk_scorer",
    "rating_mae",
    "recall_at_k",
    "retrieval_scorer",
    "spearman_rho",
    "spearman_rho_scorer",
    "top1_in_series_accuracy",
]
