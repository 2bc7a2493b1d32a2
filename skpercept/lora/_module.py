"""Torch side of the LoRA estimators: adapted tower + per-user vectors + head."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from skpercept.nets import MLPTrunk, RatingHeads

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class LoRANet(nn.Module):
    """Image tower with LoRA adapters, learned user vectors and a small MLP head.

    ``forward(images, index, users)`` runs the tower once per distinct image, then the head
    once per row: ``index`` has one column (ratings) or two (pairs: left, right).
    Ratings return the concatenated logits of :class:`skpercept.nets.RatingHeads`; pairs
    return the left-minus-right score difference per attribute, so swapping a pair negates it
    exactly (antisymmetric by construction: P(a≻b) + P(b≻a) = 1).

    User 0 is "unknown": its vector is the mean of the learned vectors, i.e. the average
    person, whatever the training did to individual vectors.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        n_features: int,
        n_users: int,
        user_dim: int,
        hidden_layer_sizes: tuple[int, ...],
        dropout: float,
        n_outputs: int,
        n_classes: list[int] | None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.n_users = n_users
        self.user_dim = user_dim if n_users > 0 else 0
        self.precision = precision
        if self.user_dim:
            self.users = nn.Embedding(n_users + 1, self.user_dim)
            nn.init.normal_(self.users.weight, std=0.01)
        width = n_features + self.user_dim
        # LayerNorm first: tower features of different backbones live on very different scales.
        self.norm = nn.LayerNorm(width)
        self.trunk = MLPTrunk(width, hidden_layer_sizes, activation="gelu", dropout=dropout)
        if n_classes is None:
            self.head: nn.Module = nn.Linear(self.trunk.out_features, n_outputs)
        else:
            self.head = RatingHeads(self.trunk.out_features, n_classes)

    def train(self, mode: bool = True) -> LoRANet:
        super().train(mode)
        # Frozen base: its batch-norm statistics must not drift during fine-tuning either.
        for module in self.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def _autocast(self, device_type: str):
        if self.precision in _DTYPES:
            return torch.autocast(device_type=device_type, dtype=_DTYPES[self.precision])
        return contextlib.nullcontext()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled tower features of a batch of images (float32)."""
        with self._autocast(images.device.type):
            return self.backbone(images).float().reshape(images.shape[0], -1)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        known = self.users.weight[1:]
        table = torch.cat([known.mean(0, keepdim=True), known])
        return table[users]

    def score(self, features: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Head output per row: (rows, outputs) scores, or concatenated rating logits."""
        if self.user_dim:
            features = torch.cat([features, self.user_vectors(users)], dim=1)
        with self._autocast(features.device.type):
            return self.head(self.trunk(self.norm(features))).float()

    def forward(self, images: torch.Tensor, index: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        features = self.embed(images)
        if index.shape[1] == 1:
            return self.score(features[index[:, 0]], users)
        return self.score(features[index[:, 0]], users) - self.score(features[index[:, 1]], users)
