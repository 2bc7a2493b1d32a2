"""skpercept: scikit-learn estimators that learn how people perceive images.

Data flows one way: images → vectors (:mod:`skpercept.embed`) → features
(:mod:`skpercept.preprocessing`, people in :mod:`skpercept.personal`) → heads
(:mod:`skpercept.heads`, or a tower fine-tuned end to end in :mod:`skpercept.finetune`) → scores
and reports (:mod:`skpercept.metrics`, :mod:`skpercept.report`). Around them:
:mod:`skpercept.datasets` (the shipped faces, the reference Excel schema),
:mod:`skpercept.model_selection` (leak-free splitters, Optuna search), :mod:`skpercept.raters`
(rater quality), :mod:`skpercept.photos` (photo collections), :mod:`skpercept.recipes` (what the
command, benchmarks and examples share) and :mod:`skpercept.cli` (the ``skpercept`` command).

The most used estimators are also named here. Subpackages and names are imported on first
use, so ``import skpercept`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: The subpackages, in the order data flows through them.
SUBPACKAGES = (
    "datasets",
    "embed",
    "preprocessing",
    "personal",
    "heads",
    "finetune",
    "model_selection",
    "metrics",
    "report",
    "raters",
    "photos",
    "recipes",
    "label",
    "cli",
)

# the most used estimators -> the subpackage that defines them
_ESTIMATORS: dict[str, str] = {
    "TimmEmbedder": "skpercept.embed",
    "CLIPEmbedder": "skpercept.embed",
    "UserEncoder": "skpercept.personal",
    "PairFeatures": "skpercept.preprocessing",
    "BlockScaler": "skpercept.preprocessing",
    "RatingClassifier": "skpercept.heads",
    "RatingRegressor": "skpercept.heads",
    "PairwiseRanker": "skpercept.heads",
    "JointRatingRanker": "skpercept.heads",
    "LoRARatingClassifier": "skpercept.finetune",
    "LoRAPairwiseRanker": "skpercept.finetune",
    "PerceptSearchCV": "skpercept.model_selection",
}

__all__ = sorted([*_ESTIMATORS, *SUBPACKAGES])

# skops (and MLflow's default format) may rebuild skpercept's estimators as it does
# scikit-learn's: their state is plain data (see skpercept/_skops.py).
importlib.import_module("skpercept._skops").trust_skpercept_in_skops()


def __getattr__(name: str):
    if name in _ESTIMATORS:
        return getattr(importlib.import_module(_ESTIMATORS[name]), name)
    if name in SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'skpercept' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
