"""One person's taste inside a head: which columns are the person, and fitting only people.

:class:`PersonalHeadMixin` gives the skorch-trained heads (:mod:`skpercept.heads`,
:mod:`skpercept.heads`) their ``user_features`` bookkeeping and the methods that work on the
personal part alone: :meth:`~PersonalHeadMixin.fit_users`,
:meth:`~PersonalHeadMixin.item_representation` and :meth:`~PersonalHeadMixin.user_deviation`.
The torch side (the deviation ``h(x)·(w + V u)``, offsets and scales) is
:class:`skpercept.personal.PersonalDeviation`; a head with a module of its own
(:class:`skpercept.heads.JointRatingRanker`) fits people with the same machinery by
overriding ``_personal_blocks`` and ``_personal_output``.

A *unit* is what one person looks at: a rating row, or one half of a pair row. ``user_features_``
are column positions within a unit (the same in both halves of a pair).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from skpercept._compat import check_sample_weight
from skpercept._dataframes import as_pandas
from skpercept._holdout import context_columns
from skpercept.personal._prior import (
    MIN_PRIOR_PEOPLE,
    PRIOR_EM_ROUNDS,
    block_hessians,
    shrink_covariance,
    symmetric_inverse,
)

#: Names of the columns a :class:`~skpercept.personal.UserEncoder` makes, as a Pipeline passes them
#: on: ``user_id_ann``, ``user_ann``, or with a ColumnTransformer / PairFeatures prefix
#: (``user__user_id_ann``, ``left__user_id_ann``).
USER_FEATURE_NAME = re.compile(r"(^|__)user(_id)?_")

_NO_USERS = np.empty(0, dtype=np.int64)

#: ``user_alpha='auto'``: the prior strengths tried on held-out judgments of the training people.
USER_ALPHA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: ``user_alpha='auto'``: the prior strength the learned prior starts from, and the one kept
#: where the strength cannot be chosen (or the person columns are not one-hot: training then
#: uses it).
START_USER_ALPHA = 1.0
#: ... at most this many people (a random subset) take part in choosing it.
MAX_SELECTION_PEOPLE = 2000
#: ... the early-stopping hold-out's rows take part only with at least this many labels of
#: known people (else the cross-validation over the training people's judgments decides alone).
MIN_HELD_OUT_LABELS = 10
SELECTION_FOLDS = 3


def _unit_names(names: np.ndarray | None, n_units: int) -> np.ndarray | None:
    if names is None:
        return None
    return np.asarray(names, dtype=object)[: len(names) // n_units]


class PersonalHeadMixin:
    """``user_features`` resolution, ``fit_users`` and the personal read-outs of a head.

    A base of :class:`skpercept.heads.base.SkorchHead`. A head with ``_weighted_personal`` (its
    module a :class:`~skpercept.personal.PersonalDeviation` user) has ``fit`` call
    :meth:`_resolve_users`, build the module with ``user_index`` and train on weighted
    targets; it sets ``_units`` (1 for ratings, 2 for pairs) and implements ``_encode_y`` with
    ``reset`` and ``sample_weight`` keywords.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.personal import PersonalHeadMixin
    >>> rng = np.random.default_rng(0)
    >>> items, people = rng.normal(size=(30, 3)), np.eye(2)
    >>> i, u = rng.integers(0, 30, size=100), rng.integers(0, 2, size=100)
    >>> X = np.hstack([items[i], people[u]])  # item columns, then the person block
    >>> y = items[i, 0] * np.where(u == 0, 1.0, -1.0)  # the two people disagree
    >>> reg = RatingRegressor(hidden_layer_sizes=(), user_features=[3, 4], max_epochs=10,
    ...                       random_state=0).fit(X, y)
    >>> isinstance(reg, PersonalHeadMixin), reg.user_features_.tolist()
    (True, [3, 4])
    >>> reg.item_representation(X[:5]).shape, reg.user_deviation(X[:5]).shape
    ((5, 3), (5, 3, 1))
    >>> reg = reg.fit_users(X[u == 1], y[u == 1])  # refit person 1 alone
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _units: ClassVar[int] = 1

    # -- which columns are the person --------------------------------------------------------
    def _unit_width(self) -> int:
        return int(self.n_features_in_) // self._units

    def _user_index(self) -> np.ndarray:
        """Fitted person columns within a unit (empty: no personal part, or a head of its own
        that never resolved any)."""
        return self.__dict__.get("user_features_", np.empty(0, dtype=np.intp))

    def _resolve_users(self, X: np.ndarray) -> None:
        """Set ``user_features_`` and ``n_user_features_`` from ``user_features`` and ``X``."""
        spec = self.user_features
        width = X.shape[1] // self._units
        names = _unit_names(getattr(self, "feature_names_in_", None), self._units)
        if spec is None:
            index = _NO_USERS
        elif isinstance(spec, str):  # 'auto' (the constraints allow no other string)
            index = self._auto_user_features(X, names)
        else:
            index = _spec_indices(spec, width, names)
        if len(index) and len(index) == width:
            raise ValueError(
                f"user_features selects all {width} columns of a {self._unit_name()}; the shared model "
                "needs at least one item feature column."
            )
        self.user_features_ = index
        self.n_user_features_ = len(index)

    def _unit_name(self) -> str:
        return "pair half" if self._units == 2 else "row"

    def _auto_user_features(self, X: np.ndarray, names: np.ndarray | None) -> np.ndarray:
        """Rating rows: the columns named like :class:`~skpercept.personal.UserEncoder` output."""
        if names is None:
            raise ValueError(
                "user_features='auto' recognizes the person's columns by their names (as a "
                "UserEncoder makes them, e.g. 'user_id_ann'), but X has no feature names: pass a "
                "DataFrame (set_output(transform='pandas') on the preprocessing) or give "
                "user_features as column indices."
            )
        index = np.flatnonzero([bool(USER_FEATURE_NAME.search(str(n))) for n in names])
        if not len(index):
            raise ValueError(
                "user_features='auto' found no column named like UserEncoder output "
                f"('user_id_<id>', '<prefix>__user_id_<id>') among {list(names)[:8]}...; pass "
                "user_features as column indices, a mask or names."
            )
        return index

    def _item_part(self, X: np.ndarray) -> np.ndarray:
        """``X`` without its person columns (in every unit): what describes the items."""
        users = self._user_index()
        if not len(users):
            return X
        width = X.shape[1] // self._units
        keep = np.ones(X.shape[1], dtype=bool)
        for unit in range(self._units):
            keep[unit * width + users] = False
        return X[:, keep]

    def _module_user_params(self, penalty: float) -> dict:
        users = self._user_index()
        if not len(users):
            return {}
        return {"user_index": [int(i) for i in users], "penalty": float(penalty)}

    # -- fitting people ----------------------------------------------------------------------
    def fit_users(self, X: Any, y: Any, sample_weight: Any = None):
        """Fit the personal parameters of the people in ``X`` only; the shared model is frozen.

        Each row's person block (the ``user_features_`` columns; in both halves of a pair
        row) must be one-hot: the row's person. Their deviations ``V u`` (ratings: also the
        offset and log-scale) are re-estimated from these rows alone, as the maximum of the
        same posterior ``fit`` maximizes: ``Σ w·loss + ½ θ_uᵀ P θ_u`` per person, with ``P``
        the prior precision (:meth:`user_prior_precision`: ``2·user_alpha·I``, or the learned
        ``user_precision_`` with ``user_prior='learned'``), the trunk's representation
        ``h(x)`` computed once and L-BFGS on the few personal parameters. Nobody else's parameters, and so nobody else's predictions, change. Pass
        all of a person's judgments: earlier values of the people in ``X`` are replaced.

        New people: ``X`` may have ``k`` more columns than in ``fit`` per unit, appended at
        the end of each row (ratings) or of each half (pairs), as
        :meth:`skpercept.personal.UserEncoder.add_users` appends them; they become person
        columns with zero deviations (the shared model) before the fit, and
        ``n_features_in_``, ``user_features_``, ``n_user_features_`` (and the ranker's
        ``n_half_features_``) grow accordingly. :func:`skpercept.personal.add_users` does
        this for a fitted Pipeline.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels as in ``fit`` (the classifier's levels must be among ``classes_``).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        check_is_fitted(self, "net_")
        if not self._weighted_personal or not len(self._user_index()):
            raise ValueError(
                f"fit_users needs a {type(self).__name__} fitted with user_features; this one has "
                "no person columns."
            )
        X = self._widen(X)
        y_encoded = self._encode_y(y, len(X), reset=False)
        weights = self._entry_weights(y_encoded, sample_weight, X)
        people = self._people(X)
        for member, net in enumerate(self._members()):
            self._fit_people(
                net,
                X,
                y_encoded,
                weights,
                people,
                precision=self._member_precision(member),
                alpha=self._alpha(member),
            )
        return self

    def _widen(self, X: Any) -> np.ndarray:
        """``X`` validated as float32; person columns appended per unit are added to the model."""
        names = None
        X = as_pandas(X)  # a polars frame (set_output) keeps the names checked below
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            names = np.asarray(X.columns, dtype=object)
        tags = self.__sklearn_tags__().input_tags  # the joint head's rating rows carry NaN
        X = check_array(
            X,
            accept_sparse=("csr", "csc", "coo") if tags.sparse else False,
            dtype=(np.float32, np.float64),
            ensure_all_finite="allow-nan" if tags.allow_nan else True,
        )
        X = np.ascontiguousarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)
        old = int(self.n_features_in_)
        extra = X.shape[1] - old
        if extra < 0 or extra % self._units:
            raise ValueError(
                f"X has {X.shape[1]} features; this {type(self).__name__} was fitted on {old}. "
                f"fit_users accepts {old} plus k new person columns at the end of each "
                f"{self._unit_name()} ({old} + {self._units}·k)."
            )
        k = extra // self._units
        fitted_names = getattr(self, "feature_names_in_", None)
        if names is not None and fitted_names is not None:
            width = old // self._units
            kept = np.concatenate(
                [names[u * (width + k) : u * (width + k) + width] for u in range(self._units)]
            )
            if not np.array_equal(kept, fitted_names):
                raise ValueError(
                    "X's feature names differ from those seen in fit (new person columns go at the "
                    "end of each row / pair half; the others keep their names and order)."
                )
        if k:
            self._add_user_columns(k)
            if fitted_names is not None and names is not None:
                self.feature_names_in_ = names
            elif fitted_names is not None:  # the new columns have no names: forget the old ones
                del self.feature_names_in_
        return X

    def _add_user_columns(self, k: int) -> None:
        width = self._unit_width()
        for net in self._members():
            module = net.module_
            module.add_users(k)
            # keep the net's init parameters in step with its module (re-initializing rebuilds it)
            for key in ("n_half", "n_features"):
                if hasattr(module, key) and hasattr(net, f"module__{key}"):
                    setattr(net, f"module__{key}", getattr(module, key))
            net.module__user_index = [int(i) for i in module.user_index.tolist()]
        self.user_features_ = np.concatenate([self.user_features_, np.arange(width, width + k)])
        self.n_user_features_ = len(self.user_features_)
        self.n_features_in_ = int(self.n_features_in_) + self._units * k
        if hasattr(self, "n_half_features_"):
            self.n_half_features_ = self.n_features_in_ // 2

    def _user_blocks(self, X: np.ndarray) -> list[np.ndarray]:
        width = X.shape[1] // self._units
        return [X[:, unit * width + self.user_features_] for unit in range(self._units)]

    def _people(self, X: np.ndarray) -> np.ndarray:
        """Each row's person (position in the person block), checking the blocks are one-hot."""
        blocks = self._user_blocks(X)
        block = blocks[0]
        if any(not np.array_equal(b, block) for b in blocks[1:]):
            row = int(np.flatnonzero((blocks[1] != block).any(axis=1))[0])
            raise ValueError(f"Row {row}: the person columns differ between the two halves of the pair.")
        one_hot = np.all((block == 0) | (block == 1), axis=1) & (block.sum(axis=1) == 1)
        if not one_hot.all():
            row = int(np.flatnonzero(~one_hot)[0])
            raise ValueError(
                f"fit_users needs one known person per row (a one-hot person block); row {row} has "
                f"{block[row].tolist()[:10]}. An all-zero block is an unknown person: add them first "
                "(UserEncoder.add_users, or skpercept.personal.add_users)."
            )
        return block.argmax(axis=1)

    def _fit_people(
        self,
        net: Any,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        people: np.ndarray,
        precision: np.ndarray | None = None,
        warm_start: bool = False,
        hessians: bool = False,
        alpha: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """MAP personal parameters of the people in ``people`` (rows of ``-1`` are skipped).

        The penalty is ``½ θᵀ P θ`` per person: ``P = precision``, or ``2·alpha·I`` when
        None (``alpha``: the fitted strength by default). Writes the fitted values into the
        module and returns the people, their flattened parameters ``θ`` ``(n, p)`` and, with
        ``hessians``, the Hessians of their data terms ``Σ w·loss`` at ``θ`` ``(n, p, p)``
        (the Laplace approximation's curvature).
        """
        keep = people >= 0
        X, y, weights, people = X[keep], y[keep], weights[keep], people[keep]
        present = np.unique(people)
        blocks = self._personal_blocks(net)
        index = torch.as_tensor(present, dtype=torch.long, device=blocks[0].device)
        start = None
        if warm_start:
            start = torch.cat([p.detach()[index].reshape(len(present), -1).cpu().double() for p in blocks], 1)
        alpha = self._alpha(0) if alpha is None else float(alpha)
        with self._personal_output(net, X) as output:
            present, theta, H = self._map_people(
                output, blocks, y, weights, people, precision, alpha, start=start, hessians=hessians
            )
        with torch.no_grad():
            for current, fitted in zip(blocks, _unpack(torch.from_numpy(theta), blocks)):
                current[index] = fitted.to(current.dtype).to(current.device)
        return present, theta, H

    def _map_people(
        self,
        output: Callable[[list], torch.Tensor],
        blocks: list[torch.Tensor],
        y: np.ndarray,
        weights: np.ndarray,
        people: np.ndarray,
        precision: np.ndarray | None,
        alpha: float,
        start: torch.Tensor | None = None,
        hessians: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The MAP ``θ`` of every person in ``people`` (all ``≥ 0``) given the module's output
        function on their rows (:meth:`_personal_output`); nothing is written to the module."""
        present, rows = np.unique(people, return_inverse=True)
        width = sum(int(np.prod(p.shape[1:])) for p in blocks)
        if start is None:
            start = torch.zeros((len(present), width), dtype=torch.float64)
        theta = start.clone().requires_grad_()
        rows_t = torch.from_numpy(rows)
        target = torch.from_numpy(y.astype(np.float64))
        w = torch.from_numpy(weights.astype(np.float64))
        criterion = self._criterion_module()
        P = None if precision is None else torch.from_numpy(np.asarray(precision, dtype=np.float64))

        def prior_term(flat: torch.Tensor) -> torch.Tensor:
            if P is None:
                return alpha * flat.pow(2).sum()
            return 0.5 * ((flat @ P) * flat).sum()

        def data_term(flat: torch.Tensor) -> torch.Tensor:
            losses, mask = criterion.entry_losses(output([p[rows_t] for p in _unpack(flat, blocks)]), target)
            return (losses * mask * w).sum()

        optimizer = torch.optim.LBFGS(
            [theta],
            lr=1,
            max_iter=200,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            loss = data_term(theta) + prior_term(theta)
            loss.backward()
            return loss

        optimizer.step(objective)
        H = block_hessians(data_term, theta.detach()) if hessians else None
        return present, theta.detach().numpy(), H

    def _criterion_module(self) -> Any:
        criterion_cls, criterion_params = self._criterion()
        return criterion_cls(**criterion_params)

    def _held_out_loss(
        self,
        output: Callable[[list], torch.Tensor],
        blocks: list[torch.Tensor],
        y: np.ndarray,
        weights: np.ndarray,
        people: np.ndarray,
        present: np.ndarray,
        theta: np.ndarray,
    ) -> float:
        """``Σ w·loss`` of the rows of ``people`` under the fitted ``θ`` of ``present`` (a person
        without one gets the shared model)."""
        position = np.clip(np.searchsorted(present, people), 0, max(len(present) - 1, 0))
        found = present[position] == people if len(present) else np.zeros(len(people), dtype=bool)
        per_row = np.zeros((len(people), theta.shape[1]))
        per_row[found] = theta[position[found]]
        with torch.no_grad():
            out = output(_unpack(torch.from_numpy(per_row), blocks))
        return self._selection_loss(out, y, weights)

    def _selection_loss(self, out: torch.Tensor, y: np.ndarray, weights: np.ndarray) -> float:
        """``Σ w·loss`` of held-out outputs as the fitted model will predict them (a head with a
        post-hoc step fitted on the same rows, such as a temperature, applies it first)."""
        return self._weighted_loss(out, y, weights)

    def _weighted_loss(self, out: torch.Tensor, y: np.ndarray, weights: np.ndarray) -> float:
        """``Σ w·loss`` of the module's output ``out`` against ``y`` (NaN labels skipped)."""
        with torch.no_grad():
            losses, mask = self._criterion_module().entry_losses(out, torch.from_numpy(y.astype(np.float64)))
            return float((losses * mask * torch.from_numpy(weights.astype(np.float64))).sum())

    # -- how strongly people are pulled toward the shared model -------------------------------
    def _alpha(self, member: int = 0) -> float:
        """The prior strength in use: fitted (``user_alpha_``), else the one to start from."""
        fitted = getattr(self, "user_alpha_", None)
        if fitted is not None and member < len(fitted):
            return float(fitted[member])
        return START_USER_ALPHA if isinstance(self.user_alpha, str) else float(self.user_alpha)

    def _select_user_alpha(
        self,
        net: Any,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        people: np.ndarray,
        train: np.ndarray,
        valid: np.ndarray | None,
        precision: np.ndarray | None,
        seed: int,
        items: np.ndarray | None = None,
    ) -> tuple[float, str, float]:
        """``user_alpha='auto'``: the strength of :data:`USER_ALPHA_GRID` whose personal fit
        predicts held-out judgments of the training people best (the lowest mean ``w·loss``
        per label: the log-loss of pairs and levels, the squared error of values;
        :meth:`_selection_loss`), how it was chosen, and that loss.

        The held-out judgments: every training person's judgments split in
        :data:`SELECTION_FOLDS` folds (each predicted from the others; with ``items``, the item
        codes of an item hold-out ``(n, k)``, the folds are item-disjoint: the items are dealt
        to the folds and a fold holds the rows all of whose items are its own, predicted from
        the rows with none of them), and ``valid``, the
        rows training left out (the early-stopping hold-out's and those straddling it: new
        items, the situation of a person's next judgment) when they have at least
        :data:`MIN_HELD_OUT_LABELS` labels of people with training judgments. The folds
        give many labels but items the shared part was trained on; the hold-out gives new
        items but few labels. Each source's mean loss per label counts half: the folds
        alone can favour a strength far too weak, because deviations that sharpen what the
        shared part memorized of its training items help on the folds and hurt on new
        items (30 simulated people with 5 ratings each: the folds chose 1, 16 held-out
        labels 1000, and new faces' log-loss was 3.40 at 1 against 1.21 at 1000;
        ``benchmarks/personal_ratings.py``). The shared part stays frozen; ``precision`` (the
        learned prior at :data:`START_USER_ALPHA`) keeps its shape and is scaled.
        """
        rng = np.random.RandomState(seed)
        known = np.unique(people[train][people[train] >= 0])
        if len(known) > MAX_SELECTION_PEOPLE:
            known = np.sort(rng.choice(known, MAX_SELECTION_PEOPLE, replace=False))
        fit_rows = train[np.isin(people[train], known)]
        held = np.empty(0, dtype=np.int64)
        if valid is not None:
            held = valid[np.isin(people[valid], known)]
        labelled = int(np.isfinite(y[held]).sum())
        if items is None:
            # every training person's judgments dealt out in random order to the folds
            order = rng.permutation(len(fit_rows))
            rank = pd.Series(order).groupby(people[fit_rows][order]).cumcount().to_numpy()
            fold = np.empty(len(fit_rows), dtype=np.int64)
            fold[order] = rank % SELECTION_FOLDS
            folds = [(fit_rows[fold != f], fit_rows[fold == f]) for f in range(SELECTION_FOLDS)]
            how = f"by {SELECTION_FOLDS}-fold cross-validation over the training people's judgments"
        else:
            # the items dealt to the folds: a fold is predicted from rows that never show its items
            codes = np.unique(items[fit_rows], return_inverse=True)[1].reshape(len(fit_rows), -1)
            row_folds = (rng.permutation(codes.max() + 1) % SELECTION_FOLDS)[codes]
            folds = [
                (fit_rows[(row_folds != f).all(axis=1)], fit_rows[(row_folds == f).all(axis=1)])
                for f in range(SELECTION_FOLDS)
            ]
            how = f"by {SELECTION_FOLDS}-fold item-disjoint cross-validation over the training people's judgments"
        folds = [(a, b, False) for a, b in folds if len(a) and len(b)]
        if labelled >= MIN_HELD_OUT_LABELS:
            folds.append((fit_rows, held, True))
            how += f" and on their {labelled} held-out labels (each given half the say)"
        if not folds:
            return START_USER_ALPHA, "too few judgments to choose it; the starting strength is kept", np.nan
        blocks = self._personal_blocks(net)
        grid = sorted(USER_ALPHA_GRID, reverse=True)  # strongest first: each fit warm-starts the next
        # per source (the folds, the hold-out): Σ w·loss per strength and Σ w of its labels
        losses, labels = np.zeros((2, len(grid))), np.zeros(2)
        for fit_part, held_part, new_items in folds:
            with (
                self._personal_output(net, X[fit_part]) as fit_output,
                self._personal_output(net, X[held_part]) as held_output,
            ):
                start = None
                for i, alpha in enumerate(grid):
                    P = None if precision is None else precision * (alpha / START_USER_ALPHA)
                    present, theta, _ = self._map_people(
                        fit_output, blocks, y[fit_part], weights[fit_part], people[fit_part], P, alpha, start
                    )
                    start = torch.from_numpy(theta)
                    losses[int(new_items), i] += self._held_out_loss(
                        held_output,
                        blocks,
                        y[held_part],
                        weights[held_part],
                        people[held_part],
                        present,
                        theta,
                    )
            labels[int(new_items)] += float(
                np.where(np.isfinite(y[held_part]), weights[held_part], 0.0).sum()
            )
        mean = _half_the_say(losses, labels)
        best = int(np.argmin(mean))
        return float(grid[best]), how, float(mean[best])

    def _personal_blocks(self, net: Any) -> list[torch.Tensor]:
        """The personal parameters of ``net``, person first (``(n_users, ...)`` each): tensors
        sharing the module's storage, so writing into a person's row updates the module."""
        personal = net.module_.personal
        return [p for p in (personal.V, personal.offset, personal.log_scale) if p is not None]

    def _personal_parameters(self, net: Any) -> list[torch.nn.Parameter]:
        """The module's parameters that hold the people (what :meth:`_personal_blocks` views)."""
        return list(net.module_.personal.parameters())

    @contextmanager
    def _shared_training(self, net: Any, frozen: bool = True) -> Iterator[None]:
        """Inside the block (with ``frozen``), training moves only the shared part: the
        people's parameters take no gradient and stay at zero.

        ``user_alpha='auto'`` trains so: its people are fitted afterwards, to the shared part
        frozen, at the strength chosen on held-out judgments. Trained together at the
        starting strength, deviations fitted to a few judgments each made the hold-out's loss
        rise early and early stopping kept an under-trained shared part (30 simulated people
        with 10 ratings each: held-out faces ordered 0.730 against the shared model's 0.771;
        ``benchmarks/personal_ratings.py``).
        """
        parameters = self._personal_parameters(net) if frozen else []
        before = [p.requires_grad for p in parameters]
        for p in parameters:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(parameters, before):
                p.requires_grad_(flag)

    @contextmanager
    def _personal_output(self, net: Any, X: np.ndarray) -> Iterator[Callable[[list], torch.Tensor]]:
        """The module's output on ``X`` as a function of per-row personal parameters.

        The function takes the rows' values of :meth:`_personal_blocks` (float64 on CPU,
        ``(n_samples, ...)`` each) and returns what the criterion reads; the shared part is
        computed once, in eval mode. Only valid inside the ``with`` block.
        """
        personal = net.module_.personal
        h, shared = self._frozen_parts(net, X, self._units)
        names = [name for name in ("V", "offset", "log_scale") if getattr(personal, name) is not None]

        def output(per_row: list) -> torch.Tensor:
            values = dict(zip(names, per_row))
            args = [values.get(name) for name in ("V", "offset", "log_scale")]
            outs = [personal.apply(h_u, s_u, *args) for h_u, s_u in zip(h, shared)]
            return outs[0] if len(outs) == 1 else outs[0] - outs[1]

        # the fit runs on CPU: the log-scale's group index must be there too
        groups = personal.scale_groups
        personal.scale_groups = None if groups is None else groups.cpu()
        try:
            yield output
        finally:
            personal.scale_groups = groups

    @staticmethod
    def _frozen_parts(net: Any, X: np.ndarray, n_units: int) -> tuple[list, list]:
        """Per unit, the trunk's ``h(x)`` and the shared output, in eval mode, as float64 on CPU."""
        module = net.module_
        width = X.shape[1] // n_units
        was_training = module.training
        module.eval()
        h, shared = [], []
        try:
            with torch.no_grad():
                for unit in range(n_units):
                    part = torch.from_numpy(np.ascontiguousarray(X[:, unit * width : (unit + 1) * width]))
                    items, _ = module.split_unit(part.to(net.device))
                    h_u = module.trunk(items)
                    h.append(h_u.cpu().double())
                    shared.append(module.head(h_u).cpu().double())
        finally:
            module.train(was_training)
        return h, shared

    # -- the prior over people (empirical Bayes) ---------------------------------------------
    def _member_precision(self, member: int) -> np.ndarray | None:
        """Member ``member``'s learned prior precision, None for the isotropic prior."""
        precision = getattr(self, "user_precision_", None)
        return None if precision is None else precision[member]

    def _one_hot_people(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's person (``-1``: none) when the person blocks are one-hot, else None."""
        blocks = self._user_blocks(X)
        block = blocks[0]
        binary = all(np.array_equal(b, block) for b in blocks[1:]) and np.isin(block, (0, 1)).all()
        if not binary or (block.sum(axis=1) > 1).any():
            return None
        return np.where(block.sum(axis=1) == 1, block.argmax(axis=1), -1)

    def _prior_people(self, X: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Each row's person for learning the prior (``-1``: no person), or None and why not."""
        if self.user_prior != "learned":
            return None, "user_prior='isotropic'"
        people = self._one_hot_people(X)
        if people is None:
            return None, "the person columns are not one-hot (covariates)"
        n_people = len(np.unique(people[people >= 0]))
        if n_people < MIN_PRIOR_PEOPLE:
            return None, f"{n_people} people (fewer than {MIN_PRIOR_PEOPLE})"
        return people, ""

    def _personal_width(self, net: Any) -> int:
        """``p``: how many personal parameters one person has in ``net``."""
        return sum(int(np.prod(b.shape[1:])) for b in self._personal_blocks(net))

    def _learn_prior(
        self, net: Any, X: np.ndarray, y: np.ndarray, weights: np.ndarray, people: np.ndarray, alpha: float
    ) -> np.ndarray:
        """Empirical-Bayes prior precision of the personal parameters, fitted by EM.

        With the shared part frozen, each round fits every person's MAP ``θ_u`` under the
        current precision ``P``, takes the Laplace posterior ``N(θ_u, (H_u + P)⁻¹)`` and sets
        ``Σ = mean_u [θ_u θ_uᵀ + (H_u + P)⁻¹]``, shrunk toward ``(tr Σ / p)·I`` by the
        Ledoit–Wolf coefficient of the ``θ_u`` and rescaled to the strength ``alpha``
        (:func:`_prior_scale`); ``P = Σ⁻¹``. Rounds stop early when ``P`` changes by less
        than 0.1 %. The prior's mean stays 0, so a
        person without judgments keeps the shared model. The people's fitted ``θ_u`` (under
        the final ``P``) are written into ``net``.
        """
        precision = 2.0 * alpha * np.eye(self._personal_width(net))
        for _ in range(PRIOR_EM_ROUNDS):
            _, theta, H = self._fit_people(
                net, X, y, weights, people, precision=precision, warm_start=True, hessians=True, alpha=alpha
            )
            # H_u is PSD for the convex losses; clipping guards the log-scale's curvature
            eigval, eigvec = np.linalg.eigh(0.5 * (H + np.swapaxes(H, 1, 2)))
            H = (eigvec * np.maximum(eigval, 0.0)[:, None, :]) @ np.swapaxes(eigvec, 1, 2)
            posterior = np.linalg.inv(H + precision[None])
            sigma = (theta.T @ theta) / len(theta) + posterior.mean(axis=0)
            covariance = shrink_covariance(sigma, theta)
            updated = symmetric_inverse(covariance) * _prior_scale(covariance, H.mean(axis=0), alpha)
            change = np.linalg.norm(updated - precision) / np.linalg.norm(precision)
            precision = updated
            if change < 1e-3:
                break
        self._fit_people(net, X, y, weights, people, precision=precision, warm_start=True, alpha=alpha)
        return precision

    def user_prior_precision(self, output: int | None = None) -> np.ndarray:
        """Prior precision of a person's head-weight deviation ``v_u`` for one output.

        The Gaussian prior the personal fit uses (:meth:`fit_users`), restricted to the
        deviation of one column of :meth:`user_deviation`'s ``W`` (its marginal): ``2 ·
        user_alpha_ · I`` with the isotropic prior, the inverse of the learned covariance's
        block with ``user_prior='learned'`` (of the first member, ``net_``).
        :func:`skpercept.personal.suggest_pairs` and :func:`~skpercept.personal.suggest_items`
        use it as the Laplace approximation's prior.

        Parameters
        ----------
        output : int or None, default=None
            The attribute (the ranker's and regressor's output column; a classifier's
            attribute, whose first logit column is taken). None: the only one.

        Returns
        -------
        P : ndarray of shape (d, d)
            ``d`` is the width of :meth:`item_representation`.
        """
        check_is_fitted(self, "net_")
        personal = self.net_.module_.personal
        if personal is None:
            raise ValueError(f"user_prior_precision needs a {type(self).__name__} fitted with user_features.")
        _, d, n_out = personal.V.shape
        groups = personal.scale_groups
        n_attributes = n_out if groups is None else int(groups.max()) + 1
        if output is None and n_attributes > 1:
            raise ValueError(f"output is required for a head with {n_attributes} attributes.")
        j = 0 if output is None else int(output)
        if not 0 <= j < n_attributes:
            raise ValueError(f"output must be in [0, {n_attributes}); got {output!r}.")
        column = j if groups is None else int(np.flatnonzero(groups.cpu().numpy() == j)[0])
        precision = self._member_precision(0)
        if precision is None:
            return 2.0 * self._alpha(0) * np.eye(d)
        block = np.arange(d) * n_out + column  # θ starts with V_u (d, n_out) in row-major order
        covariance = np.linalg.inv(precision)
        return np.linalg.inv(covariance[np.ix_(block, block)])

    # -- read-outs (active learning) ---------------------------------------------------------
    def _unit_array(self, X: Any, method: str) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = X.toarray() if sp.issparse(X) else X
        X = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
        width = self._unit_width()
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(
                f"{method} expects rows laid out as one {self._unit_name()}, shape (n, {width}); got {X.shape}."
            )
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity.")
        return np.ascontiguousarray(X)

    def item_representation(self, X: Any) -> np.ndarray:
        """The shared trunk's representation ``h(x)`` of items (of the first member, ``net_``).

        Parameters
        ----------
        X : array-like of shape (n, n_unit)
            One row per item laid out as a rating row (ratings) or one half of a pair row
            (pairs); person columns are ignored.

        Returns
        -------
        h : ndarray of shape (n, d)
            ``d`` is the trunk's output width (the item feature count with
            ``hidden_layer_sizes=()``). A person's score is ``h · user_deviation + b``.
        """
        X = self._unit_array(X, "item_representation")
        h, _ = self._frozen_parts(self.net_, X, 1)
        return h[0].numpy()

    def user_deviation(self, X: Any) -> np.ndarray:
        """Each row's personal head weights ``w + V u`` (of the first member, ``net_``).

        Parameters
        ----------
        X : array-like of shape (n, n_unit)
            Rows laid out as one rating row / pair half; only the person columns are read
            (an all-zero block, an unknown person, gives the shared ``w``).

        Returns
        -------
        W : ndarray of shape (n, d, n_head_outputs)
            ``s = h · W + b`` per output column of the shared head (the ranker: one per
            attribute; the regressor: one per attribute, before the person's scale and
            offset; the classifier: one per logit, likewise).
        """
        X = self._unit_array(X, "user_deviation")
        module = self.net_.module_
        if module.personal is None:
            raise ValueError(f"user_deviation needs a {type(self).__name__} fitted with user_features.")
        with torch.no_grad():
            u = torch.from_numpy(X[:, self.user_features_]).to(module.personal.V.device)
            Vu, _, _ = module.personal.gather(u)
            w = module.linear.weight.T[None]
            return (w + Vu).cpu().double().numpy()


def _half_the_say(losses: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per strength, the mean over the sources with labels of their mean loss per label.

    ``losses``: ``Σ w·loss`` per source (rows: the cross-validation folds, the hold-out) and
    strength (columns); ``labels``: ``Σ w`` of each source's labels. A strength whose fit
    diverged (a loss that is not finite) gets ``inf``: it never wins.
    """
    used = labels > 0
    mean = (losses[used] / labels[used, None]).mean(axis=0)
    return np.where(np.isfinite(mean), mean, np.inf)


def _prior_scale(covariance: np.ndarray, H_mean: np.ndarray, alpha: float) -> float:
    """The factor that gives ``Σ`` the isotropic prior's variance ``1 / (2·alpha)``
    on average along what the judgments measure (weights ``H̄``, the mean curvature).

    EM with the Laplace approximation underestimates how far people spread when each has
    a few binary judgments (run to convergence on Topmodel2007 with 5 per person it shrank
    the variance from 3.3 to 0.4 and cost 3 points of accuracy), so the learned prior
    takes its shape from the data and its strength from ``alpha``. Directions no
    judgment measures (a constant shift of one-hot items' worths) do not count.
    """
    measured = float(np.trace(H_mean @ covariance))
    if measured <= 0:
        return 1.0
    return measured * 2.0 * float(alpha) / float(np.trace(H_mean))


def _unpack(flat: torch.Tensor, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Flattened per-person parameters ``(n, p)`` as the module's blocks' shapes ``(n, ...)``."""
    sizes = [int(np.prod(p.shape[1:])) for p in blocks]
    parts = torch.split(flat, sizes, dim=1)
    return [part.reshape((len(flat),) + tuple(p.shape[1:])) for part, p in zip(parts, blocks)]


def _spec_indices(spec: Any, width: int, names: np.ndarray | None) -> np.ndarray:
    """Column positions within a unit from indices, a boolean mask or feature names."""
    arr = np.asarray(spec)
    if arr.ndim != 1:
        raise ValueError(
            f"user_features must be 1-D (indices, a boolean mask or names); got shape {arr.shape}."
        )
    if arr.size == 0:
        return _NO_USERS
    if arr.dtype.kind == "b":
        if len(arr) != width:
            raise ValueError(
                f"user_features as a boolean mask must have {width} entries (one per column); got {len(arr)}."
            )
        return np.flatnonzero(arr)
    if arr.dtype.kind in "iu":
        bad = arr[(arr < 0) | (arr >= width)]
        if len(bad):
            raise ValueError(
                f"user_features indices {bad[:5].tolist()} out of range for {width} columns per unit."
            )
        index = arr.astype(np.int64)
    elif arr.dtype.kind in "UO":
        if names is None:
            raise ValueError("user_features given as names needs X with feature names (a DataFrame).")
        position = {str(n): i for i, n in enumerate(names)}
        missing = [str(n) for n in arr if str(n) not in position]
        if missing:
            raise ValueError(f"user_features names {missing[:5]} are not among X's columns.")
        index = np.asarray([position[str(n)] for n in arr], dtype=np.int64)
    else:
        raise ValueError(f"user_features must be ints, bools or str; got dtype {arr.dtype}.")
    if len(np.unique(index)) != len(index):
        raise ValueError("user_features lists a column twice.")
    return np.sort(index)


def pair_context_columns(X: np.ndarray) -> np.ndarray:
    """Positions within a half of the person columns ``'auto'`` finds in pair rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.personal import pair_context_columns
    >>> rng = np.random.default_rng(0)
    >>> left, right = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    >>> person = np.eye(2)[[0, 1, 0, 1, 1, 0]]  # the same person columns in both halves
    >>> X = np.hstack([left, person, right, person])
    >>> pair_context_columns(X).tolist()  # positions within a half
    [2, 3]
    """
    index = np.flatnonzero(context_columns(X))
    if not len(index):
        raise ValueError(
            "user_features='auto' found no context columns (columns equal in both halves of every "
            "pair row and not constant, as PairFeatures puts a UserEncoder's output); pass "
            "user_features as column indices within a half, a mask or names."
        )
    return index


def entry_weights(sample_weight: Any, X: np.ndarray, n_outputs: int) -> np.ndarray:
    """``sample_weight`` (ones when None) as per-entry weights ``(n_samples, n_outputs)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.personal import entry_weights
    >>> X = np.zeros((3, 4))
    >>> entry_weights([1.0, 2.0, 0.5], X, n_outputs=2)
    array([[1. , 1. ],
           [2. , 2. ],
           [0.5, 0.5]], dtype=float32)
    >>> entry_weights(None, X, n_outputs=1).ravel().tolist()
    [1.0, 1.0, 1.0]
    """
    if sample_weight is None:
        return np.ones((len(X), n_outputs), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        w = check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    return np.repeat(w[:, None], n_outputs, axis=1).astype(np.float32)
