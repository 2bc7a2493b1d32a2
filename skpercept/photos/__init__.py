"""Photo collections: group near-duplicates and bursts, score every photo, keep the best of each.

The job of ``skpercept rank FOLDER``, as functions:

1. :func:`find_images` lists the image files of a folder tree (any format PIL reads).
2. Each file is read once (:func:`scan_photos`): decoded like the embedders decode it (EXIF
   orientation, any mode to RGB), scored by :func:`quality_baseline`, its EXIF capture time
   read, and a small thumbnail made. A file that cannot be read is kept with the reason.
3. :func:`grouping_embeddings` describes each photo's :func:`grouping_view` (grey, blurred,
   histogram-equalised: blind to what tells versions of one scene apart), by default with
   :class:`~skpercept.embed.LayoutEmbedder` (how the scene is laid out: a coarse grid of the shipped
   EfficientNet-Lite0's mid-level features and a tiny thumbnail); :func:`group_photos` clusters the
   L2-normalised embeddings with scikit-learn's ``AgglomerativeClustering`` (complete linkage on
   cosine distance, cut at ``threshold``); photos taken within ``burst_seconds`` of each other
   count as half as far apart, so a burst holds together through motion between frames.
4. Each photo gets a score: a fitted skpercept model's (:func:`photo_scorer`) or the quality
   baseline's. Within a group, rank 1 (highest score) is the one to keep.

:func:`rank_photos` runs steps 1–4 and returns one row per file; :func:`write_collection`
writes ``ranking.csv`` and ``contact_sheet.html``.
"""

from skpercept.photos._collection import (
    IMAGE_EXTENSIONS,
    RANKING_COLUMNS,
    collection_files,
    find_images,
    rank_photos,
    scan_photos,
    write_collection,
)
from skpercept.photos._grouping import (
    BURST_FACTOR,
    DEFAULT_THRESHOLD,
    group_photos,
    grouping_embeddings,
    grouping_view,
)
from skpercept.photos._quality import QUALITY_TERMS, quality_baseline
from skpercept.photos._scoring import load_photo_scorer, photo_scorer

__all__ = [
    "BURST_FACTOR",
    "DEFAULT_THRESHOLD",
    "IMAGE_EXTENSIONS",
    "QUALITY_TERMS",
    "RANKING_COLUMNS",
    "collection_files",
    "find_images",
    "group_photos",
    "grouping_embeddings",
    "grouping_view",
    "load_photo_scorer",
    "photo_scorer",
    "quality_baseline",
    "rank_photos",
    "scan_photos",
    "write_collection",
]
