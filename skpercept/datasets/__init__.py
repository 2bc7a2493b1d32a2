"""Datasets: the embedded OMI faces, the reference system's Excel schema, derived tables.

- :func:`load_omi` — 1,004 faces with individual 0–100 ratings (CC BY-NC-SA 4.0 data,
  shipped in ``data/omi`` with its license and attribution).
- :func:`load_perception_xlsx` — rating / comparison / image / pair tables in the reference
  labelling system's Excel schema, joined into ``ratings`` and ``comparisons`` frames.
- :func:`to_rating_classes`, :func:`rating_frame` — continuous ratings → ordinal classes.
- :func:`consensus_pairs`, :func:`sample_comparisons` — pairwise comparison frames
  (``image_a``, ``image_b``, one label column per attribute).
"""

from skpercept.datasets._derive import (
    consensus_pairs,
    rating_frame,
    sample_comparisons,
    to_rating_classes,
)
from skpercept.datasets._omi import load_omi, omi_attributes
from skpercept.datasets._xlsx import BadRowsWarning, load_perception_xlsx

__all__ = [
    "BadRowsWarning",
    "consensus_pairs",
    "load_omi",
    "load_perception_xlsx",
    "omi_attributes",
    "rating_frame",
    "sample_comparisons",
    "to_rating_classes",
]
