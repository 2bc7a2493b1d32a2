"""Test helpers for the embedders: a zoo of good and bad image files, a tiny open_clip config."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

TINY_CLIP = "skpercept-tiny-clip"
TINY_TIMM = "test_efficientnet"


def register_tiny_clip(folder: Path) -> str:
    """Register a ~1.6 M-parameter open_clip config (random init only) and return its name."""
    import open_clip

    if TINY_CLIP in open_clip.list_models():
        return TINY_CLIP
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        # The text tower keeps CLIP's real vocabulary and context so open_clip's own tokenizer
        # for this config works unchanged.
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY_CLIP}.json")
    return TINY_CLIP


def photo(seed: int = 0, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """A smooth random RGB image (H x W x 3 uint8) that compresses like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.BILINEAR))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims a huge image (decompression-bomb sized)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def make_zoo(folder: Path) -> dict[str, Path]:
    """Write the good and bad image files; return {kind: path}. 'missing' is not written."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        files[name.split(".")[0]] = folder / name
        image.save(folder / name, **kwargs)

    save("good.jpg", Image.fromarray(photo(0)), quality=90)
    save("good2.png", Image.fromarray(photo(1)))
    save("gray.png", Image.fromarray(photo(2)).convert("L"))
    ramp = (np.linspace(0, 65535, 48 * 40).reshape(48, 40)).astype(np.uint16)
    save("sixteen.png", Image.fromarray(ramp))
    save("cmyk.jpg", Image.fromarray(photo(3)).convert("CMYK"), quality=90)
    rgba = np.dstack([photo(4), np.full((48, 40), 255, np.uint8)])
    rgba[:, :20, 3] = 0
    save("rgba.png", Image.fromarray(rgba, mode="RGBA"))
    save("palette.png", Image.fromarray(photo(5)).convert("P", palette=Image.ADAPTIVE))
    transparent = Image.fromarray(photo(6)).convert("P", palette=Image.ADAPTIVE)
    save("palette_alpha.png", transparent, transparency=0)

    buffer = io.BytesIO()
    noisy = np.random.default_rng(7).integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=95)
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    files["corrupt"] = folder / "corrupt.jpg"
    files["corrupt"].write_bytes(b"this is not a jpeg at all" * 20)
    files["empty"] = folder / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["bomb"] = folder / "bomb.png"
    files["bomb"].write_bytes(bomb_png())
    files["missing"] = folder / "missing.jpg"
    return files


GOOD_KINDS = ("good", "good2", "gray", "sixteen", "cmyk", "rgba", "palette", "palette_alpha")
BAD_KINDS = ("missing", "truncated", "corrupt", "empty", "bomb")


def tiny_backbone_builder(tta: bool | None = None):
    """A backbone builder of the tiny random timm model (``tta=None``: flip as the caller asks)."""
    from skpercept.embed import TimmEmbedder

    def build(model, pretrained, *, flip, device, cache_dir, progress, num_workers):
        return TimmEmbedder(
            model_name=TINY_TIMM,
            pretrained=None,
            device="cpu",
            tta=flip if tta is None else tta,
            cache_dir=cache_dir,
            num_workers=0,
            normalize=False,
        )

    return build


def use_tiny_backbone(name: str = "lite0", tta: bool | None = None):
    """Register the tiny model under ``name`` (a shipped backbone, say); return what it replaced."""
    from skpercept.embed import TimmEmbedder, get_backbone, register_backbone

    previous = get_backbone(name)[0]
    register_backbone(
        name, tiny_backbone_builder(tta), description="tiny test model", estimator=TimmEmbedder, replace=True
    )
    return previous


def restore_backbone(spec) -> None:
    """Register ``spec`` again (undo :func:`use_tiny_backbone`)."""
    from skpercept.embed import register_backbone

    register_backbone(
        spec.name,
        spec.build,
        description=spec.description,
        family=spec.family,
        estimator=spec.estimator,
        replace=True,
    )
