"""Image decoding shared by every image consumer: files / PIL images / arrays -> RGB PIL images.

One place decides how a file becomes pixels, so the embedders, their cache keys and LoRA
fine-tuning all see the same image: EXIF orientation applied, any mode (16-bit, CMYK, RGBA,
palette, float) mapped to 8-bit RGB, images reduced when the model needs far fewer pixels
(JPEG draft mode, then an integer box filter for any format), and absurdly large images
refused before their pixels are allocated.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skpercept._io import InputFileError, check_input_file

#: Largest image (width x height) that is decoded. PIL's own guard warns at ~89 Mpx and only
#: errors at twice that; a 178-Mpx RGB decode is ~0.5 GB, so skpercept refuses earlier, from the
#: header alone, before any pixel memory is allocated.
MAX_IMAGE_PIXELS = 64_000_000


class ImageLoadError(OSError):
    """An image could not be read or decoded; ``source`` names it and ``reason`` says why.

    Examples
    --------
    >>> from skpercept.embed import ImageLoadError, load_image
    >>> try:
    ...     load_image("no/such/file.jpg")
    ... except ImageLoadError as exc:
    ...     print(exc.source, "-", exc.reason)
    no/such/file.jpg - file not found
    >>> issubclass(ImageLoadError, OSError)  # ``except OSError`` catches it too
    True
    """

    def __init__(self, source: Any, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"Cannot load image {describe_source(source)}: {reason}")


def describe_source(source: Any) -> str:
    """A short human-readable name for an image source (a path, or the kind of object)."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    return f"<{type(source).__name__}>"


def resolve_path(source: str | os.PathLike, image_root: str | os.PathLike | None) -> Path:
    """Join a relative path onto ``image_root`` (absolute paths and ``image_root=None`` pass)."""
    path = Path(source).expanduser()
    if image_root is not None and not path.is_absolute():
        path = Path(image_root).expanduser() / path
    return path


def is_image_source(value: Any) -> bool:
    """True for the kinds of object an embedder accepts as one image."""
    if isinstance(value, (str, os.PathLike, Image.Image)):
        return True
    return isinstance(value, np.ndarray) and value.ndim in (2, 3)


def read_source_bytes(source: Any, image_root: str | os.PathLike | None = None) -> bytes:
    """The bytes that identify an image's content (file bytes, or pixels + shape for in-memory)."""
    if isinstance(source, (str, os.PathLike)):
        path = resolve_path(source, image_root)
        try:
            return check_input_file(path).read_bytes()
        except FileNotFoundError:
            raise ImageLoadError(path, "file not found") from None
        except InputFileError as exc:
            raise ImageLoadError(path, str(exc).removeprefix(f"{path} ")) from None
        except OSError as exc:
            raise ImageLoadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if isinstance(source, Image.Image):
        header = f"PIL:{source.mode}:{source.size}".encode()
        return header + source.tobytes()
    if isinstance(source, np.ndarray):
        header = f"ndarray:{source.dtype.str}:{source.shape}".encode()
        return header + np.ascontiguousarray(source).tobytes()
    raise ImageLoadError(source, "not an image path, PIL image or HxW[xC] array")


