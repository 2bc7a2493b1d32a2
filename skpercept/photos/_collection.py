"""The whole job on a folder: find, read, group, score and rank photos; write the CSV and the sheet."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from skpercept._dataframes import as_pandas_frame
from skpercept._io import InputFileError, atomic_write, check_input_file, replace_together, write_bytes_atomic
from skpercept.embed import ImageLoadError, LayoutEmbedder, load_image
from skpercept.photos._contact_sheet import contact_sheet_html
from skpercept.photos._detail import DETAIL_SIDE, DETAIL_VERSION, detail_view
from skpercept.photos._grouping import (
    DEFAULT_MIN_SIMILARITY,
    VIEW_VERSION,
    group_photos,
    grouping_confidence,
    grouping_embeddings,
    photo_pairs,
)
from skpercept.photos._quality import (
    _QUALITY_WEIGHTS,
    QUALITY_SIDE,
    QUALITY_TERMS,
    baseline_score,
    jpeg_size,
    quality_terms,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "RANKING_COLUMNS",
    "find_images",
    "rank_photos",
    "scan_photos",
    "write_collection",
]

#: File name endings :func:`find_images` treats as images (case-insensitive).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
)
#: The columns of :func:`rank_photos`' table (and of ``ranking.csv``), in order.
RANKING_COLUMNS = (
    "path",
    "group",
    "group_confidence",
    "score",
    "rank",
    "best",
    "confidence",
    "similarity_to_best",
    "why_best",
    "reason",
)
#: How :func:`rank_photos` words each quality term when it explains a best pick.
_TERM_WORDS = {
    "sharpness": "sharper",
    "noise": "less noise",
    "blocking": "less JPEG blocking",
    "contrast": "more contrast",
    "exposure": "better exposed",
    "clipped": "fewer clipped pixels",
}
_THUMB_SIDE = 192
_EXIF_IFD, _DATETIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x8769, 0x9003, 0x9291


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), by extension; hidden entries skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.photos import find_images
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.JPG", "a.png", "notes.txt", ".hidden.jpg"):
    ...     _ = (root / name).write_bytes(b"")
    >>> [p.name for p in find_images(root)]
    ['a.png', 'b.JPG']
    """
    root = Path(folder)
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(directory) / name)
    return sorted(found)


