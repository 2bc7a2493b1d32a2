"""Torch modules behind skpercept's heads: MLP trunk, rating / regression heads, pair scorer, losses.

Only ``torch.nn`` code lives here; the scikit-learn estimators that train these modules with
skorch are in :mod:`skpercept.rating` and :mod:`skpercept.ranking`. The pieces are separate so a
backbone (e.g. a LoRA-tuned image tower) can be put in front of the same trunk and heads and
trained with the same NaN-masked losses:

>>> import torch
>>> from skpercept.nets import MLPTrunk, RatingHeads
>>> trunk = MLPTrunk(512, hidden_layer_sizes=(64,))
>>> head = RatingHeads(trunk.out_features, n_classes=[4, 4])
>>> head(trunk(torch.zeros(2, 512))).shape   # two attributes x four classes, concatenated
torch.Size([2, 8])

Conventions
-----------
* Heads return raw scores (logits); no softmax or sigmoid inside a module, so losses use the
  numerically stable log-sum-exp forms and probabilities are computed exactly once, outside.
* Multi-output targets are float tensors of shape ``(n, n_outputs)`` with NaN for a missing
  label; every loss here averages over the observed entries only (:func:`masked_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

#: Activation names a head accepts (``activation=``), and their modules.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (``'relu'``, ``'gelu'``, ``'silu'``, ...)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.") from None


class MLPTrunk(nn.Module):
    """Stack of ``Linear → [BatchNorm] → activation → [Dropout]`` blocks.

    Parameters
    ----------
    n_features : int
        Input width.
    hidden_layer_sizes : sequence of int, default=(256, 128)
        Widths of the hidden layers; ``()`` makes the trunk the identity (a linear model once a
        head is put on top).
    activation : str, default='relu'
    dropout : float, default=0.1
        Dropout after each hidden layer's activation.
    batch_norm : bool, default=False
        BatchNorm1d before each activation.

    Attributes
    ----------
    out_features : int
        Width of the trunk's output (``n_features`` when there are no hidden layers).
    """

    def __init__(
        self,
        n_features: int,
        hidden_layer_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = int(n_features)
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, int(size)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(size)))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(float(dropout)))
            width = int(size)
        self.layers = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)


class RatingHeads(nn.Module):
    """One linear head per attribute; outputs concatenated logits.

    Parameters
    ----------
    n_features : int
        Input width (the trunk's ``out_features``).
    n_classes : sequence of int
        Number of rating levels per attribute.
    loss : {'ce', 'corn'}, default='ce'
        ``'ce'``: ``k`` logits per attribute (softmax cross-entropy). ``'corn'``: ``k - 1``
        conditional "rating above level j" logits per attribute (CORN ordinal regression).
    """

    def __init__(self, n_features: int, n_classes: Sequence[int], loss: str = "ce") -> None:
        super().__init__()
        self.n_classes = [int(k) for k in n_classes]
        self.loss = loss
        self.sizes = [logit_width(k, loss) for k in self.n_classes]
        self.linear = nn.Linear(int(n_features), sum(self.sizes))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(X)


def logit_width(n_classes: int, loss: str) -> int:
    """Logits a rating head needs for ``n_classes`` levels under ``loss``."""
    if loss == "ce":
        return n_classes
    if loss == "corn":
        return n_classes - 1
    raise ValueError(f"loss must be 'ce' or 'corn' for ratings, got {loss!r}.")


class RatingNet(nn.Module):
    """``MLPTrunk`` followed by a head: rating logits, or ``n_outputs`` regression values.

    Parameters
    ----------
    n_features : int
    n_classes : sequence of int or None
        Levels per attribute for classification; ``None`` for regression.
    n_outputs : int, default=1
        Regression outputs (ignored when ``n_classes`` is given).
    loss : str, default='ce'
        Selects the rating head's layout (see :class:`RatingHeads`).
    hidden_layer_sizes, activation, dropout, batch_norm
        Passed to :class:`MLPTrunk`.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: Sequence[int] | None = None,
        n_outputs: int = 1,
        loss: str = "ce",
        hidden_layer_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.trunk = MLPTrunk(n_features, hidden_layer_sizes, activation, dropout, batch_norm)
        if n_classes is None:
            self.head: nn.Module = nn.Linear(self.trunk.out_features, int(n_outputs))
        else:
            self.head = RatingHeads(self.trunk.out_features, n_classes, loss)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(X))


