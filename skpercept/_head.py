"""Shared machinery of skpercept's skorch-trained heads (rating classifier/regressor, ranker).

One base class holds what every head does the same way: parameter set, input validation,
device and seeding, building the skorch ``NeuralNet`` in ``fit`` sized from the data, early
stopping on an internal validation split with the best weights restored, real mini-batches,
prediction in batches, and pickling. Subclasses only say how targets are encoded, which
module and loss to build, and how raw outputs become predictions.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._utils import resolve_device, seed_everything

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


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
        Draws a new order per epoch from torch's global generator (seeded in ``fit``).
    swap_pairs : bool, default=False
        Pair data only: swap the halves of a random half of the rows and flip their labels
        (``y → 1 − y``), the swap augmentation of :class:`~skpercept.ranking.PairwiseRanker`.
    """

    def __init__(
        self, dataset: Any, batch_size: int = 256, shuffle: bool = False, swap_pairs: bool = False
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

    def _bounds(self) -> list[tuple[int, int]]:
        starts = list(range(0, self.n, self.batch_size))
        bounds = [(s, min(s + self.batch_size, self.n)) for s in starts]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
            bounds[-2:] = [(bounds[-2][0], self.n)]
        return bounds

    def __len__(self) -> int:
        return len(self._bounds())

    def __iter__(self):
        order = torch.randperm(self.n) if self.shuffle else None
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
                Xb, yb = _random_swap(Xb, yb)
            yield Xb, yb


def _random_swap(Xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = Xb.shape[1] // 2
    flip = torch.rand(len(Xb)) < 0.5
    Xs = torch.where(flip[:, None], torch.cat([Xb[:, half:], Xb[:, :half]], dim=1), Xb)
    ys = torch.where(flip.reshape((-1,) + (1,) * (yb.dim() - 1)), 1.0 - yb, yb)
    return Xs, ys


class SkorchHead(BaseEstimator):
    """Base of the skorch-trained heads; not used directly.

    Subclasses implement ``_encode_y(y, n_samples)`` (validate targets, set ``classes_`` or
    target statistics, return a float32 array ``(n, n_outputs)`` with NaN = missing),
    ``_module_params(n_features)`` (module class and ``module__*`` keywords), ``_criterion()``
    (criterion class and ``criterion__*`` keywords), and may override ``_validate_X``,
    ``_stratify(y_encoded)`` and ``_iterator_train_params()``.

    Fitted ``net_`` is a :class:`skorch.NeuralNet`. Its ``history`` has ``train_loss`` per
    epoch, and ``valid_loss`` per epoch when ``early_stopping=True`` (computed on the held-out
    ``validation_fraction`` of the training rows; the weights of the epoch with the lowest
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

    # -- validation ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}.")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if self.early_stopping and not 0.0 < float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}.")
        if int(self.max_epochs) < 1 or int(self.batch_size) < 1 or int(self.patience) < 1:
            raise ValueError("max_epochs, batch_size and patience must be positive integers.")

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        return (int(sizes),) if isinstance(sizes, numbers.Integral) else tuple(int(s) for s in sizes)

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
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

    @staticmethod
    def _as_target_array(y: Any, estimator_name: str, n_samples: int) -> np.ndarray:
        """y as an ndarray of 1 or 2 dims and the right length; (n, 1) is raveled with a warning
        for classifiers (as scikit-learn does) by the subclasses that want it."""
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

    # -- training ----------------------------------------------------------------------------
    def _stratify(self, y_encoded: np.ndarray) -> bool:
        return False

    def _iterator_train_params(self) -> dict[str, Any]:
        return {}

    def _callbacks(self) -> list:
        from skorch.callbacks import EarlyStopping

        callbacks: list = []
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(monitor="valid_loss", patience=int(self.patience), load_best=True),
                )
            )
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_callback_{i}_{type(cb).__name__}", cb))
        return callbacks

    def _train_split(self, y_encoded: np.ndarray, seed: int | None):
        if not self.early_stopping:
            return None
        from skorch.dataset import ValidSplit

        n = len(y_encoded)
        n_valid = int(np.ceil(float(self.validation_fraction) * n))
        if n < 2 or n - n_valid < 1:
            raise ValueError(
                f"early_stopping needs a validation split, but there are only n_samples={n} "
                "rows; pass more data or early_stopping=False."
            )
        return ValidSplit(
            cv=float(self.validation_fraction), stratified=self._stratify(y_encoded), random_state=seed
        )

    def _build_net(self, n_features: int, train_split: Any, callbacks: list, device: str | None = None):
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
            device=resolve_device(self.device if device is None else device),
            verbose=int(self.verbose),
            **params,
        )

    def fit(self, X: Any, y: Any) -> SkorchHead:
        """Train the head on features ``X`` and targets ``y`` (see the class docstring).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            NaN marks a missing label; missing entries are left out of the loss.

        Returns
        -------
        self
        """
        self._check_params()
        if y is None:
            self._as_target_array(y, type(self).__name__, 0)
        X = self._validate_X(X, reset=True)
        y_encoded = self._encode_y(y, len(X))
        seed = seed_everything(self.random_state)
        net = self._build_net(X.shape[1], self._train_split(y_encoded, seed), self._callbacks())
        # net_ exists before training so callbacks can evaluate the estimator mid-fit.
        self.net_ = net
        net.fit(torch.from_numpy(X), torch.from_numpy(y_encoded))
        return self

    # -- inference ---------------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """Raw module outputs (logits / standardized values) for validated ``X``, as float64."""
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        return self._predict_with_net(self.net_, X)

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


def check_finite_targets(y: np.ndarray, what: str = "y") -> None:
    """Reject ±inf in float targets (NaN is allowed: it means a missing label)."""
    if np.issubdtype(y.dtype, np.floating) and np.isinf(y).any():
        row = int(np.argwhere(np.isinf(y))[0][0])
        raise ValueError(f"{what} contains infinity (first at row {row}); use NaN for a missing label.")


COMMON_PARAMS_DOC = """hidden_layer_sizes : tuple of int, default=(256, 128)
        Hidden widths of the MLP trunk; ``()`` gives a linear model on the input features.
    activation : {'relu', 'gelu', 'silu', 'tanh', 'leaky_relu', 'elu'}, default='relu'
    dropout : float, default=0.1
        Dropout after each hidden layer.
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
        Hold out ``validation_fraction`` of the rows (seeded by ``random_state``), stop when
        ``valid_loss`` has not improved for ``patience`` epochs and restore the weights of the
        best epoch. When False, train for exactly ``max_epochs`` on all rows.
    validation_fraction : float, default=0.1
    patience : int, default=10
    device : str, default='auto'
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when visible). Outputs are
        always NumPy arrays on the CPU.
    random_state : int or None, default=None
        Seeds weight initialization, batch order, dropout and the validation split; with an
        int, two fits on CPU give identical predictions.
    verbose : int, default=0
        skorch's per-epoch log when > 0.
    callbacks : list or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` tuples) appended to the
        net's callbacks, e.g. a pruning callback from :mod:`skpercept.tune`. The estimator
        can be evaluated from inside a callback: see "Evaluating mid-training" below."""

COMMON_ATTRS_DOC = """net_ : skorch.NeuralNet
        The trained net. ``net_.history[:, 'train_loss']`` holds the per-epoch training
        loss and, with early stopping, ``net_.history[:, 'valid_loss']`` the validation loss.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
        Number of attributes (columns of ``y``; 1 for 1-D ``y``)."""

MIDTRAINING_DOC = """Evaluating mid-training: ``fit`` sets ``net_`` and all other fitted attributes before
    the first epoch, so a skorch callback holding a reference to this estimator can call its
    ``predict``/``predict_proba``/``score`` in ``on_epoch_end`` and gets the current weights."""


def fill_doc(cls: type) -> type:
    """Insert the shared parameter/attribute text into a head's docstring."""
    cls.__doc__ = (
        cls.__doc__.replace("{common_params}", COMMON_PARAMS_DOC)
        .replace("{common_attrs}", COMMON_ATTRS_DOC)
        .replace("{midtraining}", MIDTRAINING_DOC)
    )
    return cls
