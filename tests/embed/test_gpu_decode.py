"""The GPU decode path through its CPU twin: the same functions and batching with device='cpu'.

``decode_jpegs`` and ``TensorPreprocess`` run unchanged on the CPU (libjpeg-turbo instead of
nvJPEG), so the batching, EXIF handling, fallbacks and error policy of ``decode='gpu'`` are
tested here without a GPU; ``tests/embed/test_gpu.py`` runs the real thing on CUDA.

Tolerances: the twin's preprocessed tensor is within two 8-bit levels (2/255 / std in
normalised units; on average under 1 % of a level) of PIL's full decode followed by the model's
own transform (both decode with libjpeg-turbo; the resamplers differ only in rounding). Against the embedder's PIL path, which
decodes large JPEGs at reduced scale, embeddings agree to cosine similarity >= 0.995.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from sklearn.utils._param_validation import InvalidParameterError

from skpercept.embed import BadImageWarning, CLIPEmbedder, ImageLoadError, TimmEmbedder, load_image
from skpercept.embed._gpu_decode import TensorPreprocess, apply_orientation, decode_jpegs, sniff
from tests._images import TINY_TIMM, make_zoo, photo, register_tiny_clip


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return make_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """Large photo-like JPEGs, one of them EXIF-rotated (orientation 6)."""
    folder = tmp_path_factory.mktemp("jpegs")
    paths = []
    for i in range(3):
        path = folder / f"big{i}.jpg"
        image = Image.fromarray(photo(i, size=(600, 800)))
        if i == 2:
            exif = Image.Exif()
            exif[0x0112] = 6
            image.save(path, quality=90, exif=exif.tobytes())
        else:
            image.save(path, quality=90)
        paths.append(str(path))
    return paths


@pytest.fixture
def twin(monkeypatch):
    """Route the embedders through the tensor decoder with the CPU as its device."""
    monkeypatch.setattr(TimmEmbedder, "_decode_device", lambda self: "cpu")
    monkeypatch.setattr(CLIPEmbedder, "_decode_device", lambda self: "cpu")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pil_exif_transpose(orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    got = apply_orientation(torch.from_numpy(pixels).permute(2, 0, 1), orientation)
    np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize("model", ["lite0", "vit", "v2"])
def test_twin_preprocessing_within_two_levels_of_pil(jpegs, model):
    if model == "v2":  # torchvision v2 steps (ToImage, ToDtype), as the LoRA and contrastive towers use
        from skpercept.finetune._images import make_transform

        preprocess = make_transform(64, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), None)
    else:
        emb = TimmEmbedder() if model == "lite0" else CLIPEmbedder(pretrained=None)
        preprocess = emb.set_params(device="cpu").fit(jpegs).get_preprocess()
    tensor_preprocess = TensorPreprocess.from_transform(preprocess)
    assert tensor_preprocess is not None
    reference = torch.stack([preprocess(load_image(p)) for p in jpegs])  # full decode, EXIF applied
    twin = tensor_preprocess(decode_jpegs([sniff(p) for p in jpegs], "cpu"))
    one_level = 1 / 255 / min(tensor_preprocess.std)
    assert twin.shape == reference.shape
    assert (twin - reference).abs().max().item() <= 2 * one_level + 1e-5
    assert (twin - reference).abs().mean().item() < 0.01 * one_level


def test_twin_embedder_matches_pil_path_with_fallbacks(jpegs, zoo, twin):
    sources = [*jpegs, str(zoo["good2"]), str(zoo["cmyk"]), photo(3), str(zoo["good"])]
    pil = TimmEmbedder(device="cpu", decode="cpu").fit(sources)
    emb = TimmEmbedder(device="cpu").fit(sources)
    got = emb.transform(sources)
    expected = pil.transform(sources)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert (cosines(got, expected) >= 0.995).all()
    # PNG, CMYK JPEG and in-memory images take the PIL fallback: same pixels, same vectors.
    np.testing.assert_allclose(got[3:6], expected[3:6], atol=1e-5)


def test_twin_handles_bad_files_per_on_error(jpegs, zoo, twin):
    sources = [jpegs[0], str(zoo["truncated"]), str(zoo["corrupt"]), jpegs[1], str(zoo["missing"])]
    emb = TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", on_error="nan")
    with pytest.warns(BadImageWarning, match="3 image"):
        out = emb.fit(sources).transform(sources)
    assert np.isnan(out[[1, 2, 4]]).all() and np.isfinite(out[[0, 3]]).all()
    with pytest.raises(ImageLoadError, match=r"truncated.*row 1"):
        emb.set_params(on_error="raise").transform(sources)


def test_decoder_rejecting_a_batch_falls_back_to_pil(jpegs, twin, monkeypatch):
    import skpercept.embed._gpu_decode as gpu_decode

    def reject(files, device):
        raise RuntimeError("nvjpeg: unsupported")

    emb = TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=2).fit(jpegs)
    expected = emb.transform(jpegs)
    monkeypatch.setattr(gpu_decode, "decode_jpegs", reject)
    got = emb.transform(jpegs)
    assert (cosines(got, expected) >= 0.995).all()


def test_sniff_sends_only_complete_rgb_jpegs_to_the_tensor_decoder(jpegs, zoo):
    assert sniff(jpegs[2]).orientation == 6
    assert sniff(jpegs[0]).orientation == 1
    for kind in ("good2", "cmyk", "truncated", "corrupt", "bomb"):
        assert sniff(zoo[kind]) is None, kind
    assert sniff(photo(0)) is None
    with pytest.raises(ImageLoadError, match="not found"):
        sniff(zoo["missing"])


def test_tensor_preprocess_refuses_transforms_it_cannot_replay(tmp_path):
    from torchvision import transforms

    assert TensorPreprocess.from_transform(transforms.Compose([transforms.Grayscale()])) is None
    no_crop = transforms.Compose(
        [transforms.Resize(32), transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]
    )
    assert TensorPreprocess.from_transform(no_crop) is None
    clip = CLIPEmbedder(model_name=register_tiny_clip(tmp_path), pretrained=None, device="cpu")
    assert TensorPreprocess.from_transform(clip.fit([photo(0)]).get_preprocess()) is not None


def test_decode_parameter_is_validated_and_gpu_needs_cuda(jpegs):
    with pytest.raises(InvalidParameterError, match="decode"):
        TimmEmbedder(decode="nvjpeg").fit(jpegs)
    emb = TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", decode="gpu").fit(jpegs)
    with pytest.raises(ValueError, match="needs device='cuda'"):
        emb.transform(jpegs)
    # 'auto' on a CPU model decodes with PIL: no tensor decoder, no error.
    assert np.isfinite(emb.set_params(decode="auto").transform(jpegs)).all()
