"""A no-training image quality score for choosing among near-duplicates: sharp, clean, well exposed."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from skpercept._io import check_input_file
from skpercept.embed import BadImageWarning, ImageLoadError, load_image

__all__ = ["QUALITY_SIDE", "QUALITY_TERMS", "quality_baseline"]

#: The baseline measures images at this shorter side (larger ones are reduced, never enlarged).
QUALITY_SIDE = 512


def jpeg_size(source: Any, image_root=None) -> tuple[int, int] | None:
    """The stored size of a JPEG source (path, open file or PIL image), None for anything else."""
    if isinstance(source, Image.Image):
        return source.size if source.format == "JPEG" else None
    if isinstance(source, (str, os.PathLike)):
        source = Path(source) if image_root is None else Path(image_root) / source
    elif not hasattr(source, "read"):
        return None
    try:
        if isinstance(source, Path):
            check_input_file(source)  # a FIFO or a device is never opened
        with Image.open(source) as header:
            return header.size if header.format == "JPEG" else None
    except Exception:
        return None


def quality_terms(image: Image.Image, jpeg_size: tuple[int, int] | None = None) -> np.ndarray:
    """[sharpness, noise, blocking, contrast, exposure, clipped] of one RGB image (see quality_baseline).

    ``jpeg_size``: the stored size when the image came from a JPEG; blocking is measured only
    when the pixels still sit on that file's 8-px grid (decoded at full size, not resized).
    """
    on_grid = jpeg_size is not None and tuple(jpeg_size) == image.size
    scale = QUALITY_SIDE / min(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image, on_grid = image.resize(size, Image.BILINEAR, reducing_gap=2.0), False
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    if min(gray.shape) < 3:
        return np.array([0.0, 0.0, 0.0, 0.0, abs(gray.mean() / 255 - 0.5), 1.0])
    centre = gray[1:-1, 1:-1]
    laplacian = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * centre
    # Immerkaer (1996): the difference of two Laplacians cancels most edges and keeps the noise
    second = (
        gray[:-2, :-2] + gray[:-2, 2:] + gray[2:, :-2] + gray[2:, 2:]
        - 2 * (gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:])
        + 4 * centre
    )  # fmt: skip
    sigma = np.sqrt(np.pi / 2) * np.abs(second).mean() / 6
    unit = gray / 255
    clipped = np.mean((unit <= 1 / 255) | (unit >= 254 / 255))
    blocking = 0.0
    if on_grid and min(gray.shape) > 8:
        # steps across the 8-px block grid against steps inside blocks: about equal in a natural
        # image; one grey level is added to both so that flat synthetic images stay near 0
        steps_x, steps_y = np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0))
        inside_x, inside_y = np.ones(steps_x.shape[1], bool), np.ones(steps_y.shape[0], bool)
        inside_x[7::8], inside_y[7::8] = False, False
        across = steps_x[:, ~inside_x].mean() + steps_y[~inside_y].mean()
        within = steps_x[:, inside_x].mean() + steps_y[inside_y].mean()
        blocking = max(0.0, float(np.log2((across + 1) / (within + 1))))
    return np.array(
        [
            np.log10(1 + laplacian.var()),
            np.log10(1 + sigma**2),
            blocking,
            unit.std(),
            abs(unit.mean() - 0.5),
            clipped,
        ]
    )


#: The baseline's terms and their weights in its score (see :func:`quality_baseline`).
QUALITY_TERMS = ("sharpness", "noise", "blocking", "contrast", "exposure", "clipped")
_QUALITY_WEIGHTS = np.array([1.0, -1.0, -1.0, 2.0, -2.0, -2.0])


def baseline_score(terms: np.ndarray) -> np.ndarray:
    return np.asarray(terms, dtype=np.float64) @ _QUALITY_WEIGHTS


def quality_baseline(images: Sequence[Any], *, image_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """A simple no-training image quality score, and the terms it adds up.

    Measured on the luminance (0–255) at a shorter side of at most 512 px:

    - ``sharpness``: ``log10(1 + variance of the 4-neighbour Laplacian)`` (blur lowers it);
    - ``noise``: ``log10(1 + σ²)`` with σ from Immerkær's fast noise estimate (noise raises the
      Laplacian's variance too; this term takes that back);
    - ``blocking``: ``max(0, log2((1 + mean step across the 8-px block grid) / (1 + mean step
      inside blocks)))``, the blocking of heavy JPEG compression (which also raises the
      Laplacian's variance); measured only on JPEG files decoded at full size, else 0;
    - ``contrast``: the standard deviation of luminance in [0, 1];
    - ``exposure``: distance of the mean luminance from mid-grey, ``|mean − 0.5|``;
    - ``clipped``: share of pixels at pure black or white.

    ``score = sharpness − noise − blocking + 2·contrast − 2·exposure − 2·clipped``; higher is
    better. The weights are round numbers that put each term on the sharpness term's scale. Only
    differences between near-duplicates mean anything: it prefers the sharper, cleaner, better
    exposed of two versions of one scene, not the better photograph of two scenes.

    Parameters
    ----------
    images : sequence of paths, PIL images or arrays
    image_root : str or path-like, default=None
        Folder that relative paths are relative to.

    Returns
    -------
    table : DataFrame
        Columns ``score`` and the six terms, one row per image; NaN for an image that cannot
        be loaded (and one :class:`~skpercept.embed.BadImageWarning` listing them).

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image, ImageFilter
    >>> from skpercept.photos import quality_baseline
    >>> sharp = np.full((64, 64, 3), 60, np.uint8)
    >>> sharp[13:41, 21:50] = 200
    >>> blurred = Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(2))
    >>> table = quality_baseline([sharp, blurred])
    >>> bool(table["score"][0] > table["score"][1])
    True
    """
    rows, failed = [], []
    for image in images:
        try:
            loaded = load_image(image, image_root, QUALITY_SIDE)
            rows.append(quality_terms(loaded, jpeg_size(image, image_root)))
        except ImageLoadError as exc:
            rows.append(np.full(len(QUALITY_TERMS), np.nan))
            failed.append(f"{exc.source}: {exc.reason}")
    if failed:
        warnings.warn(f"{len(failed)} image(s) could not be loaded: " + "; ".join(failed), BadImageWarning, 2)
    terms = np.asarray(rows, dtype=np.float64).reshape(-1, len(QUALITY_TERMS))
    table = pd.DataFrame(terms, columns=list(QUALITY_TERMS))
    table.insert(0, "score", baseline_score(terms))
    return table
