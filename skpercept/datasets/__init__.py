"""Datasets: the embedded OMI faces, the reference system's Excel schema, derived tables.

- :func:`load_omi` — 1,004 faces with individual 0–100 ratings (CC BY-NC-SA 4.0 data,
  shipped in ``data/omi`` with its license and attribution).
- :func:`load_perception_xlsx` — rating / comparison / image / pair tables in the reference
  labelling system's Excel schema, joined into ``ratings`` and ``comparisons`` frames.
- :func:`to_rating_classes`, :func:`rating_frame` — continuous ratings → ordinal classes.
- :func:`consensus_pairs`, :func:`sample_comparisons` — pairwise comparison frames
  (``image_a``, ``image_b``, one label column per attribute).
- :func:`soft_consensus_pairs`, :func:`sample_rating_rows`, :func:`mean_standard_errors`,
  :func:`ratings_with_face_index`, :func:`subset_faces` — training tables from a dataset shaped
  like :func:`load_omi`'s Bunch (``images``, long ``ratings``, ``means``, ``attributes``).
"""

from skpercept.datasets._derive import (
    consensus_pairs,
    rating_frame,
    sample_comparisons,
    to_rating_classes,
)
from skpercept.datasets._omi import OMI_DIR, load_omi, omi_attributes
from skpercept.datasets._training import (
    mean_standard_errors,
    ratings_with_face_index,
    sample_rating_rows,
    soft_consensus_pairs,
    subset_faces,
)
from skpercept.datasets._xlsx import BadRowsWarning, load_perception_xlsx

__all__ = [
    "OMI_DIR",
    "BadRowsWarning",
    "consensus_pairs",
    "load_omi",
    "load_perception_xlsx",
    "mean_standard_errors",
    "omi_attributes",
    "rating_frame",
    "ratings_with_face_index",
    "sample_comparisons",
    "sample_rating_rows",
    "soft_consensus_pairs",
    "subset_faces",
    "to_rating_classes",
]
