"""Shared machinery of skpercept's skorch-trained estimators.

The heads on feature vectors (rating classifier/regressor, ranker) derive from
:class:`SkorchHead`: one base holds what every head does the same way: parameter set and its
declarative validation, input validation, device and local seeding, building the skorch
``NeuralNet`` in ``fit`` sized from the data, early stopping on an internal validation split
with the best weights restored, real mini-batches, prediction in batches, and pickling.
Subclasses only say how targets are encoded, which module and loss to build, and how raw
outputs become predictions.

The LoRA estimators (:mod:`skpercept.finetune`) train an image tower instead, with the same
vocabulary: they share :data:`TRAINING_PARAMETER_CONSTRAINTS`, :func:`training_callbacks`,
:func:`route_scoring` (skorch's scoring callbacks scoring the estimator), :func:`target_array`
and :func:`hidden_sizes` with the heads, and skorch's nested parameter names
(:class:`TrainingParameters`).
"""

from __future__ import annotations

import numbers
import warnings
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset, ValidSplit
from skorch.helper import predefined_split
from skorch.history import History

from skpercept._compat import Interval, RealNotInt, StrOptions, fit_context
from skpercept._dataframes import as_pandas
from skpercept._holdout import early_stopping_split, item_codes, rating_item_codes
from skpercept._utils import (
    SavedFormatMixin,
    current_device,
    estimator_parameters,
    loaded_device,
    move_net,
    resolve_device,
    resolve_seed,
    seeded_torch,
    to_arrays,
    to_tensors,
    torch_generator,
)
from skpercept.heads import _docs
from skpercept.heads._callbacks import (
    FitRows,
    named_callbacks,
    nested_params,
    refuse_scoring,
    route_scoring,
    set_nested_params,
)
from skpercept.heads._docs import fill_doc
from skpercept.heads.nets import ACTIVATIONS, reset_linear_layers, use_generator
from skpercept.personal import MAX_PRIOR_DIM, START_USER_ALPHA, PersonalHeadMixin, entry_weights

__all__ = [
    "COMMON_ATTRS_DOC",
    "COMMON_PARAMS_DOC",
    "MIDTRAINING_DOC",
    "TRAINING_PARAMETER_CONSTRAINTS",
    "BatchIterator",
    "FitRows",
    "SkorchHead",
    "TrainingParameters",
    "check_finite_targets",
    "fill_doc",
    "hidden_sizes",
    "random_swap",
    "refuse_scoring",
    "route_scoring",
    "target_array",
    "training_callbacks",
]

#: The numpydoc ``Parameters`` entries every skorch-trained head shares: what
#: :func:`fill_doc` puts in place of ``{common_params}`` in a head's docstring.
COMMON_PARAMS_DOC = _docs.COMMON_PARAMS_DOC
#: The numpydoc ``Attributes`` entries every skorch-trained head shares (``net_``, ``nets_``,
#: ``n_features_in_``, ...): what :func:`fill_doc` puts in place of ``{common_attrs}``.
COMMON_ATTRS_DOC = _docs.COMMON_ATTRS_DOC
#: The paragraph on evaluating a head from a skorch callback while it trains: what
#: :func:`fill_doc` puts in place of ``{midtraining}``.
MIDTRAINING_DOC = _docs.MIDTRAINING_DOC

#: The largest training batch of ``batch_size='auto'``, and its prediction batch.
AUTO_BATCH_SIZE = 256

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}

#: Parameters every skorch-trained estimator of skpercept has, with the same meaning:
#: the heads on features and the LoRA estimators extend this dict with their own.
TRAINING_PARAMETER_CONSTRAINTS: dict[str, list] = {
    "hidden_layer_sizes": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(RealNotInt, 0, 1, closed="neither")],
    "patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "callbacks": [list, None],
    "device": [str],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


@estimator_parameters
class TrainingParameters:
    """The training loop's parameters: one meaning on every skorch-trained estimator.

    The heads, the LoRA estimators and :class:`~skpercept.finetune.ContrastiveEmbedder` take
    them; an estimator redeclares one only to give it another default (a LoRA fine-tune runs
    fewer, longer epochs than a head on features).

    Parameters
    ----------
    lr : float, default=1e-3
        Learning rate (skorch's ``optimizer__lr``).
    weight_decay : float, default=1e-2
        Weight decay (skorch's ``optimizer__weight_decay``).
    max_epochs : int, default=200
        Upper bound on training epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction``, stop after ``patience`` epochs without a lower
        ``valid_loss`` and restore the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.1
        Share held out for early stopping.
    patience : int, default=10
        Epochs without a lower ``valid_loss`` before training stops.
    callbacks : list or None, default=None
        skorch callbacks, bare or as ``(name, callback)`` (:func:`training_callbacks`).
    verbose : int, default=0
        skorch's per-epoch log when positive.

    Examples
    --------
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.heads.base import TrainingParameters
    >>> issubclass(RatingRegressor, TrainingParameters)
    True
    >>> reg = RatingRegressor().set_params(optimizer__lr=0.01)  # skorch's name for lr
    >>> reg.lr
    0.01
    >>> try:
    ...     reg.set_params(module__dropout=0.2)
    ... except ValueError as exc:
    ...     print(str(exc).split(": ")[1])
    set 'dropout' instead. (Of skorch's nested names it takes optimizer__lr, optimizer__weight_decay.)
    """

    lr: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 200
    early_stopping: bool = True
    validation_fraction: float = 0.1
    patience: int = 10
    callbacks: list | None = None
    verbose: int = 0

    #: skorch's nested names that stand for a parameter of the estimator (``set_params``).
    _skorch_aliases: ClassVar[dict[str, str]] = {
        "optimizer__lr": "lr",
        "optimizer__weight_decay": "weight_decay",
    }
    #: Per skorch component, the estimator's parameters that control it: the replacement named
    #: when ``set_params`` refuses a nested name of that component.
    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {
        "optimizer": ("lr", "weight_decay"),
        "criterion": (),
        "module": ("hidden_layer_sizes", "dropout"),
        "iterator_train": ("batch_size",),
        "iterator_valid": ("batch_size",),
        "dataset": (),
    }

    def get_params(self, deep: bool = True) -> dict:
        """The estimator's parameters; with ``deep``, also each callback's, as on a skorch net
        (``callbacks__<name>`` and ``callbacks__<name>__<param>``)."""
        params = super().get_params(deep=deep)
        if deep:
            params.update(nested_params(self.callbacks))
        return params

    def set_params(self, **params: Any):
        """Set parameters, skorch's nested names included (see the ``callbacks`` parameter).

        ``callbacks__<name>__<param>`` sets a parameter of the named callback,
        ``callbacks__<name>`` replaces it (None removes it); ``optimizer__lr`` and
        ``optimizer__weight_decay`` set ``lr`` and ``weight_decay``. Other nested names of the
        net's components (``module__*``, ``criterion__*``, ``iterator_train__*``, ...) raise a
        ValueError naming the estimator's parameter to set instead.

        Returns
        -------
        self
        """
        return super().set_params(**set_nested_params(self, params))


