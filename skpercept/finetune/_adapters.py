"""LoRA on an image tower: which modules get adapters, wrapping them, checkpointing, fingerprints.

The towers themselves are built by :mod:`skpercept.embed.towers`, shared with the embedders.
:class:`LoRATower` declares the parameters every estimator that adapts a tower takes.

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
import numbers
import os
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from skpercept._compat import Interval
from skpercept._utils import estimator_parameters, optional_import
from skpercept.embed.towers import SHIPPED_WEIGHTS

__all__ = [
    "TARGET_KINDS",
    "LoRATower",
    "add_lora",
    "fingerprint",
    "resolve_pretrained",
    "select_targets",
    "set_gradient_checkpointing",
]

#: Module kinds ``target_modules`` may name (see the module docstring).
TARGET_KINDS = ("linear", "attention", "conv")


@estimator_parameters
class LoRATower:
    """The parameters of a tower with LoRA adapters, shared by every estimator that builds one.

    ``model_name`` names the tower as ``'timm:<model>'`` or ``'open_clip:<model>'`` (the
    library first: these estimators take either), ``pretrained`` its base weights;
    ``lora_rank``, ``lora_alpha`` and ``lora_dropout`` are peft's ``r``, ``lora_alpha`` and
    ``lora_dropout``; ``target_modules`` and ``last_n_targets`` choose the adapted modules.
    """

    _parameter_constraints: ClassVar[dict] = {
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "image_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "lora_rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "lora_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "lora_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "target_modules": [str, "array-like"],
        "last_n_targets": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    model_name: str = "timm:efficientnet_lite0"
    pretrained: str | os.PathLike | None = "auto"
    image_size: int | None = None
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    target_modules: str | Sequence[str] = "auto"
    last_n_targets: int | None = None


def resolve_pretrained(model_name: str, pretrained) -> str | None:
    """The weights source of ``pretrained='auto'`` (a model's shipped weights), else as given."""
    if pretrained != "auto":
        return os.fspath(pretrained) if isinstance(pretrained, os.PathLike) else pretrained
    library, _, name = model_name.partition(":")
    if library == "timm" and name in SHIPPED_WEIGHTS:
        return SHIPPED_WEIGHTS[name][0]
    shipped = " and ".join(f"'timm:{model}'" for model in SHIPPED_WEIGHTS)
    raise ValueError(
        f"pretrained='auto' only knows weights for {shipped}; for "
        f"{model_name!r} pass pretrained=<tag or local file>, or None for random init."
    )


def select_targets(model: nn.Module, target_modules: str | Sequence[str]) -> list[str]:
    """Names of the modules to put LoRA adapters on, chosen by type.

    Parameters
    ----------
    model : torch.nn.Module
        An image tower (e.g. from :func:`skpercept.embed.towers.build_tower`).
    target_modules : 'auto', str or sequence of str
        Kinds from :data:`TARGET_KINDS`: ``'linear'`` (every ``nn.Linear`` called as a
        module, not the ``out_proj`` of an ``nn.MultiheadAttention``), ``'attention'``
        (whole ``nn.MultiheadAttention`` modules), ``'conv'`` (``nn.Conv2d`` with
        ``groups == 1``); ``'auto'`` means all three.

    Returns
    -------
    names : list of str
        Module names, in ``model.named_modules()`` order.

    Examples
    --------
    >>> from skpercept.embed.towers import build_tower
    >>> from skpercept.finetune import select_targets
    >>> tower, _ = build_tower("timm:test_efficientnet", None)
    >>> select_targets(tower, "conv")[:2]
    ['conv_stem', 'blocks.0.0.conv']
    """
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


def add_lora(
    model: nn.Module, targets: list[str], *, lora_rank: int, lora_alpha: float, lora_dropout: float
) -> nn.Module:
    """Freeze ``model`` and wrap it with peft LoRA adapters on ``targets``.

    Parameters
    ----------
    model : torch.nn.Module
    targets : list of str
        Exact module names (e.g. from :func:`select_targets`).
    lora_rank : int
        Rank of each adapter (peft's ``r``).
    lora_alpha : float
        LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_rank``).
    lora_dropout : float
        Dropout on each adapter's input.

    Returns
    -------
    model : peft.PeftModel
        Only the adapters' parameters require gradients.

    Examples
    --------
    >>> from torch import nn
    >>> from skpercept.finetune import add_lora
    >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> lora = add_lora(model, ["0"], lora_rank=2, lora_alpha=4.0, lora_dropout=0.0)
    >>> sum(p.numel() for p in lora.parameters() if p.requires_grad)  # A: 2x8, B: 8x2
    32
    >>> sum(p.numel() for p in lora.parameters() if not p.requires_grad)  # the frozen base
    90
    """
    peft = optional_import("peft", "lora")
    for param in model.parameters():
        param.requires_grad_(False)
    # Exact names (anchored regex): a bare name would also match deeper modules with that suffix.
    pattern = "^(" + "|".join(t.replace(".", r"\.") for t in targets) + ")$"
    config = peft.LoraConfig(
        r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=pattern
    )
    return peft.get_peft_model(model, config)


def set_gradient_checkpointing(model: nn.Module, enable: bool) -> bool:
    """Turn on the tower's own activation checkpointing; return whether it has one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "set_grad_checkpointing"):
        base.set_grad_checkpointing(enable)
        return True
    return False


def fingerprint(state: dict) -> str:
    """Short hash of weights (tensors or arrays), to detect a reference that now points at other weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = torch.as_tensor(state[name]).detach().to("cpu", torch.float32).reshape(-1)
        digest.update(name.encode())
        digest.update(tensor[:: max(1, tensor.numel() // 64)].numpy().tobytes())
    return digest.hexdigest()[:16]
