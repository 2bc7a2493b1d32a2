"""PairwiseRanker: learn which of two images people prefer, and score whole image sets.

Input follows the pair layout shared by every skpercept pair estimator (see
:mod:`skpercept.preprocessing`): ``X = [left item ‖ context | right item ‖ context]``, two halves of
equal width; ``y = 1`` where the left item is preferred, ``0`` where the right one is,
values in between for soft labels (a tie is 0.5), one column per attribute with NaN missing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from skpercept._compat import StrOptions
from skpercept._holdout import pair_item_codes
from skpercept._utils import estimator_parameters, symmetric_expit
from skpercept.heads.base import SkorchHead, check_finite_targets, fill_doc, target_array
from skpercept.heads.calibration import TemperedMembers, fit_temperature
from skpercept.heads.nets import MaskedPairLoss, PairScorer
from skpercept.metrics import pairwise_accuracy
from skpercept.personal import pair_context_columns


@fill_doc
@estimator_parameters
class PairwiseRanker(ClassifierMixin, TemperedMembers, SkorchHead):
    """Siamese scorer ``s(half)``; ``P(left ≻ right) = σ(s(left) − s(right))`` (skorch-trained).

    One network scores both halves, so swapping them gives exactly ``1 − p``: the model is
    antisymmetric by construction. Each training batch swaps the halves of a random half of
    its rows and flips their labels (swap augmentation); for this antisymmetric scorer the
    loss is invariant to the swap, so it only guarantees that nothing downstream (BatchNorm
    statistics, user callbacks) sees left/right-ordered data. With
    ``hidden_layer_sizes=()``, one-hot item features and ``optimizer='adam'`` it is a
    Bradley–Terry model with an L2 penalty ``weight_decay / 2 · ||s||²`` on the mean
    log-loss; with a one-hot person block as ``user_features`` (and ``weight_decay=0``), a
    hierarchical Bradley–Terry model: item worths shared by everyone plus each person's
    deviations, shrunk by ``user_alpha``. ``sample_weight`` weighs each pair's log-loss.

    Parameters
    ----------
    calibration : {'auto', 'temperature'} or None, default='auto'
        Post-hoc calibration of ``P(left ≻ right)`` on held-out judgments: after training
        (and, with ``user_features``, after every person's deviation is fitted), each
        member's temperature ``T`` (one per attribute) minimizes the log-loss of
        ``σ(d / T)`` on the rows training never saw: the early-stopping hold-out's, whose
        items are all held out, and those straddling it (one item held out), against their
        labels (soft labels too), under a standard normal prior on ``log T`` (a few held-out
        pairs that all agree with the model cannot make it certain). Dividing by ``T > 0``
        keeps the model antisymmetric and leaves ``predict`` and the order of ``score_items``
        unchanged (of a single member).
        Without early stopping there are no held-out rows and ``T`` stays 1. ``'auto'``:
        ``'temperature'`` for a model of people (``user_features``), whose deviations,
        fitted to a few judgments each, make it confident beyond its accuracy (on a
        24-person reference folder, ECE 0.29 uncalibrated; ``docs/benchmarks.md``, "One
        person's taste"); None for the shared model, where early stopping already keeps the
        epoch with the lowest log-loss on the held-out items and ``T`` mostly adds noise
        (on the OMI demo it moved the ECE by less than 0.01 either way: ``docs/benchmarks.md``,
        "Calibration").
        ``calibration_`` says which was used. For a shared model with few held-out rows
        prefer ``CalibratedClassifierCV`` (Notes), which fits ``T`` on out-of-fold
        predictions of every row.
    {common_params}

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        ``array([0, 1])`` (1 = left preferred); a list of them for 2-D ``y``.
    n_half_features_ : int
        Width of one half (``n_features_in_ // 2``).
    calibration_ : str or None
        The calibration used (``calibration`` with ``'auto'`` resolved).
    temperature_ : ndarray of shape (n_ensemble, n_outputs)
        Each member's temperature per attribute (ones without calibration or without
        early stopping). ``decision_function``, ``predict_proba`` and ``score_items`` use the
        calibrated scale ``s / T``.
    {common_attrs}

    Notes
    -----
    For 1-D ``y``, ``predict_proba`` is ``(n_pairs, 2)`` with columns ``[P(right ≻ left),
    P(left ≻ right)]`` and ``predict`` returns 0/1. For 2-D ``y`` (one column per
    attribute), ``predict_proba`` is a list of ``(n_pairs, 2)`` arrays, one per attribute
    (scikit-learn's multi-output convention), and ``predict`` and ``decision_function`` are
    ``(n_pairs, n_outputs)``. ``score`` is the pairwise accuracy (soft labels earn partial
    credit, ties 0.5). Scores ``s`` are defined up to an additive constant per attribute.

    An ensemble (``n_ensemble > 1``) averages its members' calibrated score differences
    ``d_i / T_i`` (and ``score_items`` the member scores ``s_i / T_i``): a mean of
    antisymmetric functions stays exactly antisymmetric, and
    ``σ(score_items(a) − score_items(b))`` still equals ``predict_proba`` of ``[a | b]``.

    Calibration can also come from scikit-learn: ``CalibratedClassifierCV(ranker,
    method='temperature', cv=ImageDisjointSplit(...))`` with hard 0/1 labels and
    ``groups`` (the left and right image ids) routed to the splitter fits ``T`` on
    image-disjoint folds instead of the early-stopping hold-out: out-of-fold predictions of
    every row, many more than the hold-out has (keep ``calibration=None`` inside it).

    {midtraining}

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import PairwiseRanker
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

    _parameter_constraints: ClassVar[dict] = {
        **SkorchHead._parameter_constraints,
        "calibration": [StrOptions({"auto", "temperature"}), None],
    }
    _weighted_personal = True
    _units = 2
    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {**SkorchHead._skorch_owners, "criterion": ()}

    calibration: str | None = "auto"

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        X = super()._validate_X(X, reset=reset)
        if X.shape[1] % 2:
            raise ValueError(
                f"Pair features must have an even number of columns ([left | right] halves of "
                f"equal width); got {X.shape[1]}. Build X with skpercept.preprocessing.PairFeatures or "
                "np.hstack([left, right])."
            )
        return X

    def _row_items(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """Left and right item codes: equal half-rows (without shared context and person
        columns) are one item."""
        return pair_item_codes(self._item_part(X))

    def _auto_user_features(self, X: np.ndarray, names: np.ndarray | None) -> np.ndarray:
        """The context columns: equal in both halves of every row, and not constant."""
        return pair_context_columns(X)

    def _encode_y(self, y: Any, n_samples: int, reset: bool = True, sample_weight: Any = None) -> np.ndarray:
        arr = self._ravel_column(target_array(y, type(self).__name__, n_samples))
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
        if not reset:
            if arr.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {arr.shape[1]} attribute column(s); the ranker was fitted on {self.n_outputs_}."
                )
            return arr.astype(np.float32)
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

    # -- calibration (TemperedMembers) --------------------------------------------------------
    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        return out / temperature

    def _fit_temperatures(self, d: np.ndarray, y: np.ndarray) -> list[float]:
        return [fit_temperature(d[:, j], y[:, j]) for j in range(d.shape[1])]

    def _selection_loss(self, out: torch.Tensor, y: np.ndarray, weights: np.ndarray) -> float:
        # user_alpha='auto' with a temperature: each strength is judged at its own best temperature
        if self.calibration_ is not None:
            d = out.detach().numpy()
            out = torch.from_numpy(d / self._fit_temperatures(d, y))
        return super()._selection_loss(out, y, weights)

    # -- prediction --------------------------------------------------------------------------
    def _one_d(self) -> bool:
        return not isinstance(self.classes_, list)

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated score difference ``(s(left) − s(right)) / T`` (the logit of ``P(left ≻ right)``).

        Averaged over the members of an ensemble; exactly antisymmetric (swapping the halves
        negates it).

        Returns
        -------
        d : ndarray of shape (n_pairs,) or (n_pairs, n_outputs)
        """
        d = self._forward(X)
        return d.ravel() if self._one_d() else d

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """``[P(right ≻ left), P(left ≻ right)]`` per pair (a list per attribute for 2-D ``y``)."""
        p = symmetric_expit(self._forward(X))
        probas = [np.column_stack([1.0 - p[:, j], p[:, j]]) for j in range(p.shape[1])]
        return probas[0] if self._one_d() else probas

    def predict(self, X: Any) -> np.ndarray:
        """1 where the left item is predicted to be preferred, else 0."""
        return (self.decision_function(X) > 0).astype(int)

    def score_items(self, X_half: Any) -> np.ndarray:
        """Latent score ``s / T`` of each item (one half-row per item) — rank a whole image set.

        The scale is the calibrated one: ``σ(score_items(a) − score_items(b))`` equals
        ``predict_proba`` of the pair ``[a | b]``. For an ensemble, the mean member score.

        Parameters
        ----------
        X_half : array-like of shape (n_items, n_half_features)
            Item features plus context, laid out like one half of a pair row; with
            ``user_features``, the person's columns give that person's scores (all zeros:
            the shared model's).

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
        members = [
            self._item_scores(net, X_half) / t for net, t in zip(self._members(), self._temperatures())
        ]
        scores = np.mean(members, axis=0)
        return scores.ravel() if self._one_d() else scores

    def _item_scores(self, net: Any, X_half: np.ndarray) -> np.ndarray:
        module = net.module_
        was_training = module.training
        module.eval()
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(X_half), self._predict_batch_size()):
                    chunk = torch.from_numpy(
                        np.ascontiguousarray(X_half[start : start + self._predict_batch_size()])
                    )
                    out.append(module.score(chunk.to(net.device)).cpu().numpy())
        finally:
            module.train(was_training)
        return np.concatenate(out).astype(np.float64) if out else np.empty((0, self.n_outputs_))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Pairwise accuracy (soft labels earn partial credit; NaN labels are skipped)."""
        if sample_weight is not None:
            raise ValueError("PairwiseRanker.score does not support sample_weight.")
        return float(pairwise_accuracy(y, self._p_left(X)))

    def _p_left(self, X: Any) -> np.ndarray:
        p = symmetric_expit(self._forward(X))
        return p.ravel() if self._one_d() else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
