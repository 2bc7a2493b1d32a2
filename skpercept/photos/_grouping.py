"""Grouping versions of one shot and bursts: candidates by scene, joined only when their detail matches."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter, ImageOps
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering

from skpercept._dataframes import as_pandas_frame
from skpercept.embed import BadImageWarning, ImageLoadError, load_image
from skpercept.photos._detail import detail_similarity

__all__ = [
    "BURST_DISTANCE",
    "CANDIDATE_DISTANCE",
    "CHECK",
    "DEFAULT_MIN_SIMILARITY",
    "SURE",
    "SURE_SIMILARITY",
    "group_photos",
    "grouping_confidence",
    "grouping_embeddings",
    "grouping_view",
    "photo_pairs",
]

#: Aligned fine-detail similarity (:func:`~skpercept.photos.detail_similarity`) every two photos
#: of a group must exceed. On the training faces of ``benchmarks/photo_series.py`` (120 OMI
#: faces x 16 versions) no two photos of different faces scored above 0.38, and 1 % of the
#: pairs of versions of one shot scored below 0.61; 0.5 is between the two. Chosen there, never
#: on the held-out faces or the non-face photos.
DEFAULT_MIN_SIMILARITY = 0.5
#: From this similarity up a pair is a near-certain duplicate: 0.32 above any pair of different
#: training faces, and reached by 96 % of the pairs of versions of one shot there.
SURE_SIMILARITY = 0.7
#: Photos further apart than this (cosine distance of the grouping vectors) are never compared
#: in detail: on the training faces 3 of 14,400 pairs of versions of one shot were further apart
#: (at most 0.48, each with a version over-exposed 2.6 x), against 91 % of the pairs of different
#: faces.
CANDIDATE_DISTANCE = 0.45
#: Two photos taken within ``burst_seconds`` of each other join on the scene alone when their
#: grouping vectors are at most this far apart (the layout rule's own threshold, measured on
#: the training faces), since a burst moves between frames and its fine detail need not align.
BURST_DISTANCE = 0.27
#: Each photo is compared in detail with at most this many nearest candidates.
MAX_CANDIDATES = 50
#: Confidence label of a pair, photo or group whose every link is at least :data:`SURE_SIMILARITY`.
SURE = "near-certain duplicate"
#: Confidence label of a pair, photo or group joined on weaker evidence (a similarity between
#: ``min_similarity`` and :data:`SURE_SIMILARITY`, or a burst).
CHECK = "similar, check"

_VIEW_SIDE = 240
#: Changes whenever :func:`grouping_view` changes, so cached grouping vectors of old views go unused.
VIEW_VERSION = 1


def _normalised(embeddings: Any) -> np.ndarray:
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_photos, n_features), got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinity (unreadable photos?); drop those rows first.")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def photo_pairs(
    embeddings: Any,
    details: Any,
    *,
    capture_times: Any = None,
    burst_seconds: float | None = 2.0,
    max_candidates: int = MAX_CANDIDATES,
) -> pd.DataFrame:
    """The pairs of photos that could be one shot, with the evidence for each.

    Candidates are pairs whose grouping vectors (L2-normalised) are at most
    :data:`CANDIDATE_DISTANCE` apart in cosine distance, each photo with at most
    ``max_candidates`` nearest; each candidate's fine detail is then aligned and compared
    (:func:`~skpercept.photos.detail_similarity`).

    Parameters
    ----------
    embeddings : array-like of shape (n_photos, n_features)
        Grouping vectors (:func:`grouping_embeddings`), finite.
    details : array-like of shape (n_photos, 96, 96)
        :func:`~skpercept.photos.detail_view` of each photo.
    capture_times : array-like of shape (n_photos,) or None, default=None
        Seconds (any common origin); NaN where unknown.
    burst_seconds : float or None, default=2.0
        Photos at most this far apart in time are one burst. None: time is ignored.
    max_candidates : int, default=MAX_CANDIDATES

    Returns
    -------
    pairs : DataFrame
        One row per candidate pair, ``first < second``: ``distance`` (cosine, grouping
        vectors), ``similarity`` (aligned detail) and ``burst`` (both taken within
        ``burst_seconds``).

    Examples
    --------
    A photo, a blurred copy taken 1.5 s later, and another scene a minute on:

    >>> import numpy as np
    >>> from PIL import Image, ImageFilter
    >>> from skpercept.photos import detail_view, photo_pairs
    >>> rng = np.random.default_rng(0)
    >>> scenes = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(2)]
    >>> first, other = [Image.fromarray(s).resize((128, 96), Image.BICUBIC) for s in scenes]
    >>> photos = [first, first.filter(ImageFilter.GaussianBlur(3)), other]
    >>> details = [detail_view(p) for p in photos]
    >>> vectors = [[1.0, 0.0], [1.0, 0.05], [0.0, 1.0]]  # the third is no candidate
    >>> pairs = photo_pairs(vectors, details, capture_times=[0.0, 1.5, 60.0])
    >>> pairs.round(2)
       first  second  distance  similarity  burst
    0      0       1       0.0        0.93   True
    """
    X = _normalised(embeddings)
    n = len(X)
    details = np.asarray(details, dtype=np.float32)
    if len(details) != n:
        raise ValueError(f"details must have one view per photo ({n}), got {len(details)}.")
    times = None
    if capture_times is not None and burst_seconds is not None:
        times = np.asarray(capture_times, dtype=np.float64).reshape(-1)
        if times.shape != (n,):
            raise ValueError(f"capture_times must have one value per photo ({n}), got {times.shape}.")
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be at least 1, got {max_candidates!r}.")
    columns = {"first": [], "second": [], "distance": []}
    block = 1024
    for start in range(0, n, block):  # nearest candidates per photo, a block of rows at a time
        distances = np.clip(1.0 - X[start : start + block] @ X.T, 0.0, 2.0)
        rows = np.arange(start, min(start + block, n))
        distances[np.arange(len(rows)), rows] = np.inf
        keep = min(max_candidates, n - 1)
        if keep <= 0:
            break
        nearest = np.argpartition(distances, keep - 1, axis=1)[:, :keep]
        near = np.take_along_axis(distances, nearest, axis=1)
        ok = near <= CANDIDATE_DISTANCE
        i, j = np.broadcast_to(rows[:, None], nearest.shape)[ok], nearest[ok]
        columns["first"].append(np.minimum(i, j))
        columns["second"].append(np.maximum(i, j))
        columns["distance"].append(near[ok])
    pairs = pd.DataFrame({k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()})
    pairs = pairs.astype({"first": np.int64, "second": np.int64, "distance": np.float64})
    pairs = pairs.drop_duplicates(["first", "second"]).sort_values(["first", "second"], ignore_index=True)
    first, second = pairs["first"].to_numpy(), pairs["second"].to_numpy()
    pairs["similarity"] = detail_similarity(details, first, second) if len(pairs) else np.empty(0)
    if times is None:
        pairs["burst"] = False
    else:
        pairs["burst"] = np.abs(times[first] - times[second]) <= burst_seconds  # NaN compares False
    return pairs


def _pair_distances(n: int, pairs: pd.DataFrame, min_similarity: float) -> np.ndarray:
    """Pairwise distances for the clustering: 1 − similarity, lowered for bursts; 2 for non-candidates."""
    distance = 1.0 - pairs["similarity"].to_numpy()
    burst = pairs["burst"].to_numpy(bool) & (pairs["distance"].to_numpy() <= BURST_DISTANCE)
    # a burst pair joins on the scene alone: its distance falls below the cut in proportion to how
    # far its grouping vectors are within BURST_DISTANCE
    burst_distance = (1.0 - min_similarity) * pairs["distance"].to_numpy() / BURST_DISTANCE
    distance = np.where(burst, np.minimum(distance, burst_distance), distance)
    matrix = np.full((n, n), 2.0)
    first, second = pairs["first"].to_numpy(), pairs["second"].to_numpy()
    matrix[first, second] = matrix[second, first] = distance
    np.fill_diagonal(matrix, 0.0)
    return matrix


def group_photos(
    embeddings: Any,
    details: Any,
    *,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    capture_times: Any = None,
    burst_seconds: float | None = 2.0,
    linkage: str = "complete",
    pairs: pd.DataFrame | None = None,
) -> np.ndarray:
    """Group versions of one shot and bursts; never join photos whose detail does not match.

    Rule: two photos can join when their grouping vectors are close (:func:`photo_pairs`:
    cosine distance at most :data:`CANDIDATE_DISTANCE`) and their aligned fine detail agrees
    (similarity above ``min_similarity``), or when both have a capture time at most
    ``burst_seconds`` apart and their grouping vectors are at most :data:`BURST_DISTANCE` apart
    (a burst: the subject moved, the scene did not). Their distance is ``1 − similarity``
    (for a burst pair, whichever is smaller of that and ``(1 − min_similarity) x distance /
    BURST_DISTANCE``); ``AgglomerativeClustering(linkage=linkage)`` merges groups while the
    linkage distance is below ``1 − min_similarity``: for ``'complete'`` (the default) the
    largest distance between their members, so every two photos of a group match each other;
    ``'average'`` and ``'single'`` let a group hold pairs that do not (single linkage chains:
    A like B and B like C joins A and C).

    Parameters
    ----------
    embeddings : array-like of shape (n_photos, n_features)
        Finite grouping vectors (:func:`grouping_embeddings`; drop unreadable photos first).
    details : array-like of shape (n_photos, 96, 96)
        :func:`~skpercept.photos.detail_view` of each photo.
    min_similarity : float, default=DEFAULT_MIN_SIMILARITY
        In (−1, 1); larger joins less.
    capture_times : array-like of shape (n_photos,) or None, default=None
        Seconds (any common origin); NaN where unknown.
    burst_seconds : float or None, default=2.0
        Photos at most this far apart in time are one burst. None: time is ignored.
    linkage : {'complete', 'average', 'single'}, default='complete'
    pairs : DataFrame or None, default=None
        :func:`photo_pairs` of these photos, when already computed.

    Returns
    -------
    groups : ndarray of int, shape (n_photos,)
        0, 1, 2, ... numbered in order of each group's first photo.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.photos import detail_view, group_photos
    >>> rng = np.random.default_rng(0)
    >>> scenes = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(2)]
    >>> photos = [scenes[0], np.roll(scenes[0], 4, axis=0), scenes[1], scenes[1] // 2]
    >>> details = [detail_view(p) for p in photos]
    >>> vectors = [[1.0, 0.0], [1.0, 0.1], [0.9, 0.2], [0.9, 0.2]]  # every photo a candidate
    >>> group_photos(vectors, details).tolist()
    [0, 0, 1, 1]
    """
    X = _normalised(embeddings)
    if not -1.0 < min_similarity < 1.0:
        raise ValueError(f"min_similarity must be between -1 and 1 (exclusive), got {min_similarity!r}.")
    if linkage not in ("complete", "average", "single"):
        raise ValueError(f"linkage must be 'complete', 'average' or 'single', got {linkage!r}.")
    if pairs is None:
        pairs = photo_pairs(X, details, capture_times=capture_times, burst_seconds=burst_seconds)
    pairs = as_pandas_frame(pairs, "pairs")  # photo_pairs' table, perhaps kept as polars
    if len(X) < 2:
        return np.zeros(len(X), dtype=np.int64)
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=1.0 - float(min_similarity), metric="precomputed", linkage=linkage
    ).fit_predict(_pair_distances(len(X), pairs, min_similarity))
    return pd.factorize(labels)[0].astype(np.int64)


def grouping_confidence(
    groups: Any, best: Any, pairs: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How sure each grouping is: per photo against its group's best, and per group.

    A photo is a :data:`SURE` duplicate of its group's best when their aligned detail
    similarity is at least :data:`SURE_SIMILARITY`, else :data:`CHECK` (joined by a weaker
    match or a burst); a group is :data:`SURE` when every two of its photos are, else
    :data:`CHECK`. Best photos and photos alone in their group get ``''``.

    Parameters
    ----------
    groups : array-like of int, shape (n_photos,)
    best : array-like of bool, shape (n_photos,)
        One True per group: the photo to keep.
    pairs : DataFrame
        :func:`photo_pairs` of the same photos.

    Returns
    -------
    photo_confidence, group_confidence : ndarray of str, shape (n_photos,)
    similarity_to_best : ndarray of float, shape (n_photos,)
        NaN for best photos and single photos.

    Examples
    --------
    Photos 0-2 are one group (0 the best), photo 3 is alone:

    >>> import pandas as pd
    >>> from skpercept.photos import grouping_confidence
    >>> pairs = pd.DataFrame({"first": [0, 0, 1], "second": [1, 2, 2], "similarity": [0.9, 0.6, 0.55]})
    >>> photo, group, to_best = grouping_confidence([0, 0, 0, 1], [True, False, False, True], pairs)
    >>> photo.tolist()
    ['', 'near-certain duplicate', 'similar, check', '']
    >>> group.tolist()
    ['similar, check', 'similar, check', 'similar, check', '']
    >>> to_best.tolist()
    [nan, 0.9, 0.6, nan]
    """
    groups = np.asarray(groups, dtype=np.int64)
    best = np.asarray(best, dtype=bool)
    n = len(groups)
    pairs = as_pandas_frame(pairs, "pairs")  # photo_pairs' table, perhaps kept as polars
    similarity = {
        (int(a), int(b)): s for a, b, s in pairs[["first", "second", "similarity"]].itertuples(index=False)
    }

    def pair(a: int, b: int) -> float:
        return similarity.get((min(a, b), max(a, b)), -1.0)

    photo = np.full(n, "", dtype=object)
    group = np.full(n, "", dtype=object)
    to_best = np.full(n, np.nan)
    for members in pd.Series(groups).groupby(groups).indices.values():
        if len(members) < 2:
            continue
        keeper = members[best[members]][0] if best[members].any() else members[0]
        for m in members[members != keeper]:
            to_best[m] = pair(int(keeper), int(m))
            photo[m] = SURE if to_best[m] >= SURE_SIMILARITY else CHECK
        sure = all(
            pair(int(a), int(b)) >= SURE_SIMILARITY for k, a in enumerate(members) for b in members[k + 1 :]
        )
        group[members] = SURE if sure else CHECK
    return photo.astype(str), group.astype(str), to_best


def grouping_view(image: Any) -> Image.Image:
    """What the embedder sees when grouping: the photo without what tells near-duplicates apart.

    Near-duplicates differ in exactly what the quality score measures — blur, noise, JPEG
    artefacts, exposure, colour — so grouping looks past it: grey levels, shorter side
    resized to 240 px, Gaussian blur of radius 4 px (1/60 of the side, stronger than most
    blur between versions of one scene) and histogram equalisation (exposure and contrast).
    The blur radius was chosen on training faces of ``benchmarks/photo_series.py`` (what the
    view does on its held-out faces: ``docs/benchmarks.md``, "Photo collections").

    Parameters
    ----------
    image : path, PIL image or array

    Returns
    -------
    view : PIL.Image.Image
        Mode ``'L'``.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.photos import grouping_view
    >>> photo = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    >>> view = grouping_view(photo)
    >>> view.mode, view.size  # grey, shorter side 240 px
    ('L', (320, 240))
    """

    gray = load_image(image, None, _VIEW_SIDE).convert("L")
    scale = _VIEW_SIDE / min(gray.size)
    gray = gray.resize(
        (max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.BILINEAR
    )
    return ImageOps.equalize(gray.filter(ImageFilter.GaussianBlur(_VIEW_SIDE / 60)))


def grouping_embeddings(
    images: Sequence[Any], embedder: Any, *, view: bool = True, num_workers: int = 2, chunk: int = 256
) -> np.ndarray:
    """Embeddings for :func:`group_photos`: of :func:`grouping_view` (or of the images as they are).

    The embedder is cloned and set to ``on_error='nan'`` when it has that parameter, so an
    image that fails gives a row of NaN instead of an error. Views are made in chunks, so memory
    stays flat however many photos there are.

    Parameters
    ----------
    images : sequence of paths, PIL images or arrays
    embedder : transformer
        An image embedder (unfitted or fitted; it is cloned and fitted, which reads no image).
    view : bool, default=True
        Embed :func:`grouping_view` of each image; False embeds the images themselves (for a
        backbone already blind to image quality, such as a face descriptor).
    num_workers : int, default=2
        Threads making the views.
    chunk : int, default=256

    Returns
    -------
    embeddings : ndarray of shape (n_images, n_features)

    Examples
    --------
    Any image embedder works; here a stand-in gives each view at 8 x 8 grey pixels.

    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skpercept.photos import grouping_embeddings
    >>> def pixels(views):
    ...     return np.array([np.asarray(v.convert("L").resize((8, 8)), float).ravel() for v in views])
    >>> rng = np.random.default_rng(0)
    >>> photos = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    >>> grouping_embeddings(photos, FunctionTransformer(pixels)).shape
    (3, 64)
    """

    embedder = clone(embedder)
    if "on_error" in embedder.get_params():
        embedder.set_params(on_error="nan")

    def prepare(image):
        try:
            return grouping_view(image)
        except ImageLoadError:
            return image  # the embedder meets the same failure and gives NaN

    images = list(images)
    blocks = []
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, num_workers)) as pool:
        # callers have listed the files that failed to decode; one that fails here gets NaN
        warnings.simplefilter("ignore", BadImageWarning)
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            part = (
                list(pool.map(prepare, part))
                if view
                else [str(p) if isinstance(p, Path) else p for p in part]
            )
            if not blocks:
                embedder.fit(pd.Series(part[:1], name="image"))
            blocks.append(np.asarray(embedder.transform(pd.Series(part, name="image")), dtype=np.float64))
    return np.vstack(blocks) if blocks else np.empty((0, 0))
