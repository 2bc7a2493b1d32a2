"""Photo collections: group versions of one shot and bursts, score every photo, keep the best of each.

The job of ``skpercept rank FOLDER``, as functions:

1. :func:`find_images` lists the image files of a folder tree (any format PIL reads).
2. Each file is read once (:func:`scan_photos`): decoded like the embedders decode it (EXIF
   orientation, any mode to RGB), scored by :func:`quality_baseline`, its EXIF capture time
   read, its fine detail kept (:func:`detail_view`) and a small thumbnail made. A file that cannot be read is kept with the reason.
3. Grouping never joins two photos on resemblance alone. :func:`grouping_embeddings` describes
   each photo's :func:`grouping_view` (grey, blurred, histogram-equalised), by default with
   :class:`~skpercept.embed.LayoutEmbedder` (how the scene is laid out), and :func:`photo_pairs`
   keeps the pairs close enough to be one shot; then each pair's fine detail
   (:func:`detail_view`) is aligned and compared cell by cell (:func:`detail_similarity`).
   :func:`group_photos` joins photos with scikit-learn's ``AgglomerativeClustering`` (complete
   linkage) only when every two of a group match in detail (similarity above
   ``min_similarity``), or were taken within ``burst_seconds`` of each other (EXIF) with the
   same scene layout — a burst moves between frames.
4. Each photo gets a score: a fitted skpercept model's (:func:`photo_scorer`) or the quality
   baseline's. Within a group, rank 1 (highest score) is the one to keep, with why
   (``why_best``); :func:`grouping_confidence` marks each group and each other photo
   :data:`SURE` ("near-certain duplicate": detail similarity at least :data:`SURE_SIMILARITY`)
   or :data:`CHECK` ("similar, check": joined on weaker evidence), so a person can act on the
   sure ones and look at the rest.

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
from skpercept.photos._detail import DETAIL_SIDE, detail_similarity, detail_view
from skpercept.photos._grouping import (
    BURST_DISTANCE,
    CANDIDATE_DISTANCE,
    CHECK,
    DEFAULT_MIN_SIMILARITY,
    SURE,
    SURE_SIMILARITY,
    group_photos,
    grouping_confidence,
    grouping_embeddings,
    grouping_view,
    photo_pairs,
)
from skpercept.photos._quality import QUALITY_TERMS, quality_baseline
from skpercept.photos._scoring import load_photo_scorer, photo_scorer

__all__ = [
    "BURST_DISTANCE",
    "CANDIDATE_DISTANCE",
    "CHECK",
    "DEFAULT_MIN_SIMILARITY",
    "DETAIL_SIDE",
    "IMAGE_EXTENSIONS",
    "QUALITY_TERMS",
    "RANKING_COLUMNS",
    "SURE",
    "SURE_SIMILARITY",
    "collection_files",
    "detail_similarity",
    "detail_view",
    "find_images",
    "group_photos",
    "grouping_confidence",
    "grouping_embeddings",
    "grouping_view",
    "load_photo_scorer",
    "photo_pairs",
    "photo_scorer",
    "quality_baseline",
    "rank_photos",
    "scan_photos",
    "write_collection",
]
