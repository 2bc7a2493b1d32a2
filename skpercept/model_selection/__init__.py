"""Leak-free splitters and an Optuna search with pruning.

- :class:`ImageDisjointSplit`, :func:`image_disjoint_train_test_split` — no test image in any
  training row (ratings of one image, or pairs that share an image, stay on one side);
  :class:`UserDisjointSplit` (new people), :class:`JudgmentGroupedSplit` (all attributes of one
  judgment together).
- :class:`PerceptSearchCV` — Optuna search over a Pipeline, pruned epoch by epoch through
  :class:`TrialPruningCallback`; several workers share one study through :func:`open_storage`.
"""

from skpercept.model_selection._search import PerceptSearchCV, TrialPruningCallback, open_storage
from skpercept.model_selection._split import (
    ImageDisjointSplit,
    JudgmentGroupedSplit,
    UserDisjointSplit,
    image_disjoint_train_test_split,
)

__all__ = [
    "ImageDisjointSplit",
    "JudgmentGroupedSplit",
    "PerceptSearchCV",
    "TrialPruningCallback",
    "UserDisjointSplit",
    "image_disjoint_train_test_split",
    "open_storage",
]
