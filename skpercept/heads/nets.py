"""Torch modules behind skpercept's heads: MLP trunk, rating / regression heads, pair scorer, losses.

Only ``torch.nn`` code lives here; the scikit-learn estimators that train these modules with
skorch are in :mod:`skpercept.heads` (on features) and :mod:`skpercept.finetune` (on images).
The pieces are separate so a backbone (e.g. a LoRA-tuned image tower) can be put in front of
the same trunk and heads and trained with the same NaN-masked losses:

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

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skpercept.personal import PersonalDeviation, PersonalModuleMixin

__all__ = [
    "ACTIVATIONS",
    "Dropout",
    "MLPTrunk",
    "MaskedPairLoss",
    "MaskedRatingLoss",
    "MaskedRegressionLoss",
    "PairScorer",
    "RatingHeads",
    "RatingNet",
    "corn_nll",
    "corn_proba",
    "logit_width",
    "make_activation",
    "marginal_logits",
    "masked_loss",
    "reset_linear_layers",
    "split_penalty",
    "split_weights",
    "use_generator",
]

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
    """Return a fresh activation module by name (``'relu'``, ``'gelu'``, ``'silu'``, ...).

    Parameters
    ----------
    name : str
        A key of :data:`ACTIVATIONS`.

    Returns
    -------
    activation : torch.nn.Module

    Examples
    --------
    >>> from skpercept.heads.nets import make_activation
    >>> make_activation("gelu")
    GELU(approximate='none')
    >>> make_activation("swish")
    Traceback (most recent call last):
    ...
    ValueError: activation must be one of ['elu', 'gelu', 'identity', 'leaky_relu', 'relu', 'silu', 'tanh'], got 'swish'.
    """
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

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import Dropout
    >>> drop = Dropout(0.5)
    >>> drop.generator = torch.Generator().manual_seed(0)
    >>> first = drop(torch.ones(2, 4))  # kept entries are scaled by 1 / (1 - p)
    >>> first
    tensor([[0., 0., 2., 0.],
            [0., 0., 2., 2.]])
    >>> drop.generator = torch.Generator().manual_seed(0)  # the same stream, the same masks
    >>> torch.equal(drop(torch.ones(2, 4)), first)
    True
    >>> drop.eval()(torch.ones(1, 3))  # the identity outside training
    tensor([[1., 1., 1.]])
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

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator
        A CPU generator.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skpercept.heads.nets import reset_linear_layers
    >>> _ = torch.manual_seed(0)
    >>> built = nn.Linear(3, 2)  # drawn from torch's global generator
    >>> redrawn = nn.Linear(3, 2)
    >>> reset_linear_layers(redrawn, torch.Generator().manual_seed(0))
    >>> torch.equal(built.weight, redrawn.weight), torch.equal(built.bias, redrawn.bias)
    (True, True)
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
    """Let every :class:`Dropout` in ``module`` draw from ``generator`` (None: torch's global one).

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import MLPTrunk, use_generator
    >>> trunk = MLPTrunk(4, hidden_layer_sizes=(8,), dropout=0.5).train()
    >>> use_generator(trunk, torch.Generator().manual_seed(0))
    >>> first = trunk(torch.ones(3, 4))
    >>> use_generator(trunk, torch.Generator().manual_seed(0))
    >>> torch.equal(trunk(torch.ones(3, 4)), first)  # the same dropout masks again
    True
    >>> use_generator(trunk, None)  # back to torch's global generator
    """
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

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import MLPTrunk
    >>> trunk = MLPTrunk(16, hidden_layer_sizes=(32, 8), activation="gelu", dropout=0.0)
    >>> trunk.out_features, trunk(torch.zeros(5, 16)).shape
    (8, torch.Size([5, 8]))
    >>> MLPTrunk(16, hidden_layer_sizes=()).out_features  # no hidden layer: the identity
    16
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

    Attributes
    ----------
    sizes : list of int
        Logits per attribute (:func:`logit_width`), in the order of the output's columns.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import RatingHeads
    >>> heads = RatingHeads(8, n_classes=[5, 3])  # two attributes, 5 and 3 levels
    >>> heads.sizes, heads(torch.zeros(2, 8)).shape
    ([5, 3], torch.Size([2, 8]))
    >>> RatingHeads(8, n_classes=[5, 3], loss="corn").sizes
    [4, 2]
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
    """Logits a rating head needs for ``n_classes`` levels under ``loss``.

    Examples
    --------
    >>> from skpercept.heads.nets import logit_width
    >>> logit_width(5, "ce"), logit_width(5, "corn")
    (5, 4)
    """
    if loss == "ce":
        return n_classes
    if loss == "corn":
        return n_classes - 1
    raise ValueError(f"loss must be 'ce' or 'corn' for ratings, got {loss!r}.")


def marginal_logits(codes: np.ndarray, weights: np.ndarray, n_levels: int, loss: str = "ce") -> np.ndarray:
    """The logits of one attribute's rating head that predict the level shares of ``codes``
    (level indices, NaN where missing; ``weights`` per row) whatever the features: softmax
    logits ``log p_k`` (centred) for ``loss='ce'``, CORN's conditional logits
    ``logit P(level > k | level ≥ k)`` for ``'corn'``. Half a rating is added to every level, so
    a level nobody gave gets a finite logit.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads.nets import marginal_logits
    >>> codes = np.array([0, 0, 0, 1, np.nan])
    >>> p = np.exp(marginal_logits(codes, np.ones(5), 2).astype(float))
    >>> (p / p.sum()).round(3).tolist()  # (3 + 0.5) / 5 and (1 + 0.5) / 5
    [0.7, 0.3]
    >>> marginal_logits(codes, np.ones(5), 2, "corn").astype(float).round(3).tolist()  # log(1.5 / 3.5)
    [-0.847]
    """
    seen = ~np.isnan(codes)
    counts = np.bincount(codes[seen].astype(int), weights=weights[seen], minlength=n_levels)[:n_levels] + 0.5
    if loss == "ce":
        logits = np.log(counts)
        return (logits - logits.mean()).astype(np.float32)
    at_least = np.cumsum(counts[::-1])[::-1]  # weight of level ≥ k
    above = at_least[1:]  # weight of level > k
    return np.log(above / (at_least[:-1] - above)).astype(np.float32)


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
        :class:`~skpercept.personal.PersonalDeviation` with a per-person offset and log-scale
        (per attribute) adds each person's deviation to the head's output.
    penalty : float, default=0.0
        Weight of ``||personal parameters||²`` added to the training loss.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import RatingNet
    >>> X = torch.zeros(4, 6)
    >>> ratings = RatingNet(6, n_classes=[5, 3], hidden_layer_sizes=(8,)).eval()
    >>> ratings(X).shape  # 5 + 3 concatenated logits
    torch.Size([4, 8])
    >>> RatingNet(6, n_outputs=2, hidden_layer_sizes=()).eval()(X).shape  # two regression values
    torch.Size([4, 2])

    With a person block (the last two columns, one-hot) and a penalty, training-mode output
    is ``(output, penalty)``, which the masked losses unpack:

    >>> personal = RatingNet(6, hidden_layer_sizes=(8,), user_index=[4, 5], penalty=0.1)
    >>> personal.trunk.layers[0].in_features  # the trunk sees the four item columns
    4
    >>> out, penalty = personal.train()(torch.eye(6)[[4, 5]])
    >>> out.shape, penalty.shape
    (torch.Size([2, 1]), torch.Size([]))
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
        score is ``s(x, u) = h(x)·(w + V u) + b`` (:class:`~skpercept.personal.PersonalDeviation`;
        an offset would cancel in ``s(left) − s(right)``). With ``hidden_layer_sizes=()`` and
        one-hot items, a hierarchical Bradley–Terry model.
    penalty : float, default=0.0
        Weight of ``||V||²`` added to the training loss.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import PairScorer
    >>> _ = torch.manual_seed(0)
    >>> scorer = PairScorer(3, n_outputs=2, hidden_layer_sizes=(8,)).eval()
    >>> X = torch.randn(4, 6)  # rows [left | right], three columns each
    >>> swapped = torch.cat([X[:, 3:], X[:, :3]], dim=1)
    >>> scorer(X).shape, torch.equal(scorer(swapped), -scorer(X))
    (torch.Size([4, 2]), True)
    >>> scorer.score(X[:, :3]).shape  # the latent score of the left items
    torch.Size([4, 2])
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

    Parameters
    ----------
    losses : torch.Tensor
        Per-entry losses, finite everywhere.
    mask : torch.Tensor of bool
        Same shape; True where the label was observed.
    weights : torch.Tensor or None, default=None
        Same shape; per-entry weights (None: all 1).

    Returns
    -------
    loss : torch.Tensor
        A scalar.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import masked_loss
    >>> losses = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    >>> mask = torch.tensor([[True, False], [True, True]])
    >>> masked_loss(losses, mask)  # (1 + 3 + 0) / 3
    tensor(1.3333)
    >>> masked_loss(losses, mask, weights=torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    tensor(1.)
    >>> masked_loss(losses, torch.zeros_like(mask))  # nothing observed
    tensor(0.)
    """
    mask = mask.to(losses.dtype)
    if weights is not None:
        mask = mask * weights.to(losses.dtype)
    total = mask.sum()
    weighted = (losses * mask).sum()
    return torch.where(total > 0, weighted / total.clamp_min(torch.finfo(losses.dtype).tiny), weighted)


def split_penalty(pred) -> tuple[torch.Tensor, torch.Tensor | float]:
    """A module's output and the penalty it adds in training (see
    :class:`~skpercept.personal.PersonalDeviation`).

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import split_penalty
    >>> split_penalty(torch.ones(2))  # an output alone: no penalty
    (tensor([1., 1.]), 0.0)
    >>> split_penalty((torch.ones(2), torch.tensor(0.5)))
    (tensor([1., 1.]), tensor(0.5000))
    """
    return pred if isinstance(pred, tuple) else (pred, 0.0)


def split_weights(y: torch.Tensor, n_labels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels and per-entry weights of targets: ``(n, n_labels)`` labels alone, or
    ``(n, 2 · n_labels)``, the labels followed by one weight per label.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import split_weights
    >>> split_weights(torch.tensor([[1.0, 0.0, 2.0, 0.5]]), n_labels=2)
    (tensor([[1., 0.]]), tensor([[2.0000, 0.5000]]))
    >>> split_weights(torch.tensor([[1.0, 0.0]]), n_labels=2)  # labels alone
    (tensor([[1., 0.]]), None)
    """
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

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import corn_nll, corn_proba
    >>> logits = torch.zeros(1, 2)  # three levels, every conditional probability 1/2
    >>> corn_nll(logits, torch.tensor([1]))  # -log P(y = 1) = -log(1/2 · 1/2)
    tensor([1.3863])
    >>> -corn_proba(logits)[:, 1].log()
    tensor([1.3863])
    """
    k1 = logits.shape[1]
    tasks = torch.arange(k1, device=logits.device)
    reached = tasks[None, :] <= codes[:, None]
    above = (codes[:, None] > tasks[None, :]).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, above, reduction="none")
    return (bce * reached.to(logits.dtype)).sum(dim=1)


def corn_proba(logits: torch.Tensor) -> torch.Tensor:
    """Level probabilities ``(n, k)`` from CORN logits ``(n, k - 1)``; rows sum to 1.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import corn_proba
    >>> corn_proba(torch.zeros(1, 2))  # P(y > 0) = 1/2, then P(y > 1 | y > 0) = 1/2
    tensor([[0.5000, 0.2500, 0.2500]])
    >>> corn_proba(torch.tensor([[10.0, -10.0]])).argmax(dim=1)  # surely above 0, surely not above 1
    tensor([1])
    """
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

    Parameters
    ----------
    n_classes : sequence of int
        Number of rating levels per attribute.
    loss : {'ce', 'corn'}, default='ce'
        As for :class:`RatingHeads`.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import MaskedRatingLoss
    >>> loss = MaskedRatingLoss(n_classes=[3, 2])
    >>> logits = torch.zeros(2, 5)  # uniform over 3 and over 2 levels
    >>> y = torch.tensor([[0.0, 1.0], [2.0, float("nan")]])  # one label missing
    >>> loss(logits, y)  # (log 3 + log 2 + log 3) / 3
    tensor(0.9635)
    >>> weighted = torch.cat([y, torch.tensor([[1.0, 0.0], [1.0, 1.0]])], dim=1)
    >>> loss(logits, weighted)  # the second attribute's label now weighs nothing: log 3
    tensor(1.0986)
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

    Parameters
    ----------
    loss : {'mse', 'huber', 'mae'}, default='mse'

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import MaskedRegressionLoss
    >>> pred = torch.tensor([[1.0], [2.0], [0.0]])
    >>> y = torch.tensor([[0.0], [float("nan")], [2.0]])
    >>> MaskedRegressionLoss("mse")(pred, y)  # (1² + 2²) / 2
    tensor(2.5000)
    >>> MaskedRegressionLoss("mae")(pred, y)
    tensor(1.5000)
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

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import MaskedPairLoss
    >>> logits = torch.zeros(3, 1)  # P(left ≻ right) = 1/2 for every pair
    >>> y = torch.tensor([[1.0], [float("nan")], [0.5]])  # a hard, a missing and a soft label
    >>> MaskedPairLoss()(logits, y)  # log 2
    tensor(0.6931)
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
