"""The tower builder shared by the embedders and LoRA: weights sources, specs, rebuilding."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from skpercept.embed import CLIPEmbedder, TimmEmbedder
from skpercept.embed.towers import (
    CLIP_MEAN,
    TowerSpec,
    build_tower,
    parse_model_name,
    rebuild_tower,
    tower_feature_dim,
    weights_identity,
)
from tests._images import TINY_TIMM, photo, register_tiny_clip


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return register_tiny_clip(tmp_path_factory.mktemp("clip_cfg"))


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_timm_tower_from_a_file_rebuilds_and_matches_the_embedder(tmp_path):
    torch.manual_seed(1)
    source, _ = build_tower(f"timm:{TINY_TIMM}", None)
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    tower, spec = build_tower(f"timm:{TINY_TIMM}", tmp_path / "weights.pt")
    assert spec == TowerSpec("timm", TINY_TIMM, str(tmp_path / "weights.pt"), 160, spec.mean, spec.std)
    assert spec.reloadable and len(spec.mean) == len(spec.std) == 3
    assert _same_state(tower, source) and _same_state(rebuild_tower(spec), source)
    tower.train()
    assert tower_feature_dim(tower, spec.image_size) == 256 and tower.training  # mode restored
    # The embedder builds its network with the same code, so it holds the same weights.
    embedder = TimmEmbedder(model_name=TINY_TIMM, pretrained=str(tmp_path / "weights.pt"), device="cpu")
    assert _same_state(embedder.fit([photo(0)])._model, source)


def test_random_towers_are_not_reloadable():
    _, spec = build_tower(f"timm:{TINY_TIMM}", None)
    assert spec.pretrained is None and not spec.reloadable


def test_open_clip_tower_is_the_visual_tower(tiny_clip, tmp_path):
    import open_clip

    torch.manual_seed(2)
    full = open_clip.create_model(tiny_clip)
    torch.save(full.state_dict(), tmp_path / "clip.pt")
    tower, spec = build_tower(f"open_clip:{tiny_clip}", str(tmp_path / "clip.pt"))
    assert (spec.library, spec.image_size) == ("open_clip", 32)
    np.testing.assert_allclose(spec.mean, getattr(full.visual, "image_mean", None) or CLIP_MEAN)
    assert _same_state(tower, full.visual) and tower_feature_dim(tower, 32) == 16
    embedder = CLIPEmbedder(model_name=tiny_clip, pretrained=str(tmp_path / "clip.pt"), device="cpu")
    assert _same_state(embedder.fit([photo(0)])._model.visual, tower)


def test_weights_identity_follows_content_not_name(tmp_path, tiny_clip):
    torch.manual_seed(3)
    source, _ = build_tower(f"timm:{TINY_TIMM}", None)
    torch.save(source.state_dict(), tmp_path / "a.pt")
    shutil.copy(tmp_path / "a.pt", tmp_path / "b.pt")
    same = weights_identity("timm", TINY_TIMM, tmp_path / "a.pt")
    assert same.startswith("file:") and same == weights_identity("timm", TINY_TIMM, tmp_path / "b.pt")
    assert weights_identity("timm", TINY_TIMM, None, 4) == "random-init:seed=4"
    assert weights_identity("timm", TINY_TIMM, None) != weights_identity("timm", TINY_TIMM, None)
    assert weights_identity("open_clip", "ViT-B-32", "openai") == "open_clip:ViT-B-32:openai"


@pytest.mark.parametrize(
    ("backbone", "pretrained", "error", "match"),
    [
        ("efficientnet_lite0", None, ValueError, "must be a string 'timm:<model name>'"),
        ("keras:resnet", None, ValueError, "library must be 'timm' or 'open_clip'"),
        ("timm:no-such-model", None, ValueError, "Unknown timm model_name"),
        ("open_clip:no-such-model", None, ValueError, "Unknown open_clip model_name"),
        (f"timm:{TINY_TIMM}", "auto", ValueError, "only has weights for 'efficientnet_lite0'"),
        (f"timm:{TINY_TIMM}", "missing.pt", FileNotFoundError, "missing.pt"),
        ("open_clip:ViT-B-32", "no-such-tag", ValueError, "no pretrained tag 'no-such-tag'"),
    ],
    ids=["no-library", "unknown-library", "timm-name", "open_clip-name", "shipped", "file", "tag"],
)
def test_bad_backbones_and_sources_name_the_problem(backbone, pretrained, error, match):
    with pytest.raises(error, match=match):
        build_tower(backbone, pretrained)
    if ":" in backbone and backbone.split(":")[0] in ("timm", "open_clip"):
        assert parse_model_name(backbone) == tuple(backbone.split(":", 1))
