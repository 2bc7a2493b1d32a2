"""Torch side of :class:`skpercept.joint.JointRatingRanker`: the shared scorer and its loss.

A cumulative-link rating head and a pair head read one score per attribute; see
:mod:`skpercept.joint` for the model and its input layout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skpercept.nets import MLPTrunk, masked_loss, split_penalty, split_weights

# A stand-in for ±infinity at the ends of the cumulative logits: finite, so no inf − inf.
_EDGE = 1e4


class JointNet(nn.Module):
    """Shared scorer with a cumulative-link rating head and a pair head.

    ``forward(X)`` returns, per row, ``[d (n_outputs) | cumulative logits (Σ (k_j − 1)) |
    is_rating]``: ``d = κ (s(left) − s(right))`` (0 on rating rows), the logits of
    ``P(rating > level k)`` of the left item, and 1.0 on rating rows (right half NaN).

    With user columns, ``s_j(x, u) = h(x)·(w_j + V_j u) + b_j`` (the trunk sees the item
    columns only) and a rating's cumulative logits are ``exp(a_j·u) (s_j + c_j·u − θ_jk)``:
    a person's taste, leniency and decisiveness; ``u = 0`` gives exactly the shared model.
    """

    def __init__(
        self,
        n_half: int,
        item_columns: list[int],
        n_classes: list[int],
        init_thresholds: list[list[float]],
        hidden_layer_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        dropout: float = 0.3,
        batch_norm: bool = False,
        user_index: list[int] | None = None,
        penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_half = int(n_half)
        user_index = list(user_index or [])
        self.penalty = float(penalty)
        self.register_buffer("items", torch.as_tensor(item_columns, dtype=torch.long), persistent=False)
        self.register_buffer("users", torch.as_tensor(user_index, dtype=torch.long), persistent=False)
        self.n_classes = [int(k) for k in n_classes]
        n_out, n_users = len(self.n_classes), len(user_index)
        self.trunk = MLPTrunk(len(item_columns), hidden_layer_sizes, activation, dropout, batch_norm)
        self.head = nn.Linear(self.trunk.out_features, n_out)
        self.log_pair_scale = nn.Parameter(torch.zeros(n_out))
        # θ_j1 and the gaps as softplus⁻¹(θ_jk − θ_j,k−1): the thresholds stay increasing.
        self.first = nn.Parameter(torch.tensor([t[0] for t in init_thresholds], dtype=torch.float32))
        gaps = [torch.as_tensor(np.diff(t), dtype=torch.float32) for t in init_thresholds]
        self.gaps = nn.ParameterList([nn.Parameter(g + torch.log(-torch.expm1(-g))) for g in gaps])
        if n_users:
            self.taste = nn.Parameter(torch.zeros(self.trunk.out_features, n_out, n_users))
            self.offset = nn.Parameter(torch.zeros(n_users, n_out))
            self.log_scale = nn.Parameter(torch.zeros(n_users, n_out))

    def thresholds(self, j: int) -> torch.Tensor:
        """Increasing cut points ``θ_j`` of attribute ``j`` (``k_j − 1`` of them)."""
        steps = F.softplus(self.gaps[j])
        return torch.cat([self.first[j : j + 1], self.first[j] + torch.cumsum(steps, 0)])

    def score(self, h: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        s = self.head(h)
        if u is not None:
            s = s + torch.einsum("nd,djm,nm->nj", h, self.taste, u)
        return s

    def item_scores(self, X_half: torch.Tensor) -> torch.Tensor:
        """``κ_j s_j(x, u)`` of items laid out as one half: the pair-logit scale."""
        u = X_half[:, self.users] if len(self.users) else None
        return torch.exp(self.log_pair_scale) * self.score(self.trunk(X_half[:, self.items]), u)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        left, right = X[:, : self.n_half], X[:, self.n_half :]
        rated = torch.isnan(right).all(dim=1)
        right = torch.where(rated[:, None], left, right)  # a rating row scores its item twice: d = 0
        u = left[:, self.users] if len(self.users) else None
        if self.training:  # one pass over both halves, so BatchNorm sees all items of the batch
            h = self.trunk(torch.cat([left[:, self.items], right[:, self.items]]))
            h_left, h_right = h[: len(X)], h[len(X) :]
        else:
            h_left, h_right = self.trunk(left[:, self.items]), self.trunk(right[:, self.items])
        s_left = self.score(h_left, u)
        d = torch.exp(self.log_pair_scale) * (s_left - self.score(h_right, u))
        cumulative = []
        for j in range(len(self.n_classes)):
            z = s_left[:, j : j + 1] - self.thresholds(j)
            if u is not None:
                z = torch.exp(u @ self.log_scale[:, j : j + 1]) * (z + u @ self.offset[:, j : j + 1])
            cumulative.append(z)
        out = torch.cat([d, *cumulative, rated[:, None].to(d.dtype)], dim=1)
        if self.training and u is not None and self.penalty > 0:
            # training returns (output, prior term), as the other heads' personal modules do
            return out, self.penalty * self.personal_penalty()
        return out

    def personal_penalty(self) -> torch.Tensor:
        """``||V||² + ||c||² + ||a||²``: the Gaussian prior's squared norm (0 without users)."""
        if not len(self.users):
            return torch.zeros((), device=self.first.device)
        return self.taste.square().sum() + self.offset.square().sum() + self.log_scale.square().sum()


def level_log_proba(cumulative: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``(n, k)`` of the levels from cumulative logits ``(n, k − 1)``.

    ``P(y = k) = σ(z_{k−1}) − σ(z_k)`` with ``σ(z_0) = 1`` and ``σ(z_k) = 0``, computed as
    ``log σ(z_{k−1}) + log σ(−z_k) + log(1 − e^{z_k − z_{k−1}})`` (exact, and stable).
    """
    edge = torch.full_like(cumulative[:, :1], _EDGE)
    upper = torch.cat([edge, cumulative], dim=1)
    lower = torch.cat([cumulative, -edge], dim=1)
    gap = (lower - upper).clamp_max(-1e-6)
    return F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(gap))


class JointLoss(nn.Module):
    """Ordinal NLL on rating rows and binary cross-entropy on pair rows: the weighted mean over
    the observed labels (``y`` may carry one weight per label after the labels), plus the
    prior term of a ``(output, penalty)`` training output."""

    def __init__(self, n_classes: list[int], weighted: bool = False) -> None:
        # ``weighted`` (set by the base for weighted targets) needs no state: y's width tells
        super().__init__()
        self.n_classes = [int(k) for k in n_classes]

    def forward(self, out, y: torch.Tensor) -> torch.Tensor:
        out, penalty = split_penalty(out)
        n_out = len(self.n_classes)
        y, weights = split_weights(y, n_out)
        d, rated = out[:, :n_out], out[:, -1:] > 0.5
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, torch.zeros_like(y))
        pair = F.binary_cross_entropy_with_logits(d, target.clamp(0, 1), reduction="none")
        parts = torch.split(out[:, n_out:-1], [k - 1 for k in self.n_classes], dim=1)
        codes = target.long().clamp_min(0)
        rating = torch.stack(
            [
                -level_log_proba(z).gather(1, codes[:, j : j + 1].clamp_max(z.shape[1]))[:, 0]
                for j, z in enumerate(parts)
            ],
            dim=1,
        )
        return masked_loss(torch.where(rated, rating, pair), mask, weights) + penalty
