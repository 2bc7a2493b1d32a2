"""The torch side of one person's taste: deviations from a shared head, and the modules' columns.

:class:`PersonalDeviation` holds every person's parameters (a deviation of the shared head's
weights, and for ratings an offset and a log-scale); :class:`PersonalModuleMixin` gives a
head's module (:class:`~skpercept.heads.nets.RatingNet`, :class:`~skpercept.heads.nets.PairScorer`)
the split of its input into item columns and the person block, and the prior's penalty in
training. The estimators' side (which columns are the person, fitting only people) is
:class:`~skpercept.personal.PersonalHeadMixin`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PersonalDeviation", "PersonalModuleMixin"]


class PersonalDeviation(nn.Module):
    """Per-person deviations from a shared linear head on the trunk's representation ``h``.

    For a person block ``u`` (one-hot for a known person, zeros for an unknown one) the output
    becomes ``exp(a·u) · (shared + h·(V u)) + c·u``, where ``shared = h·w + b`` is the shared
    head's output: ``V u`` adds to the head's weights, ``c·u`` (offset) and ``a·u`` (log-scale)
    exist only when asked for (ratings: lenient or harsh, consistent or erratic raters). Every
    personal parameter starts at zero, and ``u = 0`` leaves ``shared`` unchanged bit for bit.

    Parameters
    ----------
    n_users : int
        Width of the person block.
    n_features : int
        Width ``d`` of ``h``.
    n_outputs : int
        Columns of the shared head's output.
    offset : bool, default=False
        Learn a per-person offset per output column.
    scale_groups : sequence of int or None, default=None
        Learn a per-person log-scale per group; ``scale_groups[j]`` is the group of output
        column ``j`` (one group per rated attribute, so an attribute's logits share one scale).

    Attributes
    ----------
    V : Parameter of shape (n_users, n_features, n_outputs)
    offset : Parameter of shape (n_users, n_outputs) or None
    log_scale : Parameter of shape (n_users, n_groups) or None

    Examples
    --------
    >>> import torch
    >>> from skpercept.personal import PersonalDeviation
    >>> personal = PersonalDeviation(n_users=3, n_features=4, n_outputs=1, offset=True)
    >>> h, shared = torch.ones(2, 4), torch.zeros(2, 1)
    >>> u = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # person 0, then an unknown one
    >>> with torch.no_grad():
    ...     personal.V[0] += 0.5  # person 0 weighs every feature 0.5 more
    ...     personal.offset[0] += 1.0
    ...     print(personal(h, shared, u).squeeze(1).tolist())
    [3.0, 0.0]
    >>> float(personal.squared_norm().detach())  # 4 weights of 0.5², one offset of 1²
    2.0
    """

    def __init__(
        self,
        n_users: int,
        n_features: int,
        n_outputs: int,
        offset: bool = False,
        scale_groups: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.V = nn.Parameter(torch.zeros(int(n_users), int(n_features), int(n_outputs)))
        self.offset = nn.Parameter(torch.zeros(int(n_users), int(n_outputs))) if offset else None
        if scale_groups is None:
            self.log_scale = None
            self.register_buffer("scale_groups", None, persistent=False)
        else:
            groups = torch.as_tensor(list(scale_groups), dtype=torch.long)
            self.log_scale = nn.Parameter(torch.zeros(int(n_users), int(groups.max()) + 1))
            self.register_buffer("scale_groups", groups, persistent=False)

    def gather(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Each row's ``V u`` ``(n, d, n_outputs)``, ``c·u`` and ``a·u`` (None when not learned)."""
        n_users, d, n_out = self.V.shape
        Vu = (u @ self.V.reshape(n_users, d * n_out)).reshape(len(u), d, n_out)
        offset = None if self.offset is None else u @ self.offset
        log_scale = None if self.log_scale is None else u @ self.log_scale
        return Vu, offset, log_scale

    def apply(
        self,
        h: torch.Tensor,
        shared: torch.Tensor,
        Vu: torch.Tensor,
        offset: torch.Tensor | None,
        log_scale: torch.Tensor | None,
    ) -> torch.Tensor:
        """The personal output from per-row parameters (as :meth:`gather` returns them)."""
        out = shared + torch.einsum("nd,ndo->no", h, Vu)
        if log_scale is not None:
            out = out * torch.exp(log_scale[:, self.scale_groups])
        if offset is not None:
            out = out + offset
        return out

    def forward(self, h: torch.Tensor, shared: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.apply(h, shared, *self.gather(u))

    def squared_norm(self) -> torch.Tensor:
        """``||V||² + ||c||² + ||a||²``: the Gaussian prior's energy (up to its precision)."""
        total = self.V.pow(2).sum()
        for p in (self.offset, self.log_scale):
            if p is not None:
                total = total + p.pow(2).sum()
        return total

    def add_users(self, n_new: int) -> None:
        """Append ``n_new`` people with zero deviations (existing people keep their values)."""
        for name in ("V", "offset", "log_scale"):
            p = getattr(self, name)
            if p is not None:
                zeros = torch.zeros((int(n_new),) + tuple(p.shape[1:]), dtype=p.dtype, device=p.device)
                setattr(self, name, nn.Parameter(torch.cat([p.detach(), zeros], dim=0)))


class PersonalModuleMixin:
    """Column bookkeeping of a module whose input rows (or halves) hold a person block.

    ``user_index`` are the person columns of one unit (a rating row, a pair half); the trunk
    sees the remaining ``item_index`` columns. In training mode :meth:`_output` returns
    ``(output, penalty)``: the masked losses of this module add the penalty, so the prior on
    the personal parameters is part of the training loss but not of the validation loss.

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.nets import RatingNet
    >>> from skpercept.personal import PersonalModuleMixin
    >>> net = RatingNet(5, hidden_layer_sizes=(), user_index=[3, 4], penalty=0.1)
    >>> isinstance(net, PersonalModuleMixin)
    True
    >>> items, person = net.split_unit(torch.zeros(2, 5))  # columns 3 and 4 are the person
    >>> tuple(items.shape), tuple(person.shape)
    ((2, 3), (2, 2))
    >>> out, penalty = net.train()(torch.zeros(2, 5))  # training: the prior's penalty too
    >>> tuple(out.shape), float(penalty.detach())
    ((2, 1), 0.0)
    >>> tuple(net.eval()(torch.zeros(2, 5)).shape)  # evaluation: the output alone
    (2, 1)
    """

    def _init_personal(
        self, n_unit: int, user_index: Sequence[int] | None, penalty: float
    ) -> tuple[int, list[int] | None]:
        self.penalty = float(penalty)
        if user_index is None:
            self.register_buffer("user_index", None, persistent=False)
            self.register_buffer("item_index", None, persistent=False)
            return int(n_unit), None
        users = sorted(int(i) for i in user_index)
        items = sorted(set(range(int(n_unit))) - set(users))
        self.register_buffer("user_index", torch.as_tensor(users, dtype=torch.long), persistent=False)
        self.register_buffer("item_index", torch.as_tensor(items, dtype=torch.long), persistent=False)
        return len(items), users

    def split_unit(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Item columns and person block of a unit (the person block is None without one)."""
        if self.user_index is None:
            return X, None
        return X.index_select(1, self.item_index), X.index_select(1, self.user_index)

    def _with_penalty(self, out: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.training and getattr(self, "personal", None) is not None and self.penalty > 0:
            return out, self.penalty * self.personal.squared_norm()
        return out

    def _extend_index(self, n_unit: int, n_new: int) -> None:
        new = torch.arange(n_unit, n_unit + n_new, dtype=torch.long, device=self.user_index.device)
        self.user_index = torch.cat([self.user_index, new])
        self.personal.add_users(n_new)
