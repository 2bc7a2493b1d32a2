"""Torch modules behind skpercept's heads: MLP trunk, rating / regression heads, pair scorer, losses.

Only ``torch.nn`` code lives here; the scikit-learn estimators that train these modules with
skorch are in :mod:`skpercept.heads` and :mod:`skpercept.heads`. The pieces are separate so a
backbone (e.g. a LoRA-tuned image tower) can be put in front of the same trunk and heads and
trained with the same NaN-masked losses:

>>> import torch
>>> from skpercept.heads.nets import MLPTrunk, RatingHeads
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

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from skpercept.personal import PersonalDeviation, PersonalModuleMixin

#: Activation names a head accepts (``activation=``), and their modules.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    # a linear trunk: with hidden_layer_sizes=(r,) the personal deviations live in r dimensions
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (``'relu'``, ``'gelu'``, ``'silu'``, ...)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.") from None


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose masks can come from a generator of its own (:func:`use_generator`).

    torch's dropout draws from the process-wide generator, which another thread may be using;
    a fit that gives its net a private generator gets the same masks whatever runs beside it.
    Without one (``generator`` None) it is ``nn.Dropout``. The mask is drawn and scaled as
    ATen's CPU dropout does, so on the CPU the numbers are those of ``nn.Dropout`` drawing the
    same stream.
    """

    generator: torch.Generator | None = None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0.0:
            return super().forward(X)
        if self.p == 1.0:
            return X * 0.0
        noise = torch.empty_like(X).bernoulli_(1.0 - self.p, generator=self.generator)
        return X * noise.div_(1.0 - self.p)


def reset_linear_layers(module: nn.Module, generator: torch.Generator) -> None:
    """Draw every ``nn.Linear`` weight and bias of ``module`` again, from ``generator``.

    The draws are ``nn.Linear``'s own initialization (Kaiming-uniform weights, uniform biases),
    made on the CPU in the order of ``module.modules()``, which is the order the layers were
    built in: a generator seeded like torch's global one when the module was built gives the
    same weights, and then the same stream for dropout. Other layers keep their weights (the
    skpercept nets' other parameters start at fixed values).
    """
    for sub in module.modules():
        if not isinstance(sub, nn.Linear):
            continue
        weight = torch.empty(sub.weight.shape)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        with torch.no_grad():
            sub.weight.copy_(weight)
            if sub.bias is not None:
                fan_in = sub.weight.shape[1]
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                sub.bias.copy_(
                    nn.init.uniform_(torch.empty(sub.bias.shape), -bound, bound, generator=generator)
                )


def use_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    """Let every :class:`Dropout` in ``module`` draw from ``generator`` (None: torch's global one)."""
    for sub in module.modules():
        if isinstance(sub, Dropout):
            sub.generator = generator


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
                layers.append(Dropout(float(dropout)))
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


class RatingNet(PersonalModuleMixin, nn.Module):
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
    user_index : sequence of int or None, default=None
        Columns of the person block: the trunk sees the other columns, and a
        :class:`PersonalDeviation` with a per-person offset and log-scale (per attribute)
        adds each person's deviation to the head's output.
    penalty : float, default=0.0
        Weight of ``||personal parameters||²`` added to the training loss.
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
        user_index: Sequence[int] | None = None,
        penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_features = int(n_features)
        n_items, users = self._init_personal(n_features, user_index, penalty)
        self.trunk = MLPTrunk(n_items, hidden_layer_sizes, activation, dropout, batch_norm)
        if n_classes is None:
            self.head: nn.Module = nn.Linear(self.trunk.out_features, int(n_outputs))
            groups = list(range(int(n_outputs)))
        else:
            self.head = RatingHeads(self.trunk.out_features, n_classes, loss)
            groups = [j for j, size in enumerate(self.head.sizes) for _ in range(size)]
        self.personal = (
            None
            if users is None
            else PersonalDeviation(len(users), self.trunk.out_features, len(groups), True, groups)
        )

    @property
    def linear(self) -> nn.Linear:
        """The shared head's linear layer (``w``, ``b``)."""
        return self.head if isinstance(self.head, nn.Linear) else self.head.linear

    def forward(self, X: torch.Tensor):
        items, u = self.split_unit(X)
        h = self.trunk(items)
        out = self.head(h)
        if u is not None:
            out = self.personal(h, out, u)
        return self._with_penalty(out)

    def add_users(self, n_new: int) -> None:
        """Widen the input by ``n_new`` person columns appended at the end of each row."""
        self._extend_index(self.n_features, n_new)
        self.n_features += int(n_new)


class PairScorer(PersonalModuleMixin, nn.Module):
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
    user_index : sequence of int or None, default=None
        Columns of the person block within a half: the trunk sees the other columns and the
        score is ``s(x, u) = h(x)·(w + V u) + b`` (:class:`PersonalDeviation`; an offset
        would cancel in ``s(left) − s(right)``). With ``hidden_layer_sizes=()`` and one-hot
        items, a hierarchical Bradley–Terry model.
    penalty : float, default=0.0
        Weight of ``||V||²`` added to the training loss.
    """

    def __init__(
        self,
        n_half: int,
        n_outputs: int = 1,
        hidden_layer_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
        user_index: Sequence[int] | None = None,
        penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_half = int(n_half)
        n_items, users = self._init_personal(n_half, user_index, penalty)
        self.trunk = MLPTrunk(n_items, hidden_layer_sizes, activation, dropout, batch_norm)
        self.head = nn.Linear(self.trunk.out_features, int(n_outputs))
        self.personal = (
            None if users is None else PersonalDeviation(len(users), self.trunk.out_features, int(n_outputs))
        )

    @property
    def linear(self) -> nn.Linear:
        """The shared head's linear layer (``w``, ``b``)."""
        return self.head

    def score(self, X_half: torch.Tensor) -> torch.Tensor:
        """Latent score of each item, shape ``(n, n_outputs)``."""
        items, u = self.split_unit(X_half)
        h = self.trunk(items)
        out = self.head(h)
        return out if u is None else self.personal(h, out, u)

    def forward(self, X: torch.Tensor):
        left, right = X[:, : self.n_half], X[:, self.n_half :]
        if self.training:
            scores = self.score(torch.cat([left, right], dim=0))
            return self._with_penalty(scores[: len(X)] - scores[len(X) :])
        return self.score(left) - self.score(right)

    def add_users(self, n_new: int) -> None:
        """Widen each half by ``n_new`` person columns appended at its end."""
        self._extend_index(self.n_half, n_new)
        self.n_half += int(n_new)


