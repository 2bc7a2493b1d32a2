"""Recipes: what the command, the benchmarks and the examples share.

- :func:`make_featurizer` — registered backbones side by side, balanced by
  :class:`~skpercept.preprocessing.BlockScaler` (:func:`backbone_dims`, :func:`embed_blocks`).
- :func:`cross_validate` — the image-disjoint protocol behind the OMI figures, for any dataset
  shaped like :func:`~skpercept.datasets.load_omi`'s, with its metrics
  (:func:`pair_metrics`, :func:`pair_calibration`, :func:`rating_metrics`) and tables
  (:func:`noise_ceiling_table`, :func:`results_table`).
- :func:`run_demo` — ``skpercept demo``: the main job on the shipped OMI faces.
"""

from skpercept.recipes._demo import DEFAULT_ATTRIBUTES, DEMO_ENSEMBLE, run_demo
from skpercept.recipes._evaluation import (
    MODEL_LABELS,
    CVResult,
    cross_validate,
    face_scores,
    fit_head,
    noise_ceiling_table,
    pair_calibration,
    pair_metrics,
    rating_classes,
    rating_metrics,
    results_table,
)
from skpercept.recipes._features import backbone_dims, embed_blocks, make_featurizer

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEMO_ENSEMBLE",
    "MODEL_LABELS",
    "CVResult",
    "backbone_dims",
    "cross_validate",
    "embed_blocks",
    "face_scores",
    "fit_head",
    "make_featurizer",
    "noise_ceiling_table",
    "pair_calibration",
    "pair_metrics",
    "rating_classes",
    "rating_metrics",
    "results_table",
    "run_demo",
]
