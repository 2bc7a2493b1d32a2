"""Whether two photos are one shot: their fine detail, aligned, compared cell by cell.

A descriptor of the whole scene (:class:`~skpercept.embed.LayoutEmbedder`) says that two
photos look alike; two different people photographed the same way look alike too. What only
versions of one shot share is their fine detail in the same place: strands of hair, the
texture of a wall, the edge of a leaf. :func:`detail_view` keeps that detail — grey, squeezed
to 96 x 96 and band-passed (a difference of Gaussians, σ 0.7 and 2 px: blind to brightness,
shading, gentle blur and much of the noise) — and :func:`detail_similarity` aligns two views by
phase correlation (shifts up to a sixth of the side: crops, reframing, a camera moved a little)
and returns the lower quartile of the normalised cross-correlations of a 6 x 6 grid of cells of
their overlap (blind to contrast; a look-alike agrees in its outline, not in most cells).

On the held-out faces of ``benchmarks/photo_series.py`` 99 % of the pairs of versions of one
shot (blurred, noisy, compressed, over- or under-exposed, shifted) score above 0.63 and all but
1 in 10,000 pairs of different people below 0.45. The view, band, grid and quantile were chosen
on that benchmark's training faces (``docs/benchmarks.md``, "Photo collections").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from skpercept.embed import load_image

__all__ = ["DETAIL_SIDE", "DETAIL_VERSION", "detail_similarity", "detail_view"]

#: Side of a detail view, in pixels.
DETAIL_SIDE = 96
#: Changes whenever :func:`detail_view` changes, so cached views of an old kind go unused.
DETAIL_VERSION = 1
_BAND = (0.7, 2.0)
_MAX_SHIFT = DETAIL_SIDE // 6
_GRID = 6
_QUANTILE = 0.25
_MIN_CELL_ENERGY = 0.2


def detail_view(image: Any) -> np.ndarray:
    """A photo's fine detail, for :func:`detail_similarity`.

    Grey levels of the whole image squeezed to 96 x 96 (aspect ratio ignored: versions of one
    shot share it), then a difference of Gaussians (σ 0.7 and 2 px), scaled to zero mean and
    unit standard deviation (all zeros for a flat image). No histogram equalisation: it turns
    the noise of flat areas (sky, walls, a dark background) into detail.

    Parameters
    ----------
    image : path, PIL image or array
        Decoded like the embedders decode (EXIF orientation, any mode).

    Returns
    -------
    view : ndarray of float32, shape (96, 96)

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.photos import detail_view
    >>> rng = np.random.default_rng(0)
    >>> view = detail_view(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    >>> view.shape, view.dtype, round(float(view.std()), 3)
    ((96, 96), dtype('float32'), 1.0)
    """
    if not isinstance(image, Image.Image):
        image = load_image(image, None, 4 * DETAIL_SIDE)
    grey = image.convert("L")
    grey = grey.resize((DETAIL_SIDE, DETAIL_SIDE), Image.BILINEAR, reducing_gap=2.0)
    pixels = np.asarray(grey, dtype=np.float32)
    band = ndimage.gaussian_filter(pixels, _BAND[0]) - ndimage.gaussian_filter(pixels, _BAND[1])
    band -= band.mean()
    spread = float(band.std())
    return (band / spread if spread > 1e-6 else np.zeros_like(band)).astype(np.float32)


def _per_cell(values: np.ndarray, grid: int) -> np.ndarray:
    """Sums over the cells of a ``grid x grid`` partition of each (side x side) array."""
    n, cell = len(values), DETAIL_SIDE // grid
    rows = values.reshape(n, grid, cell, DETAIL_SIDE).sum(axis=2)
    return rows.reshape(n, grid, grid, cell).sum(axis=3).reshape(n, grid * grid)


def _lower_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """Row-wise ``q`` quantile (linear interpolation) of the entries ``counts`` marks; 0 where none."""
    n_kept = counts.sum(axis=1)
    ordered = np.sort(np.where(counts, values, np.inf), axis=1)
    ordered[:, :] = np.where(np.isfinite(ordered), ordered, 0.0)  # only rows with nothing kept read these
    position = q * np.maximum(n_kept - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n_kept - 1, 0))
    rows = np.arange(len(values))
    low_value, high_value = ordered[rows, low], ordered[rows, high]
    result = low_value + (position - low) * (high_value - low_value)
    return np.where(n_kept > 0, result, 0.0)


def detail_similarity(views: Any, first: Any, second: Any, *, chunk: int = 256) -> np.ndarray:
    """Aligned fine-detail similarity of pairs of photos (−1 to 1; one shot: near 1).

    Each pair's shift is the peak of the phase correlation of the two views (Hann-windowed),
    searched within a sixth of the side (16 px of 96) either way. At that shift the overlap is
    cut into a 6 x 6 grid; in every cell with detail in both views (a variance of at least a
    fifth of the view's: not flat sky, not a clipped highlight) the normalised cross-correlation
    is measured, and the similarity is their lower quartile. A low quantile rather than one
    correlation over the whole overlap, because two different people framed alike share their
    outline — hair, shoulders, a background — and differ in the rest (eyes, mouth, skin): most of
    their cells disagree, while every cell of two versions of one shot agrees. A pair without
    any such cell scores 0.

    Parameters
    ----------
    views : array-like of shape (n_photos, 96, 96)
        :func:`detail_view` of each photo.
    first, second : array-like of int, shape (n_pairs,)
        Indices into ``views`` of each pair's photos.
    chunk : int, default=256
        Pairs per batch (memory: about ``chunk`` x 300 kB).

    Returns
    -------
    similarity : ndarray of float64, shape (n_pairs,)

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.photos import detail_similarity, detail_view
    >>> rng = np.random.default_rng(0)
    >>> photo = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    >>> shifted = np.roll(photo, 6, axis=1)  # the same shot, reframed
    >>> other = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    >>> views = np.stack([detail_view(p) for p in (photo, shifted, other)])
    >>> same, different = detail_similarity(views, [0, 0], [1, 2])
    >>> bool(same > 0.7), bool(abs(different) < 0.2)
    (True, True)
    """
    views = np.asarray(views, dtype=np.float32)
    first = np.asarray(first, dtype=np.int64).reshape(-1)
    second = np.asarray(second, dtype=np.int64).reshape(-1)
    if views.ndim != 3 or views.shape[1:] != (DETAIL_SIDE, DETAIL_SIDE):
        raise ValueError(
            f"views must have shape (n_photos, {DETAIL_SIDE}, {DETAIL_SIDE}), got {views.shape}."
        )
    if first.shape != second.shape:
        raise ValueError(f"first and second must have the same length, got {len(first)} and {len(second)}.")
    if len(first) and (min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= len(views)):
        raise ValueError(f"pair indices must be between 0 and {len(views) - 1}.")
    side = DETAIL_SIDE
    window = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    allowed = np.r_[0 : _MAX_SHIFT + 1, side - _MAX_SHIFT : side]
    out = np.zeros(len(first), dtype=np.float64)
    used, position = np.unique(np.concatenate([first, second]), return_inverse=True)
    spectra = np.fft.rfft2(views[used] * window)  # one transform per photo, not per pair
    first_at, second_at = position[: len(first)], position[len(first) :]
    for start in range(0, len(first), chunk):
        stop = min(start + chunk, len(first))
        cross = spectra[first_at[start:stop]] * np.conj(spectra[second_at[start:stop]])
        cross /= np.abs(cross) + 1e-9
        surface = np.fft.irfft2(cross, s=(side, side))[:, allowed][:, :, allowed]
        peak = surface.reshape(stop - start, -1).argmax(axis=1)
        dy, dx = allowed[peak // len(allowed)], allowed[peak % len(allowed)]
        dy, dx = np.where(dy > side // 2, dy - side, dy), np.where(dx > side // 2, dx - side, dx)
        # the second view moved onto the first, zero where it has no pixel, and the first view
        # zeroed where the second has none: sums over each cell then cover the overlap only
        right = np.zeros((stop - start, side, side), dtype=np.float32)
        valid_rows = np.zeros((stop - start, side), dtype=np.float32)
        valid_cols = np.zeros((stop - start, side), dtype=np.float32)
        for n, (j, y, x) in enumerate(zip(second[start:stop], dy, dx)):
            right[n, max(0, y) : side + min(0, y), max(0, x) : side + min(0, x)] = views[
                j, max(0, -y) : side + min(0, -y), max(0, -x) : side + min(0, -x)
            ]
            valid_rows[n, max(0, y) : side + min(0, y)] = 1.0
            valid_cols[n, max(0, x) : side + min(0, x)] = 1.0
        left = views[first[start:stop]] * valid_rows[:, :, None] * valid_cols[:, None, :]
        cell = side // _GRID
        count = (
            valid_rows.reshape(-1, _GRID, cell).sum(axis=2)[:, :, None]
            * valid_cols.reshape(-1, _GRID, cell).sum(axis=2)[:, None, :]
        ).reshape(stop - start, -1)
        safe = np.maximum(count, 1.0)
        sum_l, sum_r = _per_cell(left, _GRID), _per_cell(right, _GRID)
        var_l = _per_cell(left * left, _GRID) - sum_l * sum_l / safe
        var_r = _per_cell(right * right, _GRID) - sum_r * sum_r / safe
        cov = _per_cell(left * right, _GRID) - sum_l * sum_r / safe
        correlation = cov / np.sqrt(np.maximum(var_l * var_r, 1e-12))
        counts = (count >= cell * cell / 2) & (np.minimum(var_l, var_r) / safe >= _MIN_CELL_ENERGY)
        result = _lower_quantile(correlation, counts, _QUANTILE)
        out[start:stop] = result
    return out