# -- one read per file: quality terms, capture time, thumbnail --------------------------------
def _capture_time(image: Image.Image) -> float:
    """EXIF DateTimeOriginal (+ SubSecTimeOriginal) as seconds, NaN when absent or unreadable.

    Cameras record local time without a zone; read as UTC, it still orders and spaces the
    photos of one camera correctly, which is all bursts need.
    """
    try:
        exif = image.getexif().get_ifd(_EXIF_IFD)
        stamp = datetime.strptime(str(exif[_DATETIME_ORIGINAL]).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except (KeyError, ValueError, TypeError, AttributeError, OSError, SyntaxError):
        return float("nan")
    seconds = stamp.replace(tzinfo=timezone.utc).timestamp()
    fraction = str(exif.get(_SUBSEC_ORIGINAL, "")).strip("\x00 ")
    return seconds + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def _thumbnail(image: Image.Image) -> str:
    small = image.copy()
    small.thumbnail((_THUMB_SIDE, _THUMB_SIDE), Image.BILINEAR, reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class _ScanCache:
    """Quality terms and thumbnails by content hash, written atomically (like the embeddings)."""

    def __init__(self, cache_dir: str | os.PathLike | None) -> None:
        self.root = None if cache_dir is None else Path(cache_dir).expanduser() / f"photos-v3-{QUALITY_SIDE}"

    def get(self, digest: str, kind: str) -> bytes | None:
        if self.root is None:
            return None
        try:
            return (self.root / kind / digest[:2] / digest).read_bytes()
        except OSError:
            return None

    def put(self, digest: str, kind: str, data: bytes) -> None:
        if self.root is None:
            return

        path = self.root / kind / digest[:2] / digest
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data, together=False)  # at once, even inside an output group
        except OSError:  # a read-only or full cache slows the next run down; it must not stop this one
            pass


_DETAIL_KIND = f"detail-v{DETAIL_VERSION}"


def _scan_one(path: Path, cache: _ScanCache, thumbnails: bool) -> dict:
    row = {"terms": None, "time": float("nan"), "thumbnail": "", "reason": "", "digest": "", "detail": None}
    try:
        data = check_input_file(path).read_bytes()
    except InputFileError as exc:  # a FIFO, a device, a link to one, or too large: never read
        row["reason"] = str(exc).removeprefix(f"{path} ")
        return row
    except OSError as exc:
        row["reason"] = f"cannot read file ({exc.strerror or exc})"
        return row
    digest = row["digest"] = hashlib.blake2b(data, digest_size=16).hexdigest()
    terms, thumb = cache.get(digest, "quality"), cache.get(digest, "thumbnail") if thumbnails else b""
    detail = cache.get(digest, _DETAIL_KIND)
    try:
        if terms is None or thumb is None or detail is None:
            image = load_image(path, None, QUALITY_SIDE, data=data)
            terms = quality_terms(image, jpeg_size(io.BytesIO(data))).astype("<f8").tobytes()
            cache.put(digest, "quality", terms)
            detail = detail_view(image).astype("<f2").tobytes()  # half precision: 18 kB a photo
            cache.put(digest, _DETAIL_KIND, detail)
            if thumbnails:
                thumb = _thumbnail(image).encode("ascii")
                cache.put(digest, "thumbnail", thumb)
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            row["time"] = _capture_time(header)
    except ImageLoadError as exc:
        row["reason"] = exc.reason
        return row
    except Exception as exc:
        row["reason"] = f"unreadable image ({type(exc).__name__}: {exc})"
        return row
    row["terms"] = np.frombuffer(terms, dtype="<f8")
    row["detail"] = np.frombuffer(detail, dtype="<f2").reshape(DETAIL_SIDE, DETAIL_SIDE)
    row["thumbnail"] = thumb.decode("ascii")
    return row


def scan_photos(
    paths: Sequence[str | os.PathLike],
    *,
    cache_dir: str | os.PathLike | None = None,
    thumbnails: bool = True,
    num_workers: int = 2,
) -> pd.DataFrame:
    """Read each file once: quality terms, baseline score, capture time, detail, thumbnail, or the reason.

    Parameters
    ----------
    paths : sequence of path-like
    cache_dir : str or path-like, default=None
        Keeps the quality terms, detail views and thumbnails by file content (a folder beside the embedding
        cache's), so a rerun over the same photos decodes none of them. None disables it.
    thumbnails : bool, default=True
        Make a JPEG data URI (at most 192 px a side) per image for the contact sheet.
    num_workers : int, default=2
        Threads reading and decoding files (PIL releases the GIL while it decodes).

    Returns
    -------
    table : DataFrame
        One row per path: ``baseline`` (:func:`quality_baseline`'s score), its six terms,
        ``captured`` (EXIF capture time in seconds, NaN if absent), ``detail``
        (:func:`~skpercept.photos.detail_view`, float16, None for unreadable files),
        ``thumbnail`` (data URI or empty), ``reason`` (why the file could not be read; empty
        when it could) and ``digest`` (a hash of the file's bytes, the cache key).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skpercept.photos import scan_photos
    >>> pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = pathlib.Path(folder)
    ...     Image.fromarray(pixels).save(root / "photo.png")
    ...     _ = (root / "broken.jpg").write_bytes(b"not an image")
    ...     table = scan_photos([root / "photo.png", root / "broken.jpg"], thumbnails=False)
    >>> table.columns.tolist()[:3], table["detail"][0].shape
    (['baseline', 'sharpness', 'noise'], (96, 96))
    >>> table["reason"].tolist()
    ['', 'not a recognised image format (corrupt file?)']
    """
    cache = _ScanCache(cache_dir)
    paths = [Path(p) for p in paths]
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        rows = list(pool.map(lambda p: _scan_one(p, cache, thumbnails), paths))
    terms = np.array(
        [r["terms"] if r["terms"] is not None else np.full(len(QUALITY_TERMS), np.nan) for r in rows]
    )
    table = pd.DataFrame(terms.reshape(len(rows), len(QUALITY_TERMS)), columns=list(QUALITY_TERMS))
    table.insert(0, "baseline", baseline_score(table.to_numpy()))
    table["captured"] = [r["time"] for r in rows]
    table["detail"] = pd.Series([r["detail"] for r in rows], dtype=object)
    table["thumbnail"] = [r["thumbnail"] for r in rows]
    table["reason"] = [r["reason"] for r in rows]
    table["digest"] = [r["digest"] for r in rows]
    return table


# -- the whole job --------------------------------------------------------------------------------
#: Embedder parameters that do not change its vectors (left out of the grouping cache key).
_RUNTIME_PARAMS = {"cache_dir", "device", "progress", "num_workers", "on_error", "batch_size"}


def _grouping_vectors(paths, digests, embedder, view: bool, cache_dir, num_workers: int) -> np.ndarray:
    """grouping_embeddings, kept by file content so that a rerun computes no view and no vector.

    The key holds the embedder's class, its parameters that change the vectors (with the size
    and modification time of any that names a file, such as a local checkpoint) and the view's
    version; a warm rerun builds no model at all.
    """

    if not len(paths):
        return np.empty((0, 1))
    cache = _ScanCache(cache_dir)
    if cache.root is None:
        return grouping_embeddings(paths, embedder, view=view, num_workers=num_workers)
    params = {k: v for k, v in embedder.get_params(deep=False).items() if k not in _RUNTIME_PARAMS}
    for name, value in params.items():
        if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
            stat = os.stat(value)
            params[name] = [os.fspath(value), stat.st_size, stat.st_mtime_ns]
    identity = [type(embedder).__module__, type(embedder).__name__, params, view and VIEW_VERSION]
    kind = (
        "grouping-" + hashlib.blake2b(json.dumps(identity, default=str).encode(), digest_size=8).hexdigest()
    )
    found = [cache.get(digest, kind) for digest in digests]
    todo = [i for i, data in enumerate(found) if data is None]
    computed = grouping_embeddings([paths[i] for i in todo], embedder, view=view, num_workers=num_workers)
    rows: list = [None if data is None else np.frombuffer(data, dtype="<f4") for data in found]
    for i, vector in zip(todo, computed.astype("<f4")):  # stored as float32, as embedders output them
        rows[i] = vector
        if np.isfinite(vector).all():
            cache.put(digests[i], kind, vector.tobytes())
    return np.vstack(rows).astype(np.float64)


def _default_embedder(cache_dir, device: str, progress: bool | str, num_workers: int):
    """The layout descriptor on the shipped EfficientNet-Lite0 (see :class:`LayoutEmbedder`).

    No embedding cache of its own: it embeds grouping views made in memory, and the caller
    caches the grouping vectors by file content.
    """
    return LayoutEmbedder(device=device, progress=progress, num_workers=num_workers)


def _why_best(table: pd.DataFrame, terms: pd.DataFrame | None, score_name: str) -> pd.Series:
    """Why each group's rank 1 is the one to keep: its score against the runner-up's, and for
    the quality baseline the terms that put it ahead (their weighted difference, largest first)."""
    why = pd.Series("", index=table.index, dtype=object)
    for _, members in table[table["group"] >= 0].groupby("group"):
        keeper = members.index[members["rank"].to_numpy() == 1][0]
        if len(members) == 1:
            why[keeper] = "only photo of its group"
            continue
        runner = members.index[members["rank"].to_numpy() == 2][0]
        best, second = table.at[keeper, "score"], table.at[runner, "score"]
        if not (np.isfinite(best) and np.isfinite(second)):
            why[keeper] = f"first in file order ({score_name} missing)"
            continue
        text = f"highest {score_name}: {best:.3f}, next {second:.3f}"
        if best == second:
            text = f"{score_name} tied at {best:.3f}; first in file order"
        elif terms is not None:
            gain = (terms.loc[keeper] - terms.loc[runner]) * pd.Series(
                _QUALITY_WEIGHTS, index=list(QUALITY_TERMS)
            )
            ahead = gain[gain > 0].sort_values(ascending=False)[:2]
            if len(ahead):
                text += " (" + ", ".join(f"{_TERM_WORDS[t]} +{v:.2f}" for t, v in ahead.items()) + ")"
        why[keeper] = text
    return why


def rank_photos(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    scorer: Callable[[Sequence[str]], np.ndarray] | None = None,
    embedder: Any = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    burst_seconds: float | None = 2.0,
    linkage: str = "complete",
    view: bool = True,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool | str = "auto",
    thumbnails: bool = False,
    num_workers: int = 2,
    score_name: str | None = None,
) -> pd.DataFrame:
    """Group a folder's versions of one shot and bursts, rank each group, say how sure each is.

    Parameters
    ----------
    images : folder or sequence of paths
        A folder is searched recursively (:func:`find_images`) and paths are reported relative
        to it.
    scorer : callable or None, default=None
        ``scorer(paths) -> scores`` (higher = better), e.g. :func:`photo_scorer` of a fitted
        model; None uses :func:`quality_baseline`'s score.
    embedder : transformer or None, default=None
        Image embedder for the grouping vectors that pick candidate pairs (cloned;
        ``on_error`` set to ``'nan'``); None: :class:`LayoutEmbedder` (a coarse grid of the
        shipped EfficientNet-Lite0's mid-level features plus a tiny thumbnail). Whatever the
        embedder, two photos join only when their aligned fine detail matches (or they are one
        burst): see :func:`group_photos`.
    min_similarity, burst_seconds, linkage
        Grouping rule, see :func:`group_photos`. ``burst_seconds=None`` ignores capture times.
    view : bool, default=True
        Embed :func:`grouping_view` of each photo (blind to blur, noise, exposure and colour);
        False embeds the photos as they are (see :func:`grouping_embeddings`).
    cache_dir : str or path-like, default=None
        Embedding cache (and quality / detail / thumbnail cache); a rerun on the same photos
        reads every image's bytes but decodes none.
    device, progress
        Passed to the default embedder (``progress='auto'``: a bar over the photos being
        embedded when a person is watching, see :class:`LayoutEmbedder`).
    num_workers : int, default=2
        Threads reading and scanning files and making the grouping views.
    thumbnails : bool, default=False
        Add a ``thumbnail`` column of JPEG data URIs (for :func:`write_collection`'s sheet).
    score_name : str or None, default=None
        What the scores are, for ``why_best``; None: ``'quality baseline'`` without a scorer,
        ``'model score'`` with one.

    Returns
    -------
    table : DataFrame
        :data:`RANKING_COLUMNS`: ``path``, ``group`` (1, 2, ...), ``group_confidence``
        (:data:`~skpercept.photos.SURE` when every two photos of the group are near-certain
        duplicates, :data:`~skpercept.photos.CHECK` otherwise, empty for a photo alone),
        ``score``, ``rank`` within the group (1 = best), ``best``, ``confidence`` (of each
        non-best photo against its group's best: ``SURE`` or ``CHECK``), ``similarity_to_best``
        (their aligned detail similarity), ``why_best`` (for each best photo: its score against
        the runner-up's and, for the quality baseline, the terms that put it ahead) and
        ``reason``. Sorted by group and rank; files that could not be read come last, with a
        reason and no group, score or rank — never dropped.

    Examples
    --------
    Two versions of one scene, another scene and a file that is no image. The embedder here is
    a stand-in (each grouping view at 8 x 8 grey pixels); the default needs no argument.

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from PIL import Image, ImageFilter
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skpercept.embed import load_image
    >>> from skpercept.photos import rank_photos
    >>> def pixels(images):
    ...     rows = [np.asarray(load_image(i).convert("L").resize((8, 8)), float).ravel() for i in images]
    ...     return np.array([r - r.mean() for r in rows])
    >>> rng = np.random.default_rng(0)
    >>> def scene():
    ...     noise = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    ...     return Image.fromarray(noise).resize((128, 96), Image.BICUBIC)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = pathlib.Path(folder)
    ...     first = scene()
    ...     first.save(root / "a_sharp.png")
    ...     first.filter(ImageFilter.GaussianBlur(2)).save(root / "b_blurred.png")
    ...     scene().save(root / "c_other.png")
    ...     _ = (root / "d_broken.jpg").write_bytes(b"not an image")
    ...     table = rank_photos(root, embedder=FunctionTransformer(pixels))
    >>> table[["path", "group", "rank", "best"]]
                path  group  rank   best
    0    a_sharp.png      1     1   True
    1  b_blurred.png      1     2  False
    2    c_other.png      2     1   True
    3   d_broken.jpg   <NA>  <NA>  False
    >>> table["confidence"][1], table["reason"][3]
    ('near-certain duplicate', 'not a recognised image format (corrupt file?)')
    """
    if isinstance(images, (str, os.PathLike)):
        root = Path(images)
        if not root.is_dir():
            raise ValueError(f"{root} is not a folder.")
        files = find_images(root)
        shown = [f.relative_to(root).as_posix() for f in files]
    else:
        files = [Path(p) for p in images]
        shown = [str(p) for p in images]
    if not files:
        raise ValueError(f"no image files found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}).")
    if score_name is None:
        score_name = "quality baseline" if scorer is None else "model score"
    scan = scan_photos(files, cache_dir=cache_dir, thumbnails=thumbnails, num_workers=num_workers)
    reason = scan["reason"].to_numpy(dtype=object)
    good = np.flatnonzero(reason == "")
    if embedder is None:
        embedder = _default_embedder(cache_dir, device, progress, num_workers)
    vectors = _grouping_vectors(
        [files[i] for i in good], scan["digest"].to_numpy()[good], embedder, view, cache_dir, num_workers
    )
    embedded = np.isfinite(vectors).all(axis=1)
    reason[good[~embedded]] = "the embedder could not load it"
    good = good[embedded]
    details = (
        np.stack([scan["detail"].iat[i] for i in good])
        if len(good)
        else np.empty((0, DETAIL_SIDE, DETAIL_SIDE), np.float32)
    )
    captured = scan["captured"].to_numpy()[good]
    pairs = photo_pairs(vectors[embedded], details, capture_times=captured, burst_seconds=burst_seconds)
    groups = np.full(len(files), -1, dtype=np.int64)
    groups[good] = group_photos(
        vectors[embedded],
        details,
        min_similarity=min_similarity,
        capture_times=captured,
        burst_seconds=burst_seconds,
        linkage=linkage,
        pairs=pairs,
    )
    scores = np.full(len(files), np.nan)
    if len(good):
        chosen = (
            scan["baseline"].to_numpy()[good] if scorer is None else scorer([str(files[i]) for i in good])
        )
        scores[good] = np.asarray(chosen, dtype=np.float64).reshape(len(good))
    table = pd.DataFrame({"path": shown, "group": groups, "score": scores, "reason": reason})
    table["order"] = np.arange(len(table))  # also the index: labels below are file positions
    if thumbnails:
        table["thumbnail"] = scan["thumbnail"].to_numpy()
    table = table.sort_values(["group", "score", "order"], ascending=[True, False, True], na_position="last")
    readable = table["group"] >= 0
    table["rank"] = np.where(readable, table.groupby("group").cumcount() + 1, 0)
    table["best"] = (table["rank"] == 1) & readable
    # how sure each grouping is, against each group's best
    photo, group, to_best = grouping_confidence(groups[good], table.loc[good, "best"].to_numpy(), pairs)
    table["confidence"], table["group_confidence"], table["similarity_to_best"] = "", "", np.nan
    table.loc[good, "confidence"], table.loc[good, "group_confidence"] = photo, group
    table.loc[good, "similarity_to_best"] = to_best
    terms = scan[list(QUALITY_TERMS)] if scorer is None else None  # indexed by file, like "order"
    table["why_best"] = _why_best(table.set_index("order", drop=False), terms, score_name).to_numpy()
    table["rank"] = pd.array(table["rank"], dtype="Int64")
    table.loc[~readable, "rank"] = pd.NA
    table["group"] = pd.array(np.where(readable, table["group"] + 1, 0), dtype="Int64")
    table.loc[~readable, "group"] = pd.NA
    table = pd.concat([table[readable], table[~readable].sort_values("order")])
    extra = ["thumbnail"] if thumbnails else []
    return table[list(RANKING_COLUMNS) + extra].reset_index(drop=True)


def write_collection(
    table: pd.DataFrame,
    output: str | os.PathLike,
    *,
    title: str = "Photo collection",
    score_name: str = "quality baseline",
) -> dict[str, Path]:
    """Write ``ranking.csv`` and ``contact_sheet.html`` into the folder ``output``.

    ``ranking.csv`` holds :data:`RANKING_COLUMNS` (empty group / score / rank for unreadable
    files). ``contact_sheet.html`` is one self-contained page: thumbnails are embedded as data
    URIs, so it opens offline and can be moved or mailed alone. Both are written to a temporary
    file and renamed into place, so an interrupted run never leaves half a file.

    Parameters
    ----------
    table : DataFrame
        :func:`rank_photos`' output (with ``thumbnail`` for pictures on the sheet).
    output : str or path-like
        Folder; created if missing.
    title, score_name : str
        Shown on the sheet.

    Returns
    -------
    paths : dict
        ``{'csv': ..., 'html': ...}``.

    Examples
    --------
    A table as :func:`rank_photos` returns it (written by hand here):

    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> from skpercept.photos import SURE, write_collection
    >>> table = pd.DataFrame({
    ...     "path": ["a.jpg", "b.jpg"], "group": [1, 1], "group_confidence": [SURE, SURE],
    ...     "score": [0.9, 0.4], "rank": [1, 2], "best": [True, False], "confidence": ["", SURE],
    ...     "similarity_to_best": [None, 0.93], "why_best": ["highest score", ""], "reason": ["", ""]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = write_collection(table, pathlib.Path(folder) / "out", title="Holiday")
    ...     rows = paths["csv"].read_text().splitlines()
    ...     page = paths["html"].read_text()
    >>> sorted(path.name for path in paths.values())
    ['contact_sheet.html', 'ranking.csv']
    >>> rows[1]
    'a.jpg,1,near-certain duplicate,0.9,1,True,,,highest score,'
    >>> "<title>Holiday</title>" in page
    True
    """
    table = as_pandas_frame(table, "table")  # rank_photos' table, perhaps edited in polars
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    paths = collection_files(folder)
    page = contact_sheet_html(table, title=title, score_name=score_name)
    with replace_together():  # the CSV and its contact sheet change together or not at all
        with atomic_write(paths["csv"], "w", encoding="utf-8", newline="") as file:
            table[list(RANKING_COLUMNS)].to_csv(file, index=False, float_format="%.6g")
        with atomic_write(paths["html"], "w", encoding="utf-8") as file:
            file.write(page)
    return paths


def collection_files(folder: str | os.PathLike) -> dict[str, Path]:
    """The files :func:`write_collection` writes into ``folder``: ``{'csv': ..., 'html': ...}``.

    Examples
    --------
    >>> from skpercept.photos import collection_files
    >>> {kind: path.as_posix() for kind, path in collection_files("out").items()}
    {'csv': 'out/ranking.csv', 'html': 'out/contact_sheet.html'}
    """
    folder = Path(folder)
    return {"csv": folder / "ranking.csv", "html": folder / "contact_sheet.html"}