def hidden_sizes(hidden_layer_sizes: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` (an int or a sequence of ints) as a tuple of positive ints.

    The declarative constraints check the container; its elements are checked here.

    Examples
    --------
    >>> from skpercept.heads.base import hidden_sizes
    >>> hidden_sizes(64), hidden_sizes([32, 16]), hidden_sizes(())
    ((64,), (32, 16), ())
    >>> hidden_sizes((32, 0))
    Traceback (most recent call last):
    ...
    ValueError: hidden_layer_sizes must be positive ints, got (32, 0).
    """
    if isinstance(hidden_layer_sizes, numbers.Integral):
        return (int(hidden_layer_sizes),)
    sizes = tuple(hidden_layer_sizes)
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be positive ints, got {hidden_layer_sizes!r}.")
    return tuple(int(s) for s in sizes)


def training_callbacks(callbacks: list | None, *, early_stopping: bool, patience: int) -> list:
    """skorch's named callback list of a skpercept estimator.

    With ``early_stopping``, ``('early_stopping', EarlyStopping(...))`` monitors
    ``valid_loss`` and restores the best epoch's weights at the end. User ``callbacks`` follow,
    in order: ``(name, callback)`` tuples keep their name, bare callbacks are named
    ``user_callback_<i>_<ClassName>``.

    Examples
    --------
    >>> from skorch.callbacks import Checkpoint, EpochScoring
    >>> from skpercept.heads.base import training_callbacks
    >>> callbacks = training_callbacks(
    ...     [("r2", EpochScoring("r2")), Checkpoint()], early_stopping=True, patience=5
    ... )
    >>> [name for name, _ in callbacks]
    ['early_stopping', 'r2', 'user_callback_1_Checkpoint']
    >>> callbacks[0][1].patience, callbacks[0][1].load_best
    (5, True)
    """
    named: list = []
    if early_stopping:
        named.append(
            ("early_stopping", EarlyStopping(monitor="valid_loss", patience=int(patience), load_best=True))
        )
    return named + named_callbacks(callbacks)


def target_array(y: Any, estimator_name: str, n_samples: int) -> np.ndarray:
    """``y`` as an ndarray of 1 or 2 dims with ``n_samples`` rows, or a ValueError saying why not.

    Shared by every skorch-trained estimator; classifiers that want a column vector raveled
    (as scikit-learn does) do that themselves.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.heads.base import target_array
    >>> target_array(pd.DataFrame({"trust": [1.0, 2.0], "warmth": [3.0, None]}), "MyHead", 2)
    array([[ 1.,  3.],
           [ 2., nan]])
    >>> target_array([1.0, 2.0], "MyHead", 3)
    Traceback (most recent call last):
    ...
    ValueError: X has 3 rows but y has 2; they must match row for row.
    """
    if y is None:
        raise ValueError(
            f"This {estimator_name} estimator requires y to be passed, but the target y is None."
        )
    y = as_pandas(y)  # a pyarrow Table has no to_numpy; polars and pyarrow columns convert alike
    arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"y must be 1-D (one attribute) or 2-D (one column per attribute); got shape {arr.shape}."
        )
    if len(arr) != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {len(arr)}; they must match row for row.")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError("y has no columns.")
    return arr


def check_finite_targets(y: np.ndarray, what: str = "y") -> None:
    """Reject ±inf in float targets (NaN is allowed: it means a missing label).

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads.base import check_finite_targets
    >>> check_finite_targets(np.array([1.0, np.nan]))  # a missing label is fine
    >>> check_finite_targets(np.array([1.0, np.inf]))
    Traceback (most recent call last):
    ...
    ValueError: y contains infinity (first at row 1); use NaN for a missing label.
    """
    if np.issubdtype(y.dtype, np.floating) and np.isinf(y).any():
        row = int(np.argwhere(np.isinf(y))[0][0])
        raise ValueError(f"{what} contains infinity (first at row {row}); use NaN for a missing label.")


class BatchIterator:
    """Mini-batches by tensor indexing instead of per-sample ``__getitem__`` + collate.

    skorch's default ``DataLoader`` builds every batch from single rows, which costs more than
    the forward/backward pass of a small head on pre-computed embeddings. This iterator slices
    the dataset's tensors directly. It understands skorch's ``Dataset`` and the ``Subset``
    objects that ``ValidSplit`` makes of it. A trailing batch of one row is merged into the
    previous batch (BatchNorm cannot train on a single row).

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset of one
    batch_size : int
    shuffle : bool, default=False
        Draw a new order per epoch.
    swap_pairs : bool, default=False
        Pair data only: swap the halves of a random half of the rows and flip their labels
        (``y → 1 − y``), the swap augmentation of :class:`~skpercept.heads.PairwiseRanker`.
    generator : torch.Generator or None, default=None
        Source of the order and the swaps (skorch builds a new iterator every epoch and passes
        the same generator, so epochs differ and a seeded fit repeats). None: torch's global
        generator.
    weighted : bool, default=False
        ``y`` holds the labels followed by one weight per label column; a swap flips the
        labels only.

    Examples
    --------
    >>> import torch
    >>> from skorch.dataset import Dataset
    >>> from skpercept.heads.base import BatchIterator
    >>> data = Dataset(torch.arange(10.0).reshape(5, 2), torch.zeros(5, 1))
    >>> batches = BatchIterator(data, batch_size=2)
    >>> len(batches), [len(Xb) for Xb, yb in batches]  # the last row joins the batch before
    (2, [2, 3])
    >>> subset = torch.utils.data.Subset(data, [4, 0, 2])  # what ValidSplit makes
    >>> [Xb[:, 0].tolist() for Xb, yb in BatchIterator(subset, batch_size=8)]
    [[8.0, 0.0, 4.0]]

    A skorch net takes it as its iterator (``iterator_train=BatchIterator``), with its
    keywords as ``iterator_train__shuffle=True`` and so on.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 256,
        shuffle: bool = False,
        swap_pairs: bool = False,
        generator: torch.Generator | None = None,
        weighted: bool = False,
    ) -> None:
        indices = None
        while isinstance(dataset, torch.utils.data.Subset):
            sub = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            indices = sub if indices is None else indices[sub]
            dataset = dataset.dataset
        self.X = dataset.X
        self.y = dataset.y
        n = len(self.X) if indices is None else len(indices)
        self.indices = indices
        self.n = n
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self.swap_pairs = swap_pairs
        self.generator = generator
        self.weighted = weighted

    def _bounds(self) -> list[tuple[int, int]]:
        starts = list(range(0, self.n, self.batch_size))
        bounds = [(s, min(s + self.batch_size, self.n)) for s in starts]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
            bounds[-2:] = [(bounds[-2][0], self.n)]
        return bounds

    def __len__(self) -> int:
        return len(self._bounds())

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else None
        for start, stop in self._bounds():
            if order is None and self.indices is None:
                ids: Any = slice(start, stop)
            else:
                ids = order[start:stop] if order is not None else torch.arange(start, stop)
                if self.indices is not None:
                    ids = self.indices[ids]
            Xb = self.X[ids]
            yb = None if self.y is None else self.y[ids]
            if self.swap_pairs and yb is not None:
                Xb, yb = random_swap(Xb, yb, self.generator, weighted=self.weighted)
            yield Xb, yb


def random_swap(
    Xb: torch.Tensor, yb: torch.Tensor, generator: torch.Generator | None, weighted: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap the halves of a random half of the rows and flip their labels (weights stay).

    Examples
    --------
    >>> import torch
    >>> from skpercept.heads.base import random_swap
    >>> Xb = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])  # [left | right]
    >>> yb = torch.tensor([[1.0], [1.0], [0.0], [0.75]])  # P(left ≻ right)
    >>> Xs, ys = random_swap(Xb, yb, torch.Generator().manual_seed(0))
    >>> Xs
    tensor([[2., 1.],
            [3., 4.],
            [6., 5.],
            [8., 7.]])
    >>> ys.ravel()  # the swapped rows' labels are 1 - y
    tensor([0.0000, 1.0000, 1.0000, 0.2500])
    """
    half = Xb.shape[1] // 2
    flip = torch.rand(len(Xb), generator=generator) < 0.5
    Xs = torch.where(flip[:, None], torch.cat([Xb[:, half:], Xb[:, :half]], dim=1), Xb)
    flipped = 1.0 - yb
    if weighted:
        n_labels = yb.shape[1] // 2
        flipped = torch.cat([flipped[:, :n_labels], yb[:, n_labels:]], dim=1)
    ys = torch.where(flip.reshape((-1,) + (1,) * (yb.dim() - 1)), flipped, yb)
    return Xs, ys


def _predefined(X: np.ndarray, targets: np.ndarray, valid: np.ndarray):
    """skorch's ``train_split`` that validates on the given rows of ``X`` and ``targets``."""
    return predefined_split(Dataset(torch.from_numpy(X[valid]), torch.from_numpy(targets[valid])))


#: Features beyond this absolute value get a :class:`FeatureScaleWarning` at fit.
LARGE_FEATURE = 1e6


class FeatureScaleWarning(UserWarning):
    """Features reach a magnitude (beyond ``LARGE_FEATURE``) the heads cannot train on well:
    standardize them first.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skpercept.heads import FeatureScaleWarning, RatingRegressor
    >>> X = np.linspace(-1, 1, 60).reshape(20, 3) * 1e7  # far from unit scale
    >>> y = np.arange(20.0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", FeatureScaleWarning)  # make it an exception
    ...     try:
    ...         RatingRegressor(max_epochs=1).fit(X, y)
    ...     except FeatureScaleWarning as exc:
    ...         print(str(exc).split(";")[0])
    the features reach 1e+07 in absolute value
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> with warnings.catch_warnings():  # standardized first: no warning
    ...     warnings.simplefilter("error", FeatureScaleWarning)
    ...     model = make_pipeline(StandardScaler(), RatingRegressor(max_epochs=1)).fit(X, y)
    """


def _warn_feature_scale(X: np.ndarray) -> None:
    scale = float(abs(X).max()) if X.size else 0.0
    if scale > LARGE_FEATURE:
        warnings.warn(
            f"the features reach {scale:.3g} in absolute value; the heads train on features of "
            "about unit scale (as embeddings are), so this fit may diverge or learn little: "
            "standardize them first (e.g. a StandardScaler before the head).",
            FeatureScaleWarning,
            stacklevel=4,  # the caller of fit (through sklearn's fit context)
        )


def _check_converged(net: NeuralNet, X: np.ndarray, member: int) -> None:
    """Refuse a fit whose training loss became NaN or infinite (the weights then predict NaN),
    naming the likely cause: features on a scale the head cannot train on."""
    losses = np.asarray(net.history[:, "train_loss"], dtype=float)
    bad = np.flatnonzero(~np.isfinite(losses))
    if not len(bad):
        return
    scale = float(np.max(np.abs(X))) if X.size else 0.0
    which = f" (ensemble member {member})" if member else ""
    raise ValueError(
        f"training diverged{which}: the training loss is {losses[bad[0]]} from epoch {bad[0] + 1}, so "
        f"the head would predict NaN. The largest feature is {scale:.3g} in absolute value; "
        "standardize the features first (e.g. a StandardScaler before the head) or lower lr."
    )


class _Split(NamedTuple):
    """One member's early-stopping split: row positions (None: all rows / no validation)."""

    train: np.ndarray | None
    valid: np.ndarray | None
    train_split: Any
    n_straddling: int
    items: np.ndarray | None = None  # the item codes of an item hold-out (None: rows are held out)


@estimator_parameters
class SkorchHead(SavedFormatMixin, TrainingParameters, PersonalHeadMixin, BaseEstimator, metaclass=ABCMeta):
    """Base of the skorch-trained heads; not used directly.

    It holds the parameters every head shares (its ``__init__`` assigns them once; a subclass
    with parameters of its own declares the full keyword-only signature, calls
    ``super().__init__`` and sets its own, and extends ``_parameter_constraints``).

    Subclasses implement the abstract hooks ``_encode_y``, ``_module_params`` and
    ``_criterion``, and may override ``_validate_X``, ``_row_items``, ``_stratify`` and
    ``_iterator_train_params`` (each documented where it is defined).

    Fitted ``net_`` is a :class:`skorch.NeuralNet` (the first of ``nets_``, the
    ``n_ensemble`` members, each trained by ``_fit_member`` with its own seed). Its ``history`` has ``train_loss`` per
    epoch, and ``valid_loss`` per epoch when ``early_stopping=True`` (computed on the rows of
    the held-out ``validation_fraction`` of the items; the weights of the epoch with the lowest
    ``valid_loss`` are restored at the end by ``EarlyStopping(load_best=True)``).

    Notes
    -----
    Evaluating mid-training: ``fit`` sets ``net_`` and every other fitted attribute *before*
    training starts, so inside a skorch callback (``on_epoch_end``) the estimator's own
    ``predict``/``predict_proba``/``decision_function``/``score`` already work and use the
    current weights. Pass the callback via ``callbacks=[("name", cb)]`` (or
    ``head__callbacks`` through a Pipeline) and keep a reference to the estimator in it; that
    is how :mod:`skpercept.model_selection` reports a validation score per epoch to Optuna.

    Examples
    --------
    A new head says how targets are encoded, which module and loss to build
    (:mod:`skpercept.heads.nets` has the pieces) and how outputs become predictions; the base
    does the rest:

    >>> import numpy as np
    >>> from sklearn.base import RegressorMixin
    >>> from skpercept.heads.base import SkorchHead, target_array
    >>> from skpercept.heads.nets import MaskedRegressionLoss, RatingNet
    >>> class TinyRegressor(RegressorMixin, SkorchHead):
    ...     def _encode_y(self, y, n_samples):
    ...         y = target_array(y, "TinyRegressor", n_samples).astype(np.float32)
    ...         self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
    ...         return y.reshape(n_samples, -1)
    ...
    ...     def _module_params(self, n_features):
    ...         return RatingNet, dict(n_features=n_features, n_outputs=self.n_outputs_,
    ...                                hidden_layer_sizes=self._hidden())
    ...
    ...     def _criterion(self):
    ...         return MaskedRegressionLoss, {}
    ...
    ...     def predict(self, X):
    ...         return self._forward(X).ravel()
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 4))
    >>> reg = TinyRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    >>> reg = reg.fit(X, X[:, 0] - X[:, 1])  # early stopping on held-out rows, as every head
    >>> reg.predict(X[:3]).shape, len(reg.net_.history) <= 5, type(reg.net_.module_).__name__
    ((3,), True, 'RatingNet')
    >>> reg.hidden_layer_sizes_  # no person block, so no choice of trunk to make
    (8,)
    """

    #: Whether the head's module takes the person columns (``user_index``, ``penalty``: a
    #: :class:`~skpercept.personal.PersonalDeviation`) and its criterion weighted targets. A head
    #: with a module and loss of its own leaves it False: it trains on the labels alone and
    #: resolves its own person columns (with :meth:`_resolve_users` if it likes).
    _weighted_personal: ClassVar[bool] = False

    _parameter_constraints: ClassVar[dict] = {
        **TRAINING_PARAMETER_CONSTRAINTS,
        "activation": [StrOptions(set(ACTIVATIONS))],
        "batch_norm": ["boolean"],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "validation_split": [StrOptions({"auto", "items", "rows"})],
        "n_ensemble": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "user_features": [StrOptions({"auto"}), "array-like", None],
        "user_alpha": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "user_prior": [StrOptions({"isotropic", "learned"})],
        "choose_trunk": [StrOptions({"auto"}), "boolean"],
    }
    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {
        **TrainingParameters._skorch_owners,
        "optimizer": ("optimizer", "lr", "weight_decay"),
        "module": ("hidden_layer_sizes", "activation", "dropout", "batch_norm"),
        "criterion": ("loss",),
    }

    hidden_layer_sizes: tuple[int, ...] = (64,)
    activation: str = "relu"
    dropout: float = 0.3
    batch_norm: bool = False
    optimizer: str = "adamw"
    batch_size: int | str = "auto"
    validation_split: str = "auto"
    n_ensemble: int = 1
    user_features: Any = None
    user_alpha: float | str = "auto"
    user_prior: str = "learned"
    choose_trunk: bool | str = "auto"
    device: str = "auto"
    random_state: int | np.random.RandomState | None = None

    # -- hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def _encode_y(self, y: Any, n_samples: int) -> np.ndarray:
        """Validate targets, set ``classes_`` or target statistics and ``n_outputs_``; return
        a float32 array ``(n_samples, n_outputs)`` with NaN for a missing label."""

    @abstractmethod
    def _module_params(self, n_features: int) -> tuple[type, dict]:
        """The torch module class and its keyword arguments (passed as ``module__*``)."""

    @abstractmethod
    def _criterion(self) -> tuple[type, dict]:
        """The criterion class and its keyword arguments (passed as ``criterion__*``)."""

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        """``X`` as a C-contiguous float32 array (sparse input densified)."""
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=("csr", "csc", "coo"),
            dtype=(np.float32, np.float64),
            ensure_min_samples=1,
        )
        if sp.issparse(X):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=np.float32)

    def _row_items(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """Item codes ``(n_samples, k)`` of each row, for the item hold-out when fit gets no
        ``groups`` (here, rows equal in their descriptive columns are one item; person columns
        are context, not identity), and whether the items are described by features rather
        than identity codes."""
        return rating_item_codes(self._item_part(X))

    def _entry_weights(self, y_encoded: np.ndarray, sample_weight: Any, X: np.ndarray) -> np.ndarray:
        """Per-entry loss weights ``(n_samples, n_outputs)``: ``sample_weight`` for every output."""
        return entry_weights(sample_weight, X, y_encoded.shape[1])

    def _stratify(self, y_encoded: np.ndarray) -> bool:
        """Whether the row-wise validation split is stratified on the encoded targets."""
        return False

    def _iterator_train_params(self) -> dict[str, Any]:
        """Extra keywords of the training :class:`BatchIterator` (``iterator_train__*``)."""
        return {}

    # -- helpers for the subclasses -------------------------------------------------------------
    def _hidden(self) -> tuple[int, ...]:
        """The trunk's hidden widths: the fitted choice (``hidden_layer_sizes_``), else the
        parameter's."""
        fitted = self.__dict__.get("hidden_layer_sizes_")
        return tuple(fitted) if fitted is not None else hidden_sizes(self.hidden_layer_sizes)

    def _trunk_candidates(self) -> list[tuple[int, ...]]:
        """The trunks ``fit`` trains: ``hidden_layer_sizes``, and first the linear one when
        ``choose_trunk`` asks for a choice (``'auto'``: for a model of people)."""
        hidden = hidden_sizes(self.hidden_layer_sizes)
        if not hidden or not self.early_stopping:
            return [hidden]
        choose = self.choose_trunk
        if choose == "auto":
            # the linear trunk when it is the smaller model: a person's deviation has one weight
            # per item column, so with wide embeddings it would have more than with the hidden layer
            # (a head without people, e.g. a user's own SkorchHead, has no person block to ask about)
            people = self._user_index() if self._weighted_personal else []
            choose = len(people) > 0 and self._unit_width() - len(people) <= hidden[-1]
        return [(), hidden] if choose else [hidden]

    @staticmethod
    def _ravel_column(arr: np.ndarray) -> np.ndarray:
        if arr.ndim == 2 and arr.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is raveled.",
                DataConversionWarning,
                stacklevel=3,
            )
            return arr.ravel()
        return arr

    # -- training ------------------------------------------------------------------------------
    def _validation(self, X: np.ndarray, y_encoded: np.ndarray, groups: Any, seed: int) -> _Split:
        """Training rows (None: all) and validation rows (None: no early stopping) of one member
        (``_fit_member`` makes the skorch ``train_split`` of the validation rows); the scoring
        callbacks of the member's net score them (``_fit_rows``)."""
        split = self._hold_out(X, y_encoded, groups, seed)
        rows = self.__dict__.get("_fit_rows")
        if rows is not None:
            rows.train, rows.valid = split.train, split.valid
        return split

    def _hold_out(self, X: np.ndarray, y_encoded: np.ndarray, groups: Any, seed: int) -> _Split:
        if not self.early_stopping:
            return _Split(None, None, None, 0)
        if self.validation_split == "rows":
            return self._row_split(X, y_encoded, seed)
        if groups is None:
            items, described = self._row_items(X)
            if self.validation_split == "auto" and not described:
                return self._row_split(X, y_encoded, seed)
        else:
            items = item_codes(groups, len(X))
        split = early_stopping_split(items, self.validation_fraction, seed, instead="validation_split='rows'")
        return _Split(
            split.train, split.valid, None, split.n_straddling, np.asarray(items).reshape(len(X), -1)
        )

    def _row_split(self, X: np.ndarray, y_encoded: np.ndarray, seed: int) -> _Split:
        n = len(y_encoded)
        n_valid = int(np.ceil(float(self.validation_fraction) * n))
        if n < 2 or n - n_valid < 1:
            raise ValueError(
                f"early_stopping needs a validation split, but there are only n_samples={n} "
                "rows; pass more data or early_stopping=False."
            )
        split = ValidSplit(
            cv=float(self.validation_fraction), stratified=self._stratify(y_encoded), random_state=seed
        )
        # Stratified on the labels only; training rows keep the split's order, so the fit is the
        # one skorch's own ValidSplit would make.
        train, valid = split(Dataset(X, y_encoded), torch.from_numpy(y_encoded))
        return _Split(np.asarray(train.indices), np.asarray(valid.indices), None, 0)

    def _train_batch_size(self, n_train: int) -> int:
        """Training mini-batch size: ``batch_size``, or for ``'auto'`` at least 8 batches per
        epoch of at most 256 rows (and at least 8 rows)."""
        if self.batch_size == "auto":
            return int(min(AUTO_BATCH_SIZE, max(8, -(-int(n_train) // 8))))
        return int(self.batch_size)

    def _predict_batch_size(self) -> int:
        """Rows per forward pass when predicting (and validating)."""
        return AUTO_BATCH_SIZE if self.batch_size == "auto" else int(self.batch_size)

    def _build_net(
        self,
        n_features: int,
        train_split: Any,
        callbacks: list,
        device: str | None = None,
        generator: torch.Generator | None = None,
    ):
        """The skorch net for this head, sized for ``n_features`` (not yet initialized).

        For a head with ``_weighted_personal``, targets are the labels followed by one weight
        per label (the masked losses tell them by their width) and the module gets the person columns
        (``module__user_index``; ``_fit_member`` sets the training ``module__penalty``).
        """
        rows = self.__dict__.get("_fit_rows")
        if rows is not None:
            callbacks = route_scoring(
                callbacks, view=self._scoring_view, rows=rows, estimator=type(self).__name__
            )
        module, module_params = self._module_params(n_features)
        criterion, criterion_params = self._criterion()
        if self._weighted_personal:
            module_params.update(self._module_user_params(0.0))
        params = {f"module__{k}": v for k, v in module_params.items()}
        params.update({f"criterion__{k}": v for k, v in criterion_params.items()})
        if self._weighted_personal:
            params["iterator_train__weighted"] = True
        params.update({f"iterator_train__{k}": v for k, v in self._iterator_train_params().items()})
        if self.optimizer == "sgd":
            params["optimizer__momentum"] = 0.9
        if "module__user_index" in params:
            # user_alpha alone shrinks the personal parameters (their Gaussian prior)
            params["optimizer__param_groups"] = [("personal.*", {"weight_decay": 0.0})]
        return NeuralNet(
            module,
            criterion=criterion,
            optimizer=_OPTIMIZERS[self.optimizer],
            optimizer__weight_decay=float(self.weight_decay),
            lr=float(self.lr),
            batch_size=self._predict_batch_size(),
            max_epochs=int(self.max_epochs),
            train_split=train_split,
            callbacks=callbacks,
            iterator_train=BatchIterator,
            iterator_valid=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            device=resolve_device(self.device if device is None else device),
            verbose=int(self.verbose),
            **params,
        )

    def _scoring_targets(self, y: Any, n_samples: int) -> np.ndarray:
        """``y`` as scoring callbacks get it: as given to ``fit``, 1-D where the head predicts 1-D."""
        arr = target_array(y, type(self).__name__, n_samples)
        one_d = self.__dict__.get("_single_output", not isinstance(getattr(self, "classes_", None), list))
        return arr.ravel() if one_d and arr.ndim == 2 and arr.shape[1] == 1 else arr

    def _scoring_view(self, net: Any) -> SkorchHead:
        """This head as scoring callbacks see it while ``net`` trains: the member alone (its own
        hold-out is what is scored), predicting rows of ``_fit_rows.X`` (validated already)."""
        member = next((i for i, other in enumerate(self.nets_) if other is net), 0)
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.__dict__.pop("_fit_rows", None)
        view.nets_, view.net_ = [net], net
        view.__dict__.update(self._member_state(member))
        view._validate_X = lambda X, reset: X
        return view

    def _member_state(self, member: int) -> dict[str, Any]:
        """Fitted attributes that differ per member, as member ``member`` predicts alone."""
        return {}

    def _start_members(self, n_members: int) -> None:
        """Called in ``fit`` before the first member trains (set per-member fitted state)."""

    def _member_trained(self, member: int, net: Any, X_valid: np.ndarray | None, y_valid: np.ndarray | None):
        """Called after member ``member`` has trained, with the rows it never trained on (the
        early-stopping hold-out's and those straddling it; None without early stopping): the
        place for post-hoc steps fitted on held-out items."""

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> SkorchHead:
        """Train the head on features ``X`` and targets ``y`` (see the class docstring).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            NaN marks a missing label; missing entries are left out of the loss.
        groups : array-like of shape (n_samples,) or (n_samples, k), default=None
            Item ids for the early-stopping hold-out (``validation_split='items'``): one per
            row (the image of a rating), or one column per item of a row (the left and right
            images of a pair). Without it items are recognized from the features. Inside a
            Pipeline or a search, request it with ``set_fit_request(groups=True)`` (metadata
            routing). Ignored without early stopping or with ``validation_split='rows'``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: each row's loss counts ``sample_weight`` times (the loss
            is the weighted mean ``Σ w·loss / Σ w`` over observed labels), so an integer weight
            acts as that many copies of the row; the early-stopping loss is weighted alike.
            Inside a Pipeline or a search, request it with ``set_fit_request(sample_weight=True)``
            or pass ``head__sample_weight=w`` to ``Pipeline.fit``.

        Returns
        -------
        self
        """
        if y is None:
            target_array(y, type(self).__name__, 0)
        X = self._validate_X(X, reset=True)
        _warn_feature_scale(X)
        if self._weighted_personal:
            # target statistics (the regressor's standardization) weigh rows like the loss
            y_encoded = self._encode_y(y, len(X), sample_weight=sample_weight)
        else:
            y_encoded = self._encode_y(y, len(X))
        # the rows as scoring callbacks score them (dropped when fit ends)
        self._fit_rows = FitRows(X, self._scoring_targets(y, len(X)))
        try:
            people = None
            if self._weighted_personal:
                self._resolve_users(X)
                targets = np.hstack([y_encoded, self._entry_weights(y_encoded, sample_weight, X)])
                self.__dict__.pop("user_precision_", None)  # a refit starts from the isotropic prior
                self.__dict__.pop("user_alpha_", None)  # ... and from the starting strength
                if len(self._user_index()):
                    people, self.user_prior_reason_ = self._prior_people(X)
            elif sample_weight is not None:
                raise ValueError(f"{type(self).__name__} does not support sample_weight.")
            else:
                targets = y_encoded
            targets = np.ascontiguousarray(targets, dtype=np.float32)
            device = resolve_device(self.device)
            seed = resolve_seed(self.random_state)
            candidates = self._trunk_candidates()
            self.__dict__.pop("trunk_losses_", None)
            fitted, losses = {}, {}
            for sizes in candidates:
                self.hidden_layer_sizes_ = sizes
                losses[sizes] = self._fit_members(X, y_encoded, targets, groups, seed, device, people)
                if len(candidates) > 1:
                    fitted[sizes] = {
                        k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")
                    }
            if len(candidates) > 1:
                best = min(candidates, key=lambda sizes: losses[sizes])  # ties: the linear trunk
                for key in set(fitted[candidates[-1]]) - set(fitted[best]):
                    delattr(self, key)
                self.__dict__.update(fitted[best])
                self.trunk_losses_ = {
                    "hidden" if sizes else "linear": float(loss) for sizes, loss in losses.items()
                }
        finally:
            del self._fit_rows
        return self

    def _fit_members(self, X, y_encoded, targets, groups, seed: int, device: str, people) -> float:
        """Train the ``n_ensemble`` members on the current trunk; their summed held-out loss."""
        # Member i is the fit a single head would make with random_state = seed + i: its own
        # initialization, batch order, dropout and item hold-out, so every item trains most members.
        self.ensemble_seeds_ = seed + np.arange(int(self.n_ensemble), dtype=np.int64)
        self.nets_ = []
        self._start_members(len(self.ensemble_seeds_))
        precisions, alphas, total = [], [], 0.0
        for member, member_seed in enumerate(self.ensemble_seeds_.tolist()):
            precision, alpha, loss = self._fit_member(
                member, X, y_encoded, targets, groups, member_seed, device, people
            )
            precisions.append(precision)
            alphas.append(alpha)
            total += loss
        if self._weighted_personal and len(self._user_index()):
            self.user_alpha_ = np.asarray(alphas, dtype=np.float64)
            learned = all(p is not None for p in precisions)
            if learned:
                self.user_precision_ = np.stack(precisions)
            elif people is not None:
                width = self._personal_width(self.net_)
                self.user_prior_reason_ = (
                    f"{width} personal parameters per person (more than {MAX_PRIOR_DIM})"
                )
            self.user_prior_ = "learned" if learned else "isotropic"
        return total

    def _fit_member(
        self,
        member: int,
        X: np.ndarray,
        y_encoded: np.ndarray,
        targets: np.ndarray,
        groups: Any,
        seed: int,
        device: str,
        people: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, float, float]:
        """Train member ``member``; with ``people`` (rows' persons, ``user_prior='learned'``)
        also learn its prior. With ``user_alpha='auto'`` choose the prior's strength on
        held-out judgments. Return the learned precision (None: isotropic), the strength and
        the member's loss on the rows it never trained on (0 without them)."""
        callbacks = training_callbacks(
            self.callbacks, early_stopping=self.early_stopping, patience=self.patience
        )
        split = self._validation(X, y_encoded, groups, seed)
        X_train, y_train = (X, targets) if split.train is None else (X[split.train], targets[split.train])
        train_split = split.train_split
        if train_split is None and split.valid is not None:
            train_split = _predefined(X, targets, split.valid)
        net = self._build_net(X.shape[1], train_split, callbacks, device, torch_generator(seed))
        net.set_params(iterator_train__batch_size=self._train_batch_size(len(X_train)))
        if getattr(net, "module__user_index", None) is not None:
            net.module__penalty = self._penalty(y_train)
        # net_ (the first member) and nets_ exist before training so callbacks can evaluate the
        # estimator mid-fit: predictions then average the members trained so far and this one.
        self.nets_.append(net)
        if member == 0:
            self.net_ = net
            self.n_straddling_ = split.n_straddling
        # torch's generator is one per process: the net is built in a seeded block (briefly, one
        # thread at a time), then its weights and every dropout mask are drawn from generators of
        # this fit's own (the same numbers a global generator seeded alike gives), so neither
        # other fits nor anything else drawing in other threads changes them.
        with seeded_torch(seed, device):
            net.initialize()
        generator = torch_generator(seed)
        reset_linear_layers(net.module_, generator)
        self._start_at_marginal(net.module_, y_train)
        if torch.device(net.device).type != "cpu":
            generator = torch.Generator(device=net.device).manual_seed(seed)
        use_generator(net.module_, generator)
        # user_alpha='auto' with one-hot people: the shared part trains alone (the people's
        # deviations held at zero); the people are fitted to it, frozen, once it has stopped.
        personal = getattr(net, "module__user_index", None) is not None
        one_hot = self._one_hot_people(X) if personal and self.user_alpha == "auto" else None
        try:
            with self._shared_training(net, one_hot is not None):
                net.partial_fit(torch.from_numpy(X_train), torch.from_numpy(y_train))
        finally:
            use_generator(net.module_, None)
        _check_converged(net, X_train, member)
        precision, alpha = None, self._alpha()
        # on the training rows only: the hold-out stays out of the people's θ (calibration)
        train = np.arange(len(X)) if split.train is None else split.train
        n = y_encoded.shape[1]
        weights = targets[:, n:]
        if personal and people is not None and self._personal_width(net) <= MAX_PRIOR_DIM:
            precision = self._learn_prior(
                net, X[train], y_encoded[train], weights[train], people[train], alpha
            )
        # held out: the validation rows and those straddling both sides (never trained on)
        held = None if split.valid is None else np.setdiff1d(np.arange(len(X)), train)
        selection_loss = np.nan
        if one_hot is not None:
            alpha, how, selection_loss = self._select_user_alpha(
                net, X, y_encoded, weights, one_hot, train, held, precision, seed, items=split.items
            )
            if member == 0:
                self.user_alpha_reason_ = how
            precision = None if precision is None else precision * (alpha / START_USER_ALPHA)
            self._fit_people(
                net, X[train], y_encoded[train], weights[train], one_hot[train], precision, alpha=alpha
            )
        # The item hold-out's split holds the validation rows: training data stays out of the model.
        net.train_split = None
        self._member_trained(
            member, net, None if held is None else X[held], None if held is None else y_encoded[held]
        )
        loss = 0.0
        if one_hot is not None and np.isfinite(selection_loss):
            # the people's held-out loss at the chosen strength: folds of their judgments and the
            # rows training never saw, many more labels than the hold-out alone
            loss = selection_loss
        elif held is not None and len(held) and self._weighted_personal:
            out = torch.from_numpy(self._member_output(member, self._predict_with_net(net, X[held])))
            loss = self._weighted_loss(out, y_encoded[held], weights[held])
        if one_hot is not None and held is not None and len(held):
            # measured and calibrated: now every person learns from all of their judgments
            self._fit_people(net, X, y_encoded, weights, one_hot, precision, alpha=alpha)
        return precision, alpha, loss

    def _member_output(self, member: int, out: np.ndarray) -> np.ndarray:
        """Member ``member``'s raw output as it predicts (after its post-hoc steps)."""
        return out

    def _start_at_marginal(self, module, targets: np.ndarray) -> None:
        """Set ``module``'s output bias so that, before training, it predicts what the training
        ``targets`` (labels then their weights) say without the features. Nothing by default: a
        pair logit starts at 0 (each side equally likely) and a regressor's standardized targets
        have mean 0."""

    def _penalty(self, targets: np.ndarray) -> float:
        """``user_alpha / Σ w`` over the observed training labels: with the weighted mean loss
        ``Σ w·loss / Σ w`` the objective is ``(Σ w·loss + user_alpha·||θ||²) / Σ w``: the
        negative log-posterior (over ``Σ w``) under a Gaussian prior of precision
        ``2 · user_alpha`` on the personal parameters θ."""
        n = targets.shape[1] // 2
        labels, weights = targets[:, :n], targets[:, n:]
        total = float(np.where(np.isnan(labels), 0.0, weights).sum(dtype=np.float64))
        return self._alpha() / max(total, 1e-12)

    # -- inference -----------------------------------------------------------------------------
    def _members(self) -> list:
        """The trained nets (``nets_``), on the device the ``device`` parameter names now: moved
        at this call if it was set since (no refit)."""
        device = current_device(self)
        for net in self.nets_:
            if str(net.device) != device:
                move_net(net, device)
        return self.nets_

    def _member_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        """Raw outputs of each member (``nets_``) for validated ``X``, as float64."""
        return [self._predict_with_net(net, X) for net in self._members()]

    def _forward(self, X: Any) -> np.ndarray:
        """Raw module outputs (logits / standardized values) for ``X``, as float64: the mean
        over the members of an ensemble."""
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        return np.mean(self._member_outputs(X), axis=0)

    @staticmethod
    def _predict_with_net(net: Any, X: np.ndarray) -> np.ndarray:
        """Eval-mode forward pass of ``net`` over ``X`` in batches; works mid-training too."""
        out = net.forward(
            torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), training=False, device="cpu"
        )
        return out.detach().numpy().astype(np.float64)

    # -- persistence ---------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        # Each net as its weights (NumPy) and training history: no skorch or torch object in
        # the state, so joblib and skops files hold data only, and a net trained on a GPU loads
        # on any machine.
        state = super().__getstate__()
        state.pop("_fit_rows", None)  # left by a fit that failed
        if "nets_" in state:
            state["nets_"] = [
                {"weights": to_arrays(net.module_.state_dict()), "history": to_arrays(net.history)}
                for net in state["nets_"]
            ]
            state.pop("net_", None)
        return state

    def __setstate__(self, state: dict) -> None:
        nets = state.pop("nets_", None)
        super().__setstate__(state)
        if nets is not None:
            device = loaded_device(self)
            self.nets_ = [self._restored_net(saved, device) for saved in nets]
            self.net_ = self.nets_[0]

    def _restored_net(self, saved: dict, device: str):
        """A fitted net rebuilt from its saved weights and history, for prediction on ``device``."""
        net = self._build_net(int(self.n_features_in_), None, [], device=device)
        net.initialize()
        net.module_.load_state_dict(to_tensors(saved["weights"]))
        net.module_.to(device).eval()
        net.history = History(saved["history"])
        return net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
