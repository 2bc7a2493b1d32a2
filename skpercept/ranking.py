"""PairwiseRanker: learn which of two images people prefer, and score whole image sets.

Input follows the pair layout shared by every skpercept pair estimator (see
:mod:`skpercept.pairs`): ``X = [left item ‖ context | right item ‖ context]``, two halves of
equal width; ``y = 1`` where the left item is preferred, ``0`` where the right one is,
values in between for soft labels (a tie is 0.5), one column per attribute with NaN missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from skpercept._head import SkorchHead, check_finite_targets, fill_doc
from skpercept.nets import MaskedPairLoss, PairScorer


def _symmetric_expit(d: np.ndarray) -> np.ndarray:
    """σ(d) computed so that σ(d) + σ(−d) == 1 holds exactly in floating point.

    For d ≥ 0 it is ``expit(d)``; for d < 0 it is ``1 − expit(−d)``, which is exact because
    ``expit(−d)`` lies in [0.5, 1] (Sterbenz). Swapped halves give ``d → −d`` exactly, so
    ``P(left ≻ right) + P(right ≻ left) == 1`` bit for bit.
    """
    return np.where(d >= 0, expit(d), 1.0 - expit(-d))


@fill_doc
class PairwiseRanker(ClassifierMixin, SkorchHead):
    """Siamese scorer ``s(half)``; ``P(left ≻ right) = σ(s(left) − s(right))`` (skorch-trained).

    One network scores both halves, so swapping them gives exactly ``1 − p``: the model is
    antisymmetric by construction. Each training batch swaps the halves of a random half of
    its rows and flips their labels (swap augmentation); for this antisymmetric scorer the
    loss is invariant to the swap, so it only guarantees that nothing downstream (BatchNorm
    statistics, user callbacks) sees left/right-ordered data. With
    ``hidden_layer_sizes=()``, one-hot item features and ``optimizer='adam'`` it is a
    Bradley–Terry model with an L2 penalty ``weight_decay / 2 · ||s||²`` on the mean
    log-loss.

    Parameters
    ----------
    {common_params}

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        ``array([0, 1])`` (1 = left preferred); a list of them for 2-D ``y``.
    n_half_features_ : int
        Width of one half (``n_features_in_ // 2``).
    {common_attrs}

    Notes
    -----
    For 1-D ``y``, ``predict_proba`` is ``(n_pairs, 2)`` with columns ``[P(right ≻ left),
    P(left ≻ right)]`` and ``predict`` returns 0/1. For 2-D ``y`` (one column per
    attribute), ``predict_proba`` is a list of ``(n_pairs, 2)`` arrays, one per attribute
    (scikit-learn's multi-output convention), and ``predict`` and ``decision_function`` are
    ``(n_pairs, n_outputs)``. ``score`` is the pairwise accuracy (soft labels earn partial
    credit, ties 0.5). Scores ``s`` are defined up to an additive constant per attribute.

    {midtraining}

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.ranking import PairwiseRanker
    >>> rng = np.random.RandomState(0)
    >>> items = rng.normal(size=(40, 6))
    >>> a, b = rng.randint(0, 40, size=(2, 300))
    >>> X = np.hstack([items[a], items[b]])
    >>> y = (items[a, 0] > items[b, 0]).astype(int)
    >>> ranker = PairwiseRanker(hidden_layer_sizes=(16,), max_epochs=30, random_state=0).fit(X, y)
    >>> ranker.predict_proba(X[:2]).shape
    (2, 2)
    >>> ranker.score_items(items).shape
    (40,)
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        optimizer: str = "adamw",
        batch_size: int = 256,
        max_epochs: int = 200,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 10,
        device: str = "auto",
        random_state: int | None = None,
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
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        X = super()._validate_X(X, reset=reset)
        if X.shape[1] % 2:
            raise ValueError(
                f"Pair features must have an even number of columns ([left | right] halves of "
                f"equal width); got {X.shape[1]}. Build X with skpercept.pairs.PairFeatures or "
                "np.hstack([left, right])."
            )
        return X

    def _encode_y(self, y: Any, n_samples: int) -> np.ndarray:
        arr = self._ravel_column(self._as_target_array(y, type(self).__name__, n_samples))
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "y must be numeric: 1 where the left item is preferred, 0 where the right is, "
                "values in between for soft labels, NaN for missing."
            ) from None
        check_finite_targets(arr)
        observed = arr[~np.isnan(arr)]
        if len(observed) == 0:
            raise ValueError("y has no labels (all missing).")
        if observed.min() < 0 or observed.max() > 1:
            bad = observed[(observed < 0) | (observed > 1)][:5].tolist()
            raise ValueError(
                f"y must be in [0, 1] (1 = left preferred, 0 = right, 0.5 = tie); got {bad}. "
                "If your labels say 1/2 for 'first'/'second' image, map them explicitly."
            )
        one_d = arr.ndim == 1
        arr = arr.reshape(n_samples, -1)
        self.n_outputs_ = arr.shape[1]
        self.classes_ = np.array([0, 1]) if one_d else [np.array([0, 1]) for _ in range(arr.shape[1])]
        return arr.astype(np.float32)

    def _module_params(self, n_features: int) -> tuple[type, dict]:
        self.n_half_features_ = n_features // 2
        return PairScorer, dict(
            n_half=self.n_half_features_,
            n_outputs=self.n_outputs_,
            hidden_layer_sizes=self._hidden(),
            activation=self.activation,
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
        )

    def _criterion(self) -> tuple[type, dict]:
        return MaskedPairLoss, {}

    def _iterator_train_params(self) -> dict[str, Any]:
        return {"swap_pairs": True}

    # -- prediction --------------------------------------------------------------------------
    def _one_d(self) -> bool:
        return not isinstance(self.classes_, list)

    def decision_function(self, X: Any) -> np.ndarray:
        """Score difference ``s(left) − s(right)`` (the logit of ``P(left ≻ right)``).

        Returns
        -------
        d : ndarray of shape (n_pairs,) or (n_pairs, n_outputs)
        """
        d = self._forward(X)
        return d.ravel() if self._one_d() else d

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """``[P(right ≻ left), P(left ≻ right)]`` per pair (a list per attribute for 2-D ``y``)."""
        p = _symmetric_expit(self._forward(X))
        probas = [np.column_stack([1.0 - p[:, j], p[:, j]]) for j in range(p.shape[1])]
        return probas[0] if self._one_d() else probas

    def predict(self, X: Any) -> np.ndarray:
        """1 where the left item is predicted to be preferred, else 0."""
        return (self.decision_function(X) > 0).astype(int)

    def score_items(self, X_half: Any) -> np.ndarray:
        """Latent score ``s`` of each item (one half-row per item) — rank a whole image set.

        Parameters
        ----------
        X_half : array-like of shape (n_items, n_half_features_)
            Item features plus context, laid out like one half of a pair row.

        Returns
        -------
        scores : ndarray of shape (n_items,) or (n_items, n_outputs)
            Higher = more preferred. Only differences are meaningful.
        """
        check_is_fitted(self, "net_")
        X_half = X_half.toarray() if hasattr(X_half, "toarray") else X_half
        X_half = np.asarray(X_half.to_numpy() if hasattr(X_half, "to_numpy") else X_half, dtype=np.float32)
        if X_half.ndim != 2 or X_half.shape[1] != self.n_half_features_:
            raise ValueError(
                f"score_items expects one half of a pair row per item, shape (n_items, "
                f"{self.n_half_features_}); got {X_half.shape}."
            )
        if not np.isfinite(X_half).all():
            raise ValueError("X_half contains NaN or infinity.")
        module = self.net_.module_
        was_training = module.training
        module.eval()
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(X_half), int(self.batch_size)):
                    chunk = torch.from_numpy(
                        np.ascontiguousarray(X_half[start : start + int(self.batch_size)])
                    )
                    out.append(module.score(chunk.to(self.net_.device)).cpu().numpy())
        finally:
            module.train(was_training)
        scores = np.concatenate(out).astype(np.float64) if out else np.empty((0, self.n_outputs_))
        return scores.ravel() if self._one_d() else scores

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Pairwise accuracy (soft labels earn partial credit; NaN labels are skipped)."""
        from skpercept.metrics import pairwise_accuracy

        if sample_weight is not None:
            raise ValueError("PairwiseRanker.score does not support sample_weight.")
        return float(pairwise_accuracy(y, self._p_left(X)))

    def _p_left(self, X: Any) -> np.ndarray:
        p = _symmetric_expit(self._forward(X))
        return p.ravel() if self._one_d() else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
