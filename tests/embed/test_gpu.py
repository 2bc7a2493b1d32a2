"""Embedders on a CUDA device: agreement with CPU, fp16/bf16 autocast, GPU-fitted pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from skpercept.embed import CLIPEmbedder, TimmEmbedder
from tests._images import TINY_TIMM, photo, register_tiny_clip

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

IMAGES = [photo(i, size=(96, 80)) for i in range(6)]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def makers(tmp_path_factory):
    tiny_clip = register_tiny_clip(tmp_path_factory.mktemp("clip_cfg"))
    return {
        "timm-tiny": lambda **kw: TimmEmbedder(model_name=TINY_TIMM, pretrained=None, **kw),
        "lite0-shipped": lambda **kw: TimmEmbedder(**kw),
        "clip-tiny": lambda **kw: CLIPEmbedder(model_name=tiny_clip, pretrained=None, **kw),
        "clip-vit-b-32": lambda **kw: CLIPEmbedder(pretrained=None, **kw),
    }


@pytest.mark.parametrize("name", ["timm-tiny", "lite0-shipped", "clip-tiny", "clip-vit-b-32"])
def test_cuda_matches_cpu_and_half_precisions_are_close(makers, name):
    make = makers[name]
    cpu = make(device="cpu").fit(IMAGES).transform(IMAGES)
    gpu = make(device="cuda").fit(IMAGES)
    assert gpu._device == "cuda"
    full = gpu.transform(IMAGES)
    assert full.dtype == np.float32
    assert (cosines(cpu, full) > 0.999).all()
    for precision in ("fp16", "bf16"):
        half = make(device="cuda", precision=precision).fit(IMAGES).transform(IMAGES)
        assert half.dtype == np.float32 and np.isfinite(half).all()
        assert (cosines(full, half) > 0.98).all(), precision


def test_auto_picks_cuda_and_gpu_fitted_pickle_runs_on_cpu(makers):
    emb = makers["timm-tiny"](device="auto", bundle_weights=True).fit(IMAGES)
    on_gpu = emb.transform(IMAGES)
    assert emb._device == "cuda"
    loaded = pickle.loads(pickle.dumps(emb)).set_params(device="cpu")
    assert (cosines(loaded.transform(IMAGES), on_gpu) > 0.999).all()
    assert loaded._device == "cpu"


def test_clip_text_on_cuda(makers):
    emb = makers["clip-tiny"](device="cuda", precision="fp16").fit(IMAGES)
    text = emb.embed_text(["a face", "a cat"])
    assert text.shape == (2, 16) and np.isfinite(text).all()


@pytest.fixture(scope="module")
def jpeg_files(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("jpegs")
    paths = []
    for i in range(5):
        path = folder / f"{i}.jpg"
        Image.fromarray(photo(i, size=(600, 800))).save(path, quality=90)
        paths.append(str(path))
    png = folder / "fallback.png"
    Image.fromarray(photo(9, size=(300, 200))).save(png)
    return [*paths, str(png)]


@pytest.mark.parametrize("name", ["lite0-shipped", "clip-vit-b-32"])
def test_nvjpeg_decode_matches_pil_decode(makers, jpeg_files, name):
    make = makers[name]
    pil = make(device="cuda", decode="cpu").fit(jpeg_files)
    gpu = make(device="cuda", decode="auto").fit(jpeg_files)
    expected = pil.transform(jpeg_files)
    got = gpu.transform(jpeg_files)
    assert gpu._decode_device() == "cuda" and pil._decode_device() is None
    assert (cosines(got, expected) >= 0.995).all()
    # The model runs channels_last on CUDA.
    conv = next(m for m in gpu._model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_torch_compile_matches_eager(makers, jpeg_files):
    eager = makers["timm-tiny"](device="cuda").fit(jpeg_files).transform(jpeg_files)
    compiled = makers["timm-tiny"](device="cuda", torch_compile=True).fit(jpeg_files).transform(jpeg_files)
    assert (cosines(eager, compiled) > 0.999).all()
