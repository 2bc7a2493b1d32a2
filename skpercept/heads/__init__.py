"""Heads: torch models trained through skorch on feature vectors, as scikit-learn estimators.

- :class:`RatingClassifier` — rating levels (1–4, keep/delete, ...) with probabilities, one or
  several attributes at once; :class:`RatingRegressor` — ratings as numbers.
- :class:`PairwiseRanker` — ``P(left ≻ right) = σ(s(left) − s(right))`` on pair rows
  ``[left | right]`` (:class:`~skpercept.preprocessing.PairFeatures`), and a score per item.
- :class:`JointRatingRanker` — ratings and comparisons of the same images on one latent scale
  (:func:`join_labels`, :func:`rating_rows` build its rows).
- The registry of heads chosen by name (:func:`register_head`, :func:`make_head`,
  :class:`HeadSettings`): the command, ``compare``, the presets, the safe file format and the
  common checks all read it.

Every head learns one person's taste too (``user_features``; see :mod:`skpercept.personal`).
For writing a head: :mod:`skpercept.heads.base` (the shared skorch machinery),
:mod:`skpercept.heads.nets` (the torch modules and losses) and
:mod:`skpercept.heads.calibration` (temperatures fitted on held-out judgments).
"""

from skpercept.heads._joint import JointRatingRanker, join_labels, rating_rows
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.heads._registry import (
    RATING_LEVELS,
    HeadSettings,
    HeadSpec,
    get_head,
    head_names,
    make_head,
    register_head,
    registered_estimators,
    unregister_head,
)
from skpercept.heads.base import FeatureScaleWarning

__all__ = [
    "RATING_LEVELS",
    "FeatureScaleWarning",
    "HeadSettings",
    "HeadSpec",
    "JointRatingRanker",
    "PairwiseRanker",
    "RatingClassifier",
    "RatingRegressor",
    "get_head",
    "head_names",
    "join_labels",
    "make_head",
    "rating_rows",
    "register_head",
    "registered_estimators",
    "unregister_head",
]
