"""Torch side of the LoRA estimators: adapted tower + MLP head + personal deviations."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from skpercept.heads.nets import MLPTrunk, RatingHeads

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class LoRANet(nn.Module):
    """Image tower with LoRA adapters, a small MLP head and per-user deviations of its output layer.

    ``forward(images, index, users)`` runs the tower once per distinct image, then the head
    once per row: ``index`` has one column (ratings) or two (pairs: left, right).
    Ratings return the concatenated logits of :class:`skpercept.heads.nets.RatingHeads`; pairs
    return the left-minus-right score difference per attribute, so swapping a pair negates it
    exactly (antisymmetric by construction: P(a≻b) + P(b≻a) = 1).

    Users have the semantics of the heads' ``user_features``: with ``h`` the MLP's
    representation of the image, user ``u`` (code ``1 … n_users``) scores
    ``s(img, u) = h·(w + V_u) + b``; ratings also get a per-user offset ``c_u`` (per logit)
    and log-scale ``a_u`` (per attribute): ``exp(a_u)·(h·(w + V_u) + b) + c_u``. ``V_u`` is
    ``B z_u`` with a learned vector ``z_u`` of size ``user_rank`` and a shared basis ``B``
    (a deviation of rank ``user_rank``), or a free matrix per user with ``user_rank=None``.
    Code 0 is the unknown user: ``V_0 = 0``, ``a_0 = 0``, ``c_0 = 0``, exactly the shared model.
    """

    def __init__(
        self,
        tower: nn.Module,
        *,
        n_features: int,
        n_users: int,
        user_rank: int | None,
        hidden_layer_sizes: tuple[int, ...],
        dropout: float,
        n_outputs: int,
        n_classes: list[int] | None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.tower = tower
        self.n_users = n_users
        self.precision = precision
        self.personal = n_users > 0
        # LayerNorm first: tower features of different backbones live on very different scales.
        self.norm = nn.LayerNorm(n_features)
        self.trunk = MLPTrunk(n_features, hidden_layer_sizes, activation="gelu", dropout=dropout)
        if n_classes is None:
            self.head: nn.Module = nn.Linear(self.trunk.out_features, n_outputs)
            n_logits, self.n_classes = n_outputs, None
        else:
            self.head = RatingHeads(self.trunk.out_features, n_classes)
            n_logits, self.n_classes = sum(n_classes), [int(k) for k in n_classes]
        self.n_logits = n_logits
        if self.personal:
            width = self.trunk.out_features * n_logits
            if user_rank is None:
                self.user_taste = nn.Parameter(torch.zeros(n_users, width))
            else:
                # z small and B zero: every user starts at the shared model, and both get gradients
                self.user_vectors = nn.Parameter(0.01 * torch.randn(n_users, int(user_rank)))
                self.user_basis = nn.Parameter(torch.zeros(int(user_rank), width))
            if n_classes is not None:
                self.user_offset = nn.Parameter(torch.zeros(n_users, n_logits))
                self.user_log_scale = nn.Parameter(torch.zeros(n_users, len(n_classes)))

    def train(self, mode: bool = True) -> LoRANet:
        super().train(mode)
        # Frozen base: its batch-norm statistics must not drift during fine-tuning either.
        for module in self.tower.modules():
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
            return self.tower(images).float().reshape(images.shape[0], -1)

    def _personal_rows(self, table: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        # row 0 (the unknown user) is a constant zero, not a parameter: it stays the shared model
        return torch.cat([torch.zeros_like(table[:1]), table])[users]

    def deviation(self, users: torch.Tensor) -> torch.Tensor:
        """``V_u`` per row, shape ``(rows, d, n_logits)`` (zeros for user 0)."""
        if hasattr(self, "user_taste"):
            flat = self._personal_rows(self.user_taste, users)
        else:
            flat = self._personal_rows(self.user_vectors, users) @ self.user_basis
        return flat.reshape(len(users), self.trunk.out_features, self.n_logits)

    def score(self, features: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Head output per row: (rows, outputs) scores, or concatenated rating logits."""
        with self._autocast(features.device.type):
            h = self.trunk(self.norm(features))
            out = self.head(h).float()
        if not self.personal:
            return out
        out = out + torch.einsum("nd,ndk->nk", h.float(), self.deviation(users))
        if self.n_classes is not None:
            sizes = torch.as_tensor(self.n_classes, device=out.device)
            log_scale = self._personal_rows(self.user_log_scale, users).repeat_interleave(sizes, dim=1)
            out = torch.exp(log_scale) * out + self._personal_rows(self.user_offset, users)
        return out

    def personal_penalty(self) -> torch.Tensor:
        """Squared norm of the personal parameters (the Gaussian prior's; 0 without them)."""
        params = [p for name, p in self.named_parameters() if name.startswith("user_")]
        if not params:
            return torch.zeros((), device=next(self.parameters()).device)
        return sum(p.float().square().sum() for p in params)

    def forward(self, images: torch.Tensor, index: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        features = self.embed(images)
        if index.shape[1] == 1:
            return self.score(features[index[:, 0]], users)
        return self.score(features[index[:, 0]], users) - self.score(features[index[:, 1]], users)