class PairScorer(nn.Module):
    """Siamese scorer: one network ``s(half)`` shared by both halves of a pair.

    ``forward([left | right])`` returns ``s(left) - s(right)`` (one column per attribute), the
    logit of ``P(left ≻ right)``. Swapping the halves negates it exactly, so the model is
    antisymmetric by construction. In training mode both halves go through one stacked pass
    (BatchNorm sees both); in eval mode each half is scored by its own pass of identical shape,
    so a swapped input reproduces bit-identical scores.

    Parameters
    ----------
    n_half : int
        Width of one half (item features plus context).
    n_outputs : int, default=1
        Attributes scored.
    hidden_layer_sizes, activation, dropout, batch_norm
        Passed to :class:`MLPTrunk`. With ``hidden_layer_sizes=()`` the scorer is linear,
        ``s(x) = w·x``: a Bradley–Terry model when ``x`` is a one-hot item code.
    """

    def __init__(
        self,
        n_half: int,
        n_outputs: int = 1,
        hidden_layer_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n_half = int(n_half)
        self.trunk = MLPTrunk(n_half, hidden_layer_sizes, activation, dropout, batch_norm)
        self.head = nn.Linear(self.trunk.out_features, int(n_outputs))

    def score(self, X_half: torch.Tensor) -> torch.Tensor:
        """Latent score of each item, shape ``(n, n_outputs)``."""
        return self.head(self.trunk(X_half))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        left, right = X[:, : self.n_half], X[:, self.n_half :]
        if self.training:
            scores = self.score(torch.cat([left, right], dim=0))
            return scores[: len(X)] - scores[len(X) :]
        return self.score(left) - self.score(right)


# -- losses ----------------------------------------------------------------------------------
def masked_loss(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``losses`` over the entries where ``mask`` is true.

    ``losses`` must already be finite where ``mask`` is false (compute them on targets with the
    NaNs replaced), because ``nan * 0`` is still NaN and would poison the gradient. A batch with
    no observed entry gives a zero that keeps the graph connected.
    """
    mask = mask.to(losses.dtype)
    return (losses * mask).sum() / mask.sum().clamp_min(1.0)


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(len(t), -1)


def _split_logits(logits: torch.Tensor, sizes: Sequence[int]) -> tuple[torch.Tensor, ...]:
    return torch.split(logits, list(sizes), dim=1)


def corn_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-sample CORN negative log-likelihood of integer level ``codes`` (0 … k-1).

    ``logits[:, j]`` is the logit of ``P(y > j | y > j - 1)``; the level probability is
    ``P(y = c) = Π_{j<c} σ(l_j) · (1 − σ(l_c))`` (no last factor for the top level), so the
    loss is a sum of binary cross-entropies over the tasks the sample reaches (Shi et al., 2021).
    """
    k1 = logits.shape[1]
    tasks = torch.arange(k1, device=logits.device)
    reached = tasks[None, :] <= codes[:, None]
    above = (codes[:, None] > tasks[None, :]).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, above, reduction="none")
    return (bce * reached.to(logits.dtype)).sum(dim=1)


def corn_proba(logits: torch.Tensor) -> torch.Tensor:
    """Level probabilities ``(n, k)`` from CORN logits ``(n, k - 1)``; rows sum to 1."""
    cum = torch.cumprod(torch.sigmoid(logits), dim=1)  # P(y > j), non-increasing in j
    ones = torch.ones_like(cum[:, :1])
    zeros = torch.zeros_like(cum[:, :1])
    upper = torch.cat([ones, cum], dim=1)
    lower = torch.cat([cum, zeros], dim=1)
    return upper - lower


class MaskedRatingLoss(nn.Module):
    """Cross-entropy or CORN loss over several rating attributes with NaN-masked labels.

    Called as ``loss(logits, y)`` with the concatenated logits of :class:`RatingHeads` and ``y``
    of shape ``(n, n_outputs)`` holding level codes ``0 … k-1`` as floats, NaN where missing.
    """

    def __init__(self, n_classes: Sequence[int], loss: str = "ce") -> None:
        super().__init__()
        self.n_classes = [int(k) for k in n_classes]
        self.loss = loss
        self.sizes = [logit_width(k, loss) for k in self.n_classes]

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = _as_2d(y)
        mask = ~torch.isnan(y)
        codes = torch.where(mask, y, torch.zeros_like(y)).long()
        per_output = []
        for j, part in enumerate(_split_logits(logits, self.sizes)):
            if self.loss == "ce":
                per_output.append(F.cross_entropy(part, codes[:, j], reduction="none"))
            else:
                per_output.append(corn_nll(part, codes[:, j]))
        return masked_loss(torch.stack(per_output, dim=1), mask)


_REGRESSION_LOSSES = {
    "mse": lambda p, t: F.mse_loss(p, t, reduction="none"),
    "huber": lambda p, t: F.huber_loss(p, t, reduction="none", delta=1.0),
    "mae": lambda p, t: F.l1_loss(p, t, reduction="none"),
}


class MaskedRegressionLoss(nn.Module):
    """MSE, Huber (δ = 1 on the standardized scale) or MAE with NaN-masked targets."""

    def __init__(self, loss: str = "mse") -> None:
        super().__init__()
        if loss not in _REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {sorted(_REGRESSION_LOSSES)}, got {loss!r}.")
        self.loss = loss

    def forward(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y, pred = _as_2d(y), _as_2d(pred)
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, pred.detach())
        return masked_loss(_REGRESSION_LOSSES[self.loss](pred, target), mask)


class MaskedPairLoss(nn.Module):
    """Binary cross-entropy on ``s(left) − s(right)`` logits with soft labels and NaN masks."""

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y, logits = _as_2d(y), _as_2d(logits)
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, torch.zeros_like(y))
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return masked_loss(bce, mask)
