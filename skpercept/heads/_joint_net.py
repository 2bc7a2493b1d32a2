"""Torch side of :class:`skpercept.heads.JointRatingRanker`: the shared scorer and its loss.

A cumulative-link rating head and a pair head read one score per attribute; see
:mod:`skpercept.heads` for the model and its input layout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skpercept.heads.nets import MLPTrunk, masked_loss, split_penalty, split_weights

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

    @property
    def user_index(self) -> torch.Tensor:
        """The person columns within a half (as the other heads' personal modules name them)."""
        return self.users

    def score(self, h: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        s = self.head(h)
        if u is not None:
            s = s + torch.einsum("nd,djm,nm->nj", h, self.taste, u)
        return s

    def item_scores(self, X_half: torch.Tensor) -> torch.Tensor:
        """``κ_j s_j(x, u)`` of items laid out as one half: the pair-logit scale."""
        u = X_half[:, self.users] if len(self.users) else None
        return torch.exp(self.log_pair_scale) * self.score(self.trunk(X_half[:, self.items]), u)

    def _halves(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left and right halves and the rating rows (a rating row scores its item twice: d = 0)."""
        left, right = X[:, : self.n_half], X[:, self.n_half :]
        rated = torch.isnan(right).all(dim=1)
        return left, torch.where(rated[:, None], left, right), rated

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        left, right, rated = self._halves(X)
        if self.training:  # one pass over both halves, so BatchNorm sees all items of the batch
            h = self.trunk(torch.cat([left[:, self.items], right[:, self.items]]))
            h_left, h_right = h[: len(X)], h[len(X) :]
        else:
            h_left, h_right = self.trunk(left[:, self.items]), self.trunk(right[:, self.items])
        personal = ()
        if len(self.users):
            u = left[:, self.users]
            personal = (torch.einsum("nm,djm->ndj", u, self.taste), u @ self.offset, u @ self.log_scale)
        thresholds = [self.thresholds(j) for j in range(len(self.n_classes))]
        shared = (self.head(h_left), self.head(h_right))
        out = joint_output(
            (h_left, h_right), shared, rated, torch.exp(self.log_pair_scale), thresholds, *personal
        )
        if self.training and personal and self.penalty > 0:
            # training returns (output, prior term), as the other heads' personal modules do
            return out, self.penalty * self.personal_penalty()
        return out

    def frozen_parts(self, X: torch.Tensor) -> tuple:
        """What the personal parameters act on, for rows ``X``: the arguments of
        :func:`joint_output` before the personal ones, in eval mode, as float64 on CPU."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                left, right, rated = self._halves(X)
                h = (self.trunk(left[:, self.items]), self.trunk(right[:, self.items]))
                shared = tuple(self.head(h_half) for h_half in h)
                thresholds = [self.thresholds(j) for j in range(len(self.n_classes))]
                scale = torch.exp(self.log_pair_scale)
        finally:
            self.train(was_training)

        def cpu(t: torch.Tensor) -> torch.Tensor:
            return t.cpu().double()

        h, shared = tuple(map(cpu, h)), tuple(map(cpu, shared))
        return h, shared, rated.cpu(), cpu(scale), [cpu(t) for t in thresholds]

    def add_users(self, n_new: int) -> None:
        """Append ``n_new`` person columns at the end of each half, with zero deviations."""
        new = torch.arange(self.n_half, self.n_half + int(n_new), device=self.users.device)
        self.users = torch.cat([self.users, new])
        self.n_half += int(n_new)
        for name, dim in (("taste", 2), ("offset", 0), ("log_scale", 0)):
            p = getattr(self, name).detach()
            shape = list(p.shape)
            shape[dim] = int(n_new)
            zeros = torch.zeros(shape, dtype=p.dtype, device=p.device)
            setattr(self, name, nn.Parameter(torch.cat([p, zeros], dim=dim)))

    def personal_penalty(self) -> torch.Tensor:
        """``||V||² + ||c||² + ||a||²``: the Gaussian prior's squared norm (0 without users)."""
        if not len(self.users):
            return torch.zeros((), device=self.first.device)
        return self.taste.square().sum() + self.offset.square().sum() + self.log_scale.square().sum()


def joint_output(
    h: tuple[torch.Tensor, torch.Tensor],
    shared: tuple[torch.Tensor, torch.Tensor],
    rated: torch.Tensor,
    pair_scale: torch.Tensor,
    thresholds: list[torch.Tensor],
    Vu: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
    log_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """:class:`JointNet`'s output from the trunk's ``h`` and the shared scores ``w·h + b`` of
    both halves, given each row's personal parameters (none: the shared model).

    ``Vu`` ``(n, d, n_outputs)``, ``offset`` and ``log_scale`` ``(n, n_outputs)`` are the
    row's person's ``V u``, ``c·u`` and ``a·u``. Training and the personal fit
    (``fit_users``, which varies them with the rest frozen) both go through here.
    """
    s_left, s_right = shared
    if Vu is not None:
        s_left = s_left + torch.einsum("nd,ndj->nj", h[0], Vu)
        s_right = s_right + torch.einsum("nd,ndj->nj", h[1], Vu)
    d = pair_scale * (s_left - s_right)
    cumulative = []
    for j, theta in enumerate(thresholds):
        z = s_left[:, j : j + 1] - theta
        if offset is not None:
            z = torch.exp(log_scale[:, j : j + 1]) * (z + offset[:, j : j + 1])
        cumulative.append(z)
    return torch.cat([d, *cumulative, rated[:, None].to(d.dtype)], dim=1)


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

    def entry_losses(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry losses ``(n, n_outputs)`` (finite everywhere) and the mask of observed labels."""
        n_out = len(self.n_classes)
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
        return torch.where(rated, rating, pair), mask

    def forward(self, out, y: torch.Tensor) -> torch.Tensor:
        out, penalty = split_penalty(out)
        y, weights = split_weights(y, len(self.n_classes))
        return masked_loss(*self.entry_losses(out, y), weights) + penalty
