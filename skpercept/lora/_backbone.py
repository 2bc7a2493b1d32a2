"""Backbones for LoRA fine-tuning: build an image tower, pick LoRA targets by module type.

Targets are chosen by module *type*, not by name, so the same setting works across open_clip
and timm versions whose module names differ:

- ``'linear'``: every ``nn.Linear`` that the model calls as a module. The ``out_proj`` of a
  ``nn.MultiheadAttention`` is excluded: torch's attention reads its weight directly
  (``F.multi_head_attention_forward``), so an adapter wrapped around it would never be on the
  gradient path (peft issue #761, pytorch's ``NonDynamicallyQuantizableLinear``).
- ``'attention'``: whole ``nn.MultiheadAttention`` modules, adapted by peft's dedicated layer
  (huggingface/peft#1324), which folds adapters into ``in_proj`` *and* ``out_proj`` before
  each call, so both actually train.
- ``'conv'``: ``nn.Conv2d`` with ``groups == 1`` (stem, pointwise and head convolutions of a
  CNN); depthwise convolutions hold few weights and peft's grouped-conv LoRA is fragile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from skpercept._utils import optional_import

TARGET_KINDS = ("linear", "attention", "conv")
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class BackboneSpec:
    """What is needed to rebuild a base tower offline: library, model name, weights source."""

    library: str
    name: str
    pretrained: str | None
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def reloadable(self) -> bool:
        """True when the base weights can be rebuilt from the reference alone."""
        return self.pretrained is not None


def parse_backbone(backbone: str) -> tuple[str, str]:
    """Split ``'timm:efficientnet_lite0'`` / ``'open_clip:ViT-B-32'`` into (library, name)."""
    if not isinstance(backbone, str) or ":" not in backbone:
        raise ValueError(
            f"backbone must be a string 'timm:<model name>' or 'open_clip:<model name>', got {backbone!r}."
        )
    library, name = backbone.split(":", 1)
    if library not in ("timm", "open_clip") or not name:
        raise ValueError(f"backbone library must be 'timm' or 'open_clip', got {library!r} in {backbone!r}.")
    return library, name


def _build_timm(name: str, pretrained: str | None) -> tuple[nn.Module, BackboneSpec]:
    from skpercept.embed.timm import TimmEmbedder

    # The embedder owns weight loading (shipped Lite0 weights, local files, random init).
    model, _, _ = TimmEmbedder(model_name=name, pretrained=pretrained)._create_model(True)
    cfg = model.pretrained_cfg
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    spec = BackboneSpec("timm", name, pretrained, size, tuple(cfg.get("mean")), tuple(cfg.get("std")))
    return model, spec


def _build_open_clip(name: str, pretrained: str | None) -> tuple[nn.Module, BackboneSpec]:
    from skpercept.embed.clip import CLIPEmbedder

    model, _, _ = CLIPEmbedder(model_name=name, pretrained=pretrained)._create_model(True)
    visual = model.visual
    size = visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(visual, "image_mean", None) or _CLIP_MEAN)
    std = tuple(getattr(visual, "image_std", None) or _CLIP_STD)
    return visual, BackboneSpec("open_clip", name, pretrained, size, mean, std)


def build_backbone(backbone: str, pretrained: str | None) -> tuple[nn.Module, BackboneSpec]:
    """Build the base image tower (frozen later) and its rebuild reference."""
    library, name = parse_backbone(backbone)
    if pretrained is not None:
        pretrained = str(pretrained)
    if library == "timm":
        return _build_timm(name, pretrained)
    return _build_open_clip(name, pretrained)


def rebuild_backbone(spec: BackboneSpec) -> nn.Module:
    """Rebuild the base tower from a saved reference (offline: local files or shipped weights)."""
    model, _ = build_backbone(f"{spec.library}:{spec.name}", spec.pretrained)
    return model


def feature_dim(model: nn.Module, image_size: int) -> int:
    """Width of the tower's pooled output, measured with one dummy image."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, image_size, image_size))
    model.train(was_training)
    return int(out.reshape(1, -1).shape[1])


def select_targets(model: nn.Module, target_modules: str | Sequence[str]) -> list[str]:
    """Names of the modules to adapt, chosen by type (see the module docstring)."""
    if isinstance(target_modules, str):
        kinds = TARGET_KINDS if target_modules == "auto" else (target_modules,)
    else:
        kinds = tuple(target_modules)
    unknown = [k for k in kinds if k not in TARGET_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"target_modules must be 'auto' or a subset of {TARGET_KINDS}, got {target_modules!r}."
        )
    inside_mha = {
        f"{name}.{child}" if name else child
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
        for child, _ in module.named_modules()
        if child
    }
    names = []
    for name, module in model.named_modules():
        if name in inside_mha:
            continue
        if (
            ("linear" in kinds and type(module) is nn.Linear)
            or ("attention" in kinds and isinstance(module, nn.MultiheadAttention))
            or ("conv" in kinds and isinstance(module, nn.Conv2d) and module.groups == 1)
        ):
            names.append(name)
    if not names:
        raise ValueError(
            f"No module of kind {kinds} found in the backbone to put LoRA adapters on; "
            f"choose other target_modules from {TARGET_KINDS}."
        )
    return names


def add_lora(model: nn.Module, targets: list[str], *, r: int, alpha: float, dropout: float) -> nn.Module:
    """Freeze ``model`` and wrap it with peft LoRA adapters on ``targets``."""
    peft = optional_import("peft", "lora")
    for param in model.parameters():
        param.requires_grad_(False)
    # Exact names (anchored regex): a bare name would also match deeper modules with that suffix.
    pattern = "^(" + "|".join(t.replace(".", r"\.") for t in targets) + ")$"
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    return peft.get_peft_model(model, config)


def set_gradient_checkpointing(model: nn.Module, enable: bool) -> bool:
    """Turn on the tower's own activation checkpointing; return whether it has one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "set_grad_checkpointing"):
        base.set_grad_checkpointing(enable)
        return True
    return False


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """Short hash of base weights, to detect a reference that now points at other weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu", torch.float32).reshape(-1)
        digest.update(name.encode())
        digest.update(tensor[:: max(1, tensor.numel() // 64)].numpy().tobytes())
    return digest.hexdigest()[:16]