# -- losses ----------------------------------------------------------------------------------
def masked_loss(
    losses: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``losses`` over the entries where ``mask`` is true, weighted by ``weights``.

    ``losses`` must already be finite where ``mask`` is false (compute them on targets with the
    NaNs replaced), because ``nan * 0`` is still NaN and would poison the gradient. The mean is
    ``Σ w·l / Σ w`` over observed entries, so integer weights act as repeated rows. A batch with
    no observed (or only zero-weight) entry gives a zero that keeps the graph connected.
    """
    mask = mask.to(losses.dtype)
    if weights is not None:
        mask = mask * weights.to(losses.dtype)
    total = mask.sum()
    weighted = (losses * mask).sum()
    return torch.where(total > 0, weighted / total.clamp_min(torch.finfo(losses.dtype).tiny), weighted)


def split_penalty(pred) -> tuple[torch.Tensor, torch.Tensor | float]:
    """A module's output and the penalty it adds in training (see ``PersonalDeviation``)."""
    return pred if isinstance(pred, tuple) else (pred, 0.0)


def split_weights(y: torch.Tensor, n_labels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels and per-entry weights of targets: ``(n, n_labels)`` labels alone, or
    ``(n, 2 · n_labels)``, the labels followed by one weight per label."""
    y = _as_2d(y)
    if y.shape[1] != 2 * n_labels:
        return y, None
    return y[:, :n_labels], y[:, n_labels:]


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
    ``y`` may also be ``(n, 2 · n_outputs)``: the codes, then a weight per entry (the weighted
    mean of :func:`masked_loss`). ``logits`` may be a module's training output
    ``(logits, penalty)``; the penalty is added.
    """

    def __init__(self, n_classes: Sequence[int], loss: str = "ce") -> None:
        super().__init__()
        self.n_classes = [int(k) for k in n_classes]
        self.loss = loss
        self.sizes = [logit_width(k, loss) for k in self.n_classes]

    def entry_losses(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry losses ``(n, n_outputs)`` (finite everywhere) and the mask of observed labels."""
        mask = ~torch.isnan(y)
        codes = torch.where(mask, y, torch.zeros_like(y)).long()
        per_output = []
        for j, part in enumerate(_split_logits(logits, self.sizes)):
            if self.loss == "ce":
                per_output.append(F.cross_entropy(part, codes[:, j], reduction="none"))
            else:
                per_output.append(corn_nll(part, codes[:, j]))
        return torch.stack(per_output, dim=1), mask

    def forward(self, logits, y: torch.Tensor) -> torch.Tensor:
        logits, penalty = split_penalty(logits)
        y, w = split_weights(y, len(self.n_classes))
        return masked_loss(*self.entry_losses(logits, y), w) + penalty


_REGRESSION_LOSSES = {
    "mse": lambda p, t: F.mse_loss(p, t, reduction="none"),
    "huber": lambda p, t: F.huber_loss(p, t, reduction="none", delta=1.0),
    "mae": lambda p, t: F.l1_loss(p, t, reduction="none"),
}


class MaskedRegressionLoss(nn.Module):
    """MSE, Huber (δ = 1 on the standardized scale) or MAE with NaN-masked targets.

    Weighted targets and a ``(pred, penalty)`` input as in :class:`MaskedRatingLoss`.
    """

    def __init__(self, loss: str = "mse") -> None:
        super().__init__()
        if loss not in _REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {sorted(_REGRESSION_LOSSES)}, got {loss!r}.")
        self.loss = loss

    def entry_losses(self, pred: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry losses (finite everywhere) and the mask of observed targets."""
        pred = _as_2d(pred)
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, pred.detach())
        return _REGRESSION_LOSSES[self.loss](pred, target), mask

    def forward(self, pred, y: torch.Tensor) -> torch.Tensor:
        pred, penalty = split_penalty(pred)
        pred = _as_2d(pred)
        y, w = split_weights(y, pred.shape[1])
        return masked_loss(*self.entry_losses(pred, y), w) + penalty


class MaskedPairLoss(nn.Module):
    """Binary cross-entropy on ``s(left) − s(right)`` logits with soft labels and NaN masks.

    Weighted targets and a ``(logits, penalty)`` input as in :class:`MaskedRatingLoss`.
    """

    def entry_losses(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry log-losses (finite everywhere) and the mask of observed labels."""
        logits = _as_2d(logits)
        mask = ~torch.isnan(y)
        target = torch.where(mask, y, torch.zeros_like(y))
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none"), mask

    def forward(self, logits, y: torch.Tensor) -> torch.Tensor:
        logits, penalty = split_penalty(logits)
        logits = _as_2d(logits)
        y, w = split_weights(y, logits.shape[1])
        return masked_loss(*self.entry_losses(logits, y), w) + penalty
