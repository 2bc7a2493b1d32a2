"""Decoding: every mode to RGB, EXIF, JPEG draft mode, the bad-image zoo, the Dataset."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skpercept.embed import ImageDataset, ImageLoadError, load_image
from tests._images import BAD_KINDS, make_zoo, photo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return make_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.mark.parametrize(
    "kind", ["good", "good2", "gray", "sixteen", "cmyk", "rgba", "palette", "palette_alpha"]
)
def test_every_good_mode_becomes_8bit_rgb(zoo, kind):
    image = load_image(zoo[kind])
    assert image.mode == "RGB"
    assert image.size == (40, 48)


def test_sixteen_bit_is_rescaled_not_clipped(zoo):
    pixels = np.asarray(load_image(zoo["sixteen"]))
    # A 0..65535 ramp must become a 0..255 ramp, not mostly-white clipped values.
    assert pixels.min() == 0 and pixels.max() == 255
    assert 100 < pixels.mean() < 155


def test_transparency_is_composited_on_white(zoo):
    pixels = np.asarray(load_image(zoo["rgba"]))
    assert (pixels[:, :20] == 255).all()
    assert not (pixels[:, 20:] == 255).all()


def test_cmyk_close_to_source(zoo):
    pixels = np.asarray(load_image(zoo["cmyk"])).astype(float)
    assert np.abs(pixels - photo(3)).mean() < 20


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_files_raise_naming_file_and_reason(zoo, kind):
    reasons = {
        "missing": "not found",
        "truncated": "truncated",
        "corrupt": "not a recognised",
        "empty": "empty",
        "bomb": "decompression-bomb",
    }
    with pytest.raises(ImageLoadError, match=reasons[kind]) as info:
        load_image(zoo[kind])
    assert zoo[kind].name in str(info.value)


def test_image_root_joins_relative_paths(zoo):
    image = load_image(zoo["good"].name, image_root=zoo["good"].parent)
    assert image.size == (40, 48)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(photo(0, size=(30, 60)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rotated.jpg").size == (30, 60)


def test_jpeg_draft_mode_decodes_at_reduced_scale(tmp_path):
    Image.fromarray(photo(0, size=(768, 1024))).save(tmp_path / "big.jpg", quality=90)
    # 1/2 scale (512x384) is the smallest that keeps both sides >= 224.
    assert load_image(tmp_path / "big.jpg", target_size=224).size == (512, 384)
    assert load_image(tmp_path / "big.jpg").size == (1024, 768)


def test_arrays_and_pil_images(tmp_path):
    rgb = photo(0)
    assert np.array_equal(np.asarray(load_image(rgb)), rgb)
    assert np.array_equal(np.asarray(load_image(Image.fromarray(rgb))), rgb)
    assert load_image(rgb[..., 0]).mode == "RGB"
    assert np.asarray(load_image(np.ones((4, 4, 3)))).max() == 255
    assert np.asarray(load_image(np.full((4, 4), 65535, np.uint16))).min() == 255
    with pytest.raises(ImageLoadError, match="HxW"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.full((4, 4, 3), np.nan))


def test_bytes_argument_avoids_second_read(zoo):
    data = zoo["good"].read_bytes()
    assert load_image("never-read.jpg", data=data).size == (40, 48)
    buffer = io.BytesIO()
    Image.fromarray(photo(1)).save(buffer, format="PNG")
    assert load_image("x.png", data=buffer.getvalue()).mode == "RGB"


def test_dataset_with_dataloader_and_transform(zoo):
    def to_tensor(image):
        return torch.from_numpy(np.array(image.resize((8, 8)))).permute(2, 0, 1)

    dataset = ImageDataset(
        [zoo["good"].name, zoo["cmyk"].name], image_root=zoo["good"].parent, transform=to_tensor
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    index, batch = next(iter(loader))
    assert index.tolist() == [0, 1] and batch.shape == (2, 3, 8, 8)
    assert isinstance(ImageDataset([photo(0)])[0][1], Image.Image)


def test_draft_mode_on_exif_rotated_jpeg(tmp_path):
    image = Image.fromarray(photo(0, size=(768, 1024)))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 1024 wide x 768 high, displayed 768 x 1024
    image.save(tmp_path / "rotated.jpg", quality=90, exif=exif.tobytes())
    # Drafted to 1/2 (512x384) before rotating, then turned upright.
    assert load_image(tmp_path / "rotated.jpg", target_size=224).size == (384, 512)
    assert load_image(tmp_path / "rotated.jpg").size == (768, 1024)


@pytest.mark.parametrize("suffix", ["png", "webp"])
def test_non_jpeg_files_and_arrays_are_reduced_too(tmp_path, suffix):
    pixels = photo(1, size=(1000, 1200))
    Image.fromarray(pixels).save(tmp_path / f"big.{suffix}")
    # Integer box filter by 4: both sides stay >= 224.
    assert load_image(tmp_path / f"big.{suffix}", target_size=224).size == (300, 250)
    assert load_image(pixels, target_size=224).size == (300, 250)
    assert load_image(pixels, target_size=600).size == (1200, 1000)  # < 2x: untouched


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_reduced_scale_decoding_keeps_embeddings(tmp_path, kind):
    """Stated tolerance: reduced-scale decoding vs full decode + the model's own transform,
    EfficientNet-Lite0 (shipped weights) on 1024-px and 4032x3024 photos: cosine >= 0.995."""
    from skpercept.embed import TimmEmbedder

    faces = sorted(
        (Path(__file__).resolve().parents[2] / "skpercept/datasets/data/omi/images").glob("*.jpg")
    )[:3]
    paths = []
    for i, face in enumerate(faces):
        size = (1024, 1024) if i < 2 else (4032, 3024)
        path = tmp_path / f"{i}.{'jpg' if kind == 'jpeg' else 'png'}"
        Image.open(face).convert("RGB").resize(size, Image.BICUBIC).save(
            path, **({"quality": 90} if kind == "jpeg" else {})
        )
        paths.append(path)
    emb = TimmEmbedder(device="cpu", normalize=False).fit(paths)
    preprocess = emb.get_preprocess()
    with torch.inference_mode():
        full = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        reference = emb._model(full).numpy()
    got = emb.transform(paths)
    cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
    assert (cosine >= 0.995).all(), cosine


def test_batch_normalisation_of_8bit_pixels_is_the_transforms_own(tmp_path):
    """Threads stop at 8-bit pixels and the batch is normalised at once: the same numbers as the
    model's own transform image by image (timm's and open_clip's), bit for bit."""
    from torchvision.transforms import v2

    from skpercept.embed import CLIPEmbedder, TimmEmbedder
    from skpercept.embed._gpu_decode import Uint8Preprocess
    from tests._images import TINY_TIMM, register_tiny_clip

    paths = []
    for i, size in enumerate([(48, 40), (200, 300), (64, 64)]):
        paths.append(tmp_path / f"{i}.jpg")
        Image.fromarray(photo(seed=i, size=size)).save(paths[-1])
    clip = register_tiny_clip(tmp_path / "clip")
    for emb in (
        TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=2, normalize=False),
        CLIPEmbedder(model_name=clip, pretrained=None, device="cpu", batch_size=2, normalize=False),
    ):
        emb.fit(paths)
        split = Uint8Preprocess.from_transform(emb.get_preprocess())
        assert split is not None
        images = [load_image(p) for p in paths]
        batch = split.normalize(torch.stack([split.pixels(image) for image in images]))
        expected = torch.stack([emb.get_preprocess()(image) for image in images])
        assert batch.dtype == torch.float32 and batch.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch, expected)
        got = emb.transform(paths)
        emb._uint8_preprocess = None  # the per-image float path
        np.testing.assert_array_equal(got, emb.transform(paths))
    # transforms that are not PIL steps + to-tensor + Normalize keep the per-image path
    tensor_first = v2.Compose(
        [v2.ToImage(), v2.Resize(32), v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True)]
    )
    assert Uint8Preprocess.from_transform(tensor_first) is None
    assert Uint8Preprocess.from_transform(lambda image: image) is None
