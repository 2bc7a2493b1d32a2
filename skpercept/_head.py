"""Shared machinery of skpercept's skorch-trained estimators.

The heads on feature vectors (rating classifier/regressor, ranker) derive from
:class:`SkorchHead`: one base holds what every head does the same way: parameter set and its
declarative validation, input validation, device and local seeding, building the skorch
``NeuralNet`` in ``fit`` sized from the data, early stopping on an internal validation split
with the best weights restored, real mini-batches, prediction in batches, and pickling.
Subclasses only say how targets are encoded, which module and loss to build, and how raw
outputs become predictions.

The LoRA estimators (:mod:`skpercept.lora`) train an image tower instead, with the same
vocabulary: they share :data:`TRAINING_PARAMETER_CONSTRAINTS`, :func:`training_callbacks`,
:func:`target_array` and :func:`hidden_sizes` with the heads.
"""

from __future__ import annotations

import numbers
import warnings
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._holdout import hold_out_items, item_codes, rating_item_codes
from skpercept._utils import resolve_device, resolve_seed, seeded_torch, torch_generator
from skpercept.nets import ACTIVATIONS

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


def hidden_sizes(hidden_layer_sizes: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` (an int or a sequence of ints) as a tuple of positive ints.

    The declarative constraints check the container; its elements are checked here.
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
    """
    from skorch.callbacks import EarlyStopping

    named: list = []
    if early_stopping:
        named.append(
            ("early_stopping", EarlyStopping(monitor="valid_loss", patience=int(patience), load_best=True))
        )
    for i, cb in enumerate(callbacks or []):
        named.append(cb if isinstance(cb, tuple) else (f"user_callback_{i}_{type(cb).__name__}", cb))
    return named


def target_array(y: Any, estimator_name: str, n_samples: int) -> np.ndarray:
    """``y`` as an ndarray of 1 or 2 dims with ``n_samples`` rows, or a ValueError saying why not.

    Shared by every skorch-trained estimator; classifiers that want a column vector raveled
    (as scikit-learn does) do that themselves.
    """
    if y is None:
        raise ValueError(
            f"This {estimator_name} estimator requires y to be passed, but the target y is None."
        )
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
    """Reject ±inf in float targets (NaN is allowed: it means a missing label)."""
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
        (``y → 1 − y``), the swap augmentation of :class:`~skpercept.ranking.PairwiseRanker`.
    generator : torch.Generator or None, default=None
        Source of the order and the swaps (skorch builds a new iterator every epoch and passes
        the same generator, so epochs differ and a seeded fit repeats). None: torch's global
        generator.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 256,
        shuffle: bool = False,
        swap_pairs: bool = False,
        generator: torch.Generator | None = None,
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
                Xb, yb = random_swap(Xb, yb, self.generator)
            yield Xb, yb


def random_swap(
    Xb: torch.Tensor, yb: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    half = Xb.shape[1] // 2
    flip = torch.rand(len(Xb), generator=generator) < 0.5
    Xs = torch.where(flip[:, None], torch.cat([Xb[:, half:], Xb[:, :half]], dim=1), Xb)
    ys = torch.where(flip.reshape((-1,) + (1,) * (yb.dim() - 1)), 1.0 - yb, yb)
    return Xs, ys


class _Split(NamedTuple):
    """One member's early-stopping split: row positions (None: all rows / no validation)."""

    train: np.ndarray | None
    valid: np.ndarray | None
    train_split: Any
    n_straddling: int


class SkorchHead(BaseEstimator, metaclass=ABCMeta):
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

    Evaluating mid-training
    -----------------------
    ``fit`` sets ``net_`` and every other fitted attribute *before* training starts, so inside a
    skorch callback (``on_epoch_end``) the estimator's own ``predict``/``predict_proba``/
    ``decision_function``/``score`` already work and use the current weights. Pass the callback
    via ``callbacks=[("name", cb)]`` (or ``head__callbacks`` through a Pipeline) and keep a
    reference to the estimator in it; that is how :mod:`skpercept.tune` reports a validation
    score per epoch to Optuna.
    """

    _parameter_constraints: ClassVar[dict] = {
        **TRAINING_PARAMETER_CONSTRAINTS,
        "activation": [StrOptions(set(ACTIVATIONS))],
        "batch_norm": ["boolean"],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "validation_split": [StrOptions({"auto", "items", "rows"})],
        "n_ensemble": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        dropout: float = 0.3,
        batch_norm: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        optimizer: str = "adamw",
        batch_size: int = 256,
        max_epochs: int = 200,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        validation_split: str = "auto",
        patience: int = 10,
        n_ensemble: int = 1,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: list | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_split = validation_split
        self.patience = patience
        self.n_ensemble = n_ensemble
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

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
        ``groups`` (here, rows equal in their descriptive columns are one item), and whether
        the items are described by features rather than identity codes."""
        return rating_item_codes(X)

    def _stratify(self, y_encoded: np.ndarray) -> bool:
        """Whether the row-wise validation split is stratified on the encoded targets."""
        return False

    def _iterator_train_params(self) -> dict[str, Any]:
        """Extra keywords of the training :class:`BatchIterator` (``iterator_train__*``)."""
        return {}

    # -- helpers for the subclasses -------------------------------------------------------------
    def _hidden(self) -> tuple[int, ...]:
        return hidden_sizes(self.hidden_layer_sizes)

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
        """Training rows (None: all), validation rows (None: no early stopping) and the skorch
        ``train_split`` of one member."""
        if not self.early_stopping:
            return _Split(None, None, None, 0)
        if self.validation_split == "rows":
            return self._row_split(X, y_encoded, seed)
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        if groups is None:
            items, described = self._row_items(X)
            if self.validation_split == "auto" and not described:
                return self._row_split(X, y_encoded, seed)
        else:
            items = item_codes(groups, len(X))
        try:
            split = hold_out_items(items, float(self.validation_fraction), seed)
        except ValueError as exc:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of the "
                f"items ({exc}); pass more data, early_stopping=False, or validation_split='rows'."
            ) from exc
        valid = Dataset(torch.from_numpy(X[split.valid]), torch.from_numpy(y_encoded[split.valid]))
        return _Split(split.train, split.valid, predefined_split(valid), split.n_straddling)

    def _row_split(self, X: np.ndarray, y_encoded: np.ndarray, seed: int) -> _Split:
        from skorch.dataset import Dataset, ValidSplit

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
        # The split is deterministic given its seed: the same call inside skorch's fit gives
        # the same rows, which post-training hooks (calibration) need to know.
        _, valid = split(Dataset(X, y_encoded), torch.from_numpy(y_encoded))
        return _Split(None, np.asarray(valid.indices), split, 0)

    def _build_net(
        self,
        n_features: int,
        train_split: Any,
        callbacks: list,
        device: str | None = None,
        generator: torch.Generator | None = None,
    ):
        """The skorch net for this head, sized for ``n_features`` (not yet initialized)."""
        from skorch import NeuralNet

        module, module_params = self._module_params(n_features)
        criterion, criterion_params = self._criterion()
        params = {f"module__{k}": v for k, v in module_params.items()}
        params.update({f"criterion__{k}": v for k, v in criterion_params.items()})
        params.update({f"iterator_train__{k}": v for k, v in self._iterator_train_params().items()})
        if self.optimizer == "sgd":
            params["optimizer__momentum"] = 0.9
        return NeuralNet(
            module,
            criterion=criterion,
            optimizer=_OPTIMIZERS[self.optimizer],
            optimizer__weight_decay=float(self.weight_decay),
            lr=float(self.lr),
            batch_size=int(self.batch_size),
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

    def _start_members(self, n_members: int) -> None:
        """Called in ``fit`` before the first member trains (set per-member fitted state)."""

    def _member_trained(self, member: int, net: Any, X_valid: np.ndarray | None, y_valid: np.ndarray | None):
        """Called after member ``member`` has trained, with its held-out rows (None without
        early stopping): the place for post-hoc steps fitted on held-out items."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, groups: Any = None) -> SkorchHead:
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

        Returns
        -------
        self
        """
        if y is None:
            target_array(y, type(self).__name__, 0)
        X = self._validate_X(X, reset=True)
        y_encoded = self._encode_y(y, len(X))
        device = resolve_device(self.device)
        seed = resolve_seed(self.random_state)
        # Member i is the fit a single head would make with random_state = seed + i: its own
        # initialization, batch order, dropout and item hold-out, so every item trains most members.
        self.ensemble_seeds_ = seed + np.arange(int(self.n_ensemble), dtype=np.int64)
        self.nets_ = []
        self._start_members(len(self.ensemble_seeds_))
        for member, member_seed in enumerate(self.ensemble_seeds_.tolist()):
            self._fit_member(member, X, y_encoded, groups, member_seed, device)
        return self

    def _fit_member(
        self, member: int, X: np.ndarray, y_encoded: np.ndarray, groups: Any, seed: int, device: str
    ) -> None:
        callbacks = training_callbacks(
            self.callbacks, early_stopping=self.early_stopping, patience=self.patience
        )
        split = self._validation(X, y_encoded, groups, seed)
        X_train, y_train = (X, y_encoded) if split.train is None else (X[split.train], y_encoded[split.train])
        net = self._build_net(X.shape[1], split.train_split, callbacks, device, torch_generator(seed))
        # net_ (the first member) and nets_ exist before training so callbacks can evaluate the
        # estimator mid-fit: predictions then average the members trained so far and this one.
        self.nets_.append(net)
        if member == 0:
            self.net_ = net
            self.n_straddling_ = split.n_straddling
        with seeded_torch(seed, device):
            net.fit(torch.from_numpy(X_train), torch.from_numpy(y_train))
        # The item hold-out's split holds the validation rows: training data stays out of the model.
        net.train_split = None
        valid = split.valid
        self._member_trained(
            member, net, None if valid is None else X[valid], None if valid is None else y_encoded[valid]
        )

    # -- inference -----------------------------------------------------------------------------
    def _members(self) -> list:
        """The trained nets (``nets_``); a head pickled before ensembles existed has ``net_`` only."""
        return getattr(self, "nets_", None) or [self.net_]

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # skorch's NeuralNet pickles its modules through torch's storage mechanism and maps them to
    # CPU on load when CUDA is unavailable (with a DeviceWarning), so a head trained with
    # device='cuda' unpickles on a CPU-only machine without extra code here.


COMMON_PARAMS_DOC = """hidden_layer_sizes : int or tuple of int, default=(64,)
        Hidden widths of the MLP trunk; ``()`` gives a linear model on the input features.
        The default is small on purpose: frozen image embeddings carry mostly linear signal
        about perception, and studies have hundreds to thousands of images, so a wider or
        deeper trunk memorizes items (see README, "Heads", for the measurements behind it).
    activation : {'relu', 'gelu', 'silu', 'tanh', 'leaky_relu', 'elu'}, default='relu'
    dropout : float in [0, 1), default=0.3
        Dropout after each hidden layer of the MLP.
    batch_norm : bool, default=False
        BatchNorm before each hidden activation.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=1e-2
        Weight decay. Decoupled for ``optimizer='adamw'``; a plain L2 penalty
        ``weight_decay / 2 * ||w||²`` on the mean loss for ``'adam'`` and ``'sgd'``.
    optimizer : {'adamw', 'adam', 'sgd'}, default='adamw'
        ``'sgd'`` uses momentum 0.9.
    batch_size : int, default=256
        Mini-batch size for training and prediction.
    max_epochs : int, default=200
        Upper bound on training epochs (early stopping usually ends training sooner).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the items (seeded by ``random_state``; see
        ``validation_split``), stop when ``valid_loss`` has not improved for ``patience``
        epochs and restore the weights of the best epoch. When False, train for exactly
        ``max_epochs`` on all rows.
    validation_fraction : float in (0, 1), default=0.1
        Share of the items (or rows) held out for early stopping.
    validation_split : {'auto', 'items', 'rows'}, default='auto'
        ``'items'``: hold out items, not rows, so that validation measures what the model
        does for new images. Items are the ``groups`` given to ``fit``, or else recognized
        from the features: rows (for pairs, half-rows) equal in their descriptive columns
        are one item, where columns equal in both halves of every pair row (context such as
        a user one-hot) and, when other columns exist, columns holding only 0/1 (one-hot
        codes) do not count, so an image rated or judged by several users stays one item.
        Validation rows have all their items held out, training rows none; rows straddling
        the cut are left out of both (counted in ``n_straddling_``). ``'rows'``: a random
        share of rows (stratified by level for a single-output classifier), which for rows
        sharing items rewards memorizing them. ``'auto'``: ``'items'``, except when ``groups``
        is not given and the items are identity codes (every column that tells them apart
        holds only 0/1, e.g. one-hot item ids): no model scores an unseen identity, so new
        judgments of known items (``'rows'``) are what validation should measure.
    patience : int, default=10
        Epochs without a lower ``valid_loss`` before training stops.
    n_ensemble : int, default=1
        Number of nets trained (a deep ensemble). Member ``i`` is the fit a single head makes
        with ``random_state = seed + i`` (``seed``: the int ``random_state`` resolves to,
        ``ensemble_seeds_``): its own initialization, batch order, dropout and early-stopping
        hold-out, so every item trains most members. Predictions average the members' raw
        outputs (see the head's Notes); training and prediction cost ``n_ensemble`` times as much.
    device : str, default='auto'
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when visible). Outputs are
        always NumPy arrays on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, batch order, dropout and the validation split through
        generators local to ``fit``; the caller's global ``random``, NumPy and torch generators
        are neither re-seeded nor advanced. With an int, two fits on CPU give identical
        predictions; ``None`` draws a fresh seed per fit.
    verbose : int, default=0
        skorch's per-epoch log when > 0.
    callbacks : list or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` tuples) appended to the
        net's callbacks, e.g. a pruning callback from :mod:`skpercept.tune`; a bare callback
        is named ``user_callback_<i>_<ClassName>``. The estimator can be evaluated from inside
        a callback: see "Evaluating mid-training" below."""

COMMON_ATTRS_DOC = """net_ : skorch.NeuralNet
        The trained net (the first member of an ensemble). ``net_.history[:, 'train_loss']``
        holds the per-epoch training loss and, with early stopping,
        ``net_.history[:, 'valid_loss']`` the validation loss.
    nets_ : list of skorch.NeuralNet
        All ``n_ensemble`` trained nets, ``nets_[0] is net_``.
    ensemble_seeds_ : ndarray of shape (n_ensemble,)
        The seed of each member: refitting a single head with ``random_state=ensemble_seeds_[i]``
        reproduces member ``i``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
        Number of attributes (columns of ``y``; 1 for 1-D ``y``).
    n_straddling_ : int
        Training rows left out of both sides of the item hold-out because their items fall on
        both sides of the cut (0 without early stopping or with ``validation_split='rows'``);
        of the first member's hold-out for an ensemble."""

MIDTRAINING_DOC = """Evaluating mid-training: ``fit`` sets ``net_`` and all other fitted attributes before
    the first epoch, so a skorch callback holding a reference to this estimator can call its
    ``predict``/``predict_proba``/``score`` in ``on_epoch_end`` and gets the current weights.
    With ``n_ensemble > 1`` the members train one after another, each through the same
    callbacks (epochs restart at 1 for every member); predictions then average the members
    trained so far and the one in training."""


def fill_doc(cls: type) -> type:
    """Insert the shared parameter/attribute text into a head's docstring."""
    cls.__doc__ = (
        cls.__doc__.replace("{common_params}", COMMON_PARAMS_DOC)
        .replace("{common_attrs}", COMMON_ATTRS_DOC)
        .replace("{midtraining}", MIDTRAINING_DOC)
    )
    return cls