def content_hash(data: bytes) -> str:
    """Hex digest used as the content part of cache keys (128-bit BLAKE2b)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def load_image(
    source: Any,
    image_root: str | os.PathLike | None = None,
    target_size: int | None = None,
    data: bytes | None = None,
) -> Image.Image:
    """Decode one image into an 8-bit RGB PIL image.

    Parameters
    ----------
    source : str, path-like, PIL.Image.Image or ndarray
        A file path (relative paths are joined onto ``image_root``), a PIL image, or an
        ``HxW`` / ``HxWxC`` array (C = 1, 3 or 4; uint8, uint16, or float: values up to 1 are
        read as [0, 1], up to 255 or 65535 as 8- or 16-bit levels).
    image_root : str or path-like, default=None
        Folder that relative paths are relative to.
    target_size : int, default=None
        Smallest side the caller will resize to. Images at least twice as large are reduced
        to the smallest size that still keeps both sides >= ``target_size``, so the later
        resize sees the same detail it would keep anyway at a fraction of the cost: JPEG files
        are decoded in draft mode (DCT scaling by 1/2, 1/4 or 1/8, several times faster than a
        full decode, before EXIF rotation; a square target makes the choice independent of
        a 90° rotation), and whatever is still twice too large (PNG, WebP, in-memory images,
        huge JPEGs) is box-filtered by an integer factor (``Image.reduce``). ``None`` keeps
        the full resolution.
    data : bytes, default=None
        The file's bytes when the caller already read them (avoids a second read).

    Returns
    -------
    image : PIL.Image.Image
        Mode ``'RGB'``, EXIF orientation applied, transparency composited onto white.

    Raises
    ------
    ImageLoadError
        Missing, unreadable, zero-byte, corrupt, truncated, or larger than
        ``MAX_IMAGE_PIXELS``; the message names the file and the reason.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import load_image
    >>> load_image(np.zeros((4, 6), dtype=np.uint16)).size
    (6, 4)
    """
    if isinstance(source, Image.Image):
        return _reduce(_to_rgb(source, source), target_size)
    if isinstance(source, np.ndarray):
        return _reduce(_to_rgb(_array_to_pil(source), source), target_size)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageLoadError(source, "not an image path, PIL image or HxW[xC] array")
    path = resolve_path(source, image_root)
    if data is None:
        data = read_source_bytes(path)
    if not data:
        raise ImageLoadError(path, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is stricter; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageLoadError(
                    path,
                    f"{width}x{height} = {width * height / 1e6:.0f} Mpx exceeds the "
                    f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit (decompression-bomb guard; raise "
                    "skpercept.embed._decode.MAX_IMAGE_PIXELS if the image is genuine)",
                )
            if target_size is not None and image.format == "JPEG":
                image.draft("RGB", (int(target_size), int(target_size)))
            image.load()
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not a recognised image format (corrupt file?)") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"decompression-bomb guard: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL reports truncation as OSError("image file is truncated ...") and some corrupt
        # headers as SyntaxError/ValueError.
        raise ImageLoadError(path, f"corrupt or truncated image data ({exc})") from None
    return _reduce(_to_rgb(image, path), target_size)


def _reduce(image: Image.Image, target_size: int | None) -> Image.Image:
    """Box-filter by the largest integer factor that keeps both sides >= ``target_size``."""
    if target_size is None:
        return image
    factor = min(image.size) // int(target_size)
    return image.reduce(factor) if factor >= 2 else image


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageLoadError(array, "arrays must be HxW or HxWxC with C in (1, 3, 4)")
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageLoadError(array, "float image contains NaN or inf")
        pixels = (np.clip(array / float_scale(array), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        pixels = np.clip(array, 0, 255).astype(np.uint8) * (255 if array.dtype == bool else 1)
    else:
        raise ImageLoadError(array, f"unsupported dtype {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(pixels))


def _to_rgb(image: Image.Image, source: Any) -> Image.Image:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:
        pass
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image, source)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA") or mode == "RGBa":
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    # CMYK, YCbCr, LAB, HSV, L, 1: PIL's converters handle these correctly.
    return image.convert("RGB")


def float_scale(array: np.ndarray) -> float:
    """What a float image's values count up to, read off their range: 1.0 (the [0, 1]
    convention), else 255 or 65535 (8- or 16-bit values stored as floats), else the maximum."""
    high = float(array.max(initial=0.0))
    for top in (1.0, 255.0, 65535.0):
        if high <= top:
            return top
    return high


def _high_depth_to_rgb(image: Image.Image, source: Any) -> Image.Image:
    # PIL's convert() clips 16-bit values at 255 (a 16-bit photo becomes almost all white), so
    # rescale by the type's range instead: 16-bit by 1/257, float images by their real range
    # (a float TIFF holding 0-255 is 8-bit values, not an overexposed [0, 1] image).
    array = np.asarray(image)
    if image.mode == "F":
        if not np.all(np.isfinite(array)):
            raise ImageLoadError(source, "float image contains NaN or inf")
        scaled = np.clip(array / float_scale(array), 0.0, 1.0) * 255.0
    elif image.mode == "I" and array.max(initial=0) <= 255 and array.min(initial=0) >= 0:
        scaled = array.astype(np.float64)
    else:
        scaled = np.clip(array.astype(np.float64), 0, 65535) / 257.0
    gray = Image.fromarray((scaled + 0.5).astype(np.uint8), mode="L")
    return gray.convert("RGB")


class ImageDataset:
    """A torch-style map dataset of ``(index, image)`` built on :func:`load_image`.

    Usable directly with ``torch.utils.data.DataLoader`` (it needs only ``__len__`` and
    ``__getitem__``). The transform is a parameter so that training code can pass random
    augmentations while embedding passes the deterministic evaluation preprocessing.

    Parameters
    ----------
    sources : sequence
        Image paths, PIL images or arrays.
    image_root : str or path-like, default=None
        Folder that relative paths are relative to.
    transform : callable, default=None
        Applied to the decoded RGB PIL image (e.g. a torchvision transform returning a
        tensor). ``None`` returns the PIL image.
    target_size : int, default=None
        Passed to :func:`load_image` for JPEG draft-mode decoding.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import ImageDataset
    >>> ds = ImageDataset([np.zeros((8, 8, 3), dtype=np.uint8)], transform=np.asarray)
    >>> index, pixels = ds[0]
    >>> index, pixels.shape
    (0, (8, 8, 3))
    """

    def __init__(
        self,
        sources: Sequence[Any],
        image_root: str | os.PathLike | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        target_size: int | None = None,
    ) -> None:
        self.sources = sources
        self.image_root = image_root
        self.transform = transform
        self.target_size = target_size

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        image = load_image(self.sources[index], self.image_root, self.target_size)
        return index, image if self.transform is None else self.transform(image)
