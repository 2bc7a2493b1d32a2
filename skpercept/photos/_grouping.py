"""Grouping near-duplicates and bursts: a quality-blind view, embeddings, agglomerative clustering."""

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
from sklearn.metrics import pairwise_distances

from skpercept.embed import BadImageWarning, ImageLoadError, load_image

__all__ = ["BURST_FACTOR", "DEFAULT_THRESHOLD", "group_photos", "grouping_embeddings", "grouping_view"]

#: Cosine distance at which groups stop merging, for complete linkage on the default grouping
#: vectors (:class:`~skpercept.embed.LayoutEmbedder` of :func:`grouping_view`): the middle of
#: the plateau of best adjusted Rand index on the training faces of
#: ``benchmarks/photo_series.py`` (120 OMI faces x 8 degraded versions, mixed), for seeds 0 and 1
#: alike. Chosen there, never on the held-out faces.
DEFAULT_THRESHOLD = 0.27
#: Distance multiplier for two photos taken within ``burst_seconds`` of each other.
BURST_FACTOR = 0.5

_VIEW_SIDE = 240
#: Changes whenever :func:`grouping_view` changes, so cached grouping vectors of old views go unused.
VIEW_VERSION = 1


def group_photos(
    embeddings: Any,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    capture_times: Any = None,
    burst_seconds: float | None = 2.0,
    linkage: str = "complete",
) -> np.ndarray:
    """Group near-duplicates and bursts: agglomerative clustering cut at a cosine distance.

    Rule: embeddings are L2-normalised; two photos' distance is ``1 − cosine similarity``,
    multiplied by :data:`BURST_FACTOR` (0.5) when both have a capture time and were taken at most
    ``burst_seconds`` apart. ``AgglomerativeClustering(linkage=linkage)`` merges groups while the
    linkage distance is below ``threshold``: for ``'complete'`` (the default) the largest
    distance between their members, so every two photos of a group are within ``threshold`` of
    each other; for ``'average'`` the mean distance, which lets a group hold members further
    apart; for ``'single'`` the smallest, which chains.

    Complete linkage is the default for what a group then is, a set of mutual near-duplicates
    (how the linkages compare: ``docs/benchmarks.md``, "Photo collections").

    Parameters
    ----------
    embeddings : array-like of shape (n_photos, n_features)
        Finite image embeddings (drop unreadable photos first).
    threshold : float, default=DEFAULT_THRESHOLD
        Larger merges more. The default suits the default embedder (see
        :data:`DEFAULT_THRESHOLD`); another backbone needs its own.
    capture_times : array-like of shape (n_photos,) or None, default=None
        Seconds (any common origin); NaN where unknown.
    burst_seconds : float or None, default=2.0
        Photos at most this far apart in time count as half as distant. None: time is ignored.
    linkage : {'complete', 'average', 'single'}, default='complete'

    Returns
    -------
    groups : ndarray of int, shape (n_photos,)
        0, 1, 2, ... numbered in order of each group's first photo.

    Examples
    --------
    >>> from skpercept.photos import group_photos
    >>> X = [[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]]
    >>> group_photos(X, threshold=0.1).tolist()
    [0, 0, 1, 1]
    >>> group_photos(X, threshold=0.004).tolist()  # too strict: each photo alone
    [0, 1, 2, 3]
    >>> group_photos(X, threshold=0.004, capture_times=[0, 1, 60, 61]).tolist()  # bursts: half as far
    [0, 0, 1, 1]
    """
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_photos, n_features), got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinity (unreadable photos?); drop those rows first.")
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive cosine distance, got {threshold!r}.")
    if len(X) < 2:
        return np.zeros(len(X), dtype=np.int64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    distances = np.clip(pairwise_distances(X / np.where(norms > 0, norms, 1.0), metric="cosine"), 0, 2)
    if capture_times is not None and burst_seconds is not None:
        times = np.asarray(capture_times, dtype=np.float64).reshape(-1)
        if times.shape != (len(X),):
            raise ValueError(f"capture_times must have one value per photo ({len(X)}), got {times.shape}.")
        close = np.abs(times[:, None] - times[None, :]) <= burst_seconds  # NaN compares False
        distances = np.where(close, distances * BURST_FACTOR, distances)
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=float(threshold), metric="precomputed", linkage=linkage
    ).fit_predict(distances)
    return pd.factorize(labels)[0].astype(np.int64)


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
