"""Rating heads: predict people's ratings of an image (per attribute) from its feature vector.

:class:`RatingClassifier` treats ratings as levels (e.g. 1–4) with a cross-entropy or an
ordinal (CORN) loss; :class:`RatingRegressor` predicts continuous (mean) ratings. Both accept
several attributes at once (2-D ``y``, one column per attribute) with NaN for a missing label,
and train one shared MLP trunk with one head per attribute.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from skpercept._compat import StrOptions
from skpercept._dataframes import as_pandas
from skpercept._utils import estimator_parameters
from skpercept.heads.base import SkorchHead, check_finite_targets, fill_doc, target_array
from skpercept.heads.calibration import TemperedMembers, fit_level_temperature
from skpercept.heads.nets import (
    MaskedRatingLoss,
    MaskedRegressionLoss,
    RatingNet,
    corn_proba,
    logit_width,
    marginal_logits,
)


def _column_names(y: Any, n_outputs: int) -> list[str]:
    y = as_pandas(y)  # a polars / pyarrow y names its columns in error messages too
    if isinstance(y, pd.DataFrame):
        return [repr(c) for c in y.columns]
    if isinstance(y, pd.Series) and y.name is not None:
        return [repr(y.name)]
    return [f"column {j}" for j in range(n_outputs)]


def _weighted_stats(arr: np.ndarray, sample_weight: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of the observed values, rows weighted by
    ``sample_weight`` (as the loss weighs them: integer weights act as repeated rows)."""
    if sample_weight is None:
        return np.nanmean(arr, axis=0), np.nanstd(arr, axis=0)
    observed = ~np.isnan(arr)
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if len(w) != len(arr) or (w < 0).any() or not np.isfinite(w).all():
        w = np.ones(len(arr))  # invalid weights are refused with a clear message right after
    W = np.where(observed, w[:, None], 0.0)
    total = W.sum(axis=0)
    W = np.where(total > 0, W, observed.astype(float))  # a column of zero weights: unweighted
    values = np.where(observed, arr, 0.0)
    mean = (W * values).sum(axis=0) / W.sum(axis=0)
    var = (W * (values - mean) ** 2).sum(axis=0) / W.sum(axis=0)
    return mean, np.sqrt(var)


@fill_doc
@estimator_parameters
class RatingClassifier(ClassifierMixin, TemperedMembers, SkorchHead):
    """MLP head predicting rating levels for one or several attributes (skorch-trained).

    Parameters
    ----------
    loss : {'ce', 'corn'}, default='ce'
        ``'ce'``: softmax cross-entropy per attribute (levels unordered). ``'corn'``: CORN
        ordinal regression (Shi et al., 2021): ``k - 1`` conditional "above level j" logits,
        so the model respects the order of ``classes_`` (1 < 2 < 3 < 4). Either way, training
        starts from logits that give each level its (weighted) share of the training labels,
        so a net early stopping halts after an epoch or two predicts about how often each
        level is given rather than the same probability for all.
    classes : array-like, list of array-likes or None, default=None
        The rating levels, in order (lowest first). One array for all attributes or one per
        attribute. Fixing them keeps ``predict_proba``'s shape stable when a training fold
        lacks a level; a label outside them is an error. ``None``: the sorted distinct
        labels seen in ``fit``.
    class_weight : dict, 'balanced', list of them, or None, default=None
        Weights of the rating levels in the loss, multiplying ``sample_weight``: a dict
        ``{level: weight}`` (levels not named weigh 1), ``'balanced'`` (``n / (n_levels ·
        count(level))`` over the observed labels, scikit-learn's
        :func:`~sklearn.utils.class_weight.compute_sample_weight`), or for 2-D ``y`` a list
        with one such entry per attribute (a single entry applies to every attribute).
    calibration : {'auto', 'temperature'} or None, default='auto'
        Post-hoc calibration of the level probabilities on held-out ratings: after training
        (and, with ``user_features``, after every person's deviation is fitted), each
        member's temperature ``T`` (one per attribute) divides that attribute's logits
        (softmax or CORN's conditional logits), chosen to minimize the log-loss of the rows
        training never saw (the early-stopping hold-out's items) under a standard normal
        prior on ``log T``, so that a hold-out of a few ratings cannot push ``T`` to an
        extreme. With ``loss='ce'`` dividing by ``T > 0`` leaves ``predict`` of a single
        member unchanged (CORN's levels multiply conditional probabilities, so its argmax can
        move). Without early stopping there are no held-out rows and ``T`` stays 1.
        ``'auto'``: ``'temperature'`` for a model of people (``user_features``), whose
        deviations, fitted to a few ratings each, leave its stated confidence off in either
        direction (``benchmarks/personal_ratings.py``); None for the shared model, whose early
        stopping already keeps the epoch with the lowest held-out log-loss. ``calibration_``
        says which was used.
    {common_params}

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Levels per attribute; a single array when ``y`` was 1-D (scikit-learn's convention).
    class_weight_ : list of ndarray
        Per attribute, the weight of each level of ``classes_`` (ones without
        ``class_weight``); ``fit_users`` weighs a person's labels with them too.
    calibration_ : str or None
        The calibration used (``calibration`` with ``'auto'`` resolved).
    temperature_ : ndarray of shape (n_ensemble, n_outputs)
        Each member's temperature per attribute (ones without calibration or without
        early stopping); ``predict_proba`` and ``predict`` use the logits divided by it.
    {common_attrs}

    Notes
    -----
    ``predict`` returns the most probable level (the argmax of ``predict_proba``), with the
    same shape as ``y`` (1-D or ``(n_samples, n_outputs)``). ``predict_proba`` returns an
    ``(n_samples, n_classes)`` array for 1-D ``y`` and a list of them, one per attribute,
    otherwise. Rows whose labels are all NaN are kept but contribute nothing to the loss.

    An ensemble (``n_ensemble > 1``) averages its members' probabilities (the mixture of
    the members), not their logits: CORN's conditional logits do not combine linearly, and
    a mixture keeps the members' disagreement as doubt, which is what makes deep ensembles
    better calibrated than their members.

    {midtraining}

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import RatingClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 8))
    >>> y = np.digitize(X[:, 0], [-0.7, 0, 0.7]) + 1          # levels 1..4
    >>> clf = RatingClassifier(hidden_layer_sizes=(16,), loss="corn", max_epochs=30,
    ...                        random_state=0).fit(X, y)
    >>> clf.classes_
    array([1, 2, 3, 4])
    >>> clf.predict_proba(X[:2]).shape
    (2, 4)
    """

    _parameter_constraints: ClassVar[dict] = {
        **SkorchHead._parameter_constraints,
        "loss": [StrOptions({"ce", "corn"})],
        "classes": ["array-like", None],
        "class_weight": [StrOptions({"balanced"}), dict, list, None],
        "calibration": [StrOptions({"auto", "temperature"}), None],
    }
    _weighted_personal = True

    loss: str = "ce"
    classes: Any = None
    class_weight: Any = None
    calibration: str | None = "auto"
    validation_split: str = "items"

    # -- targets -----------------------------------------------------------------------------
    def _given_classes(self, n_outputs: int, one_d: bool) -> list[np.ndarray | None]:
        if self.classes is None:
            return [None] * n_outputs
        c = self.classes
        per_output = (not one_d) and len(c) > 0 and all(np.ndim(ci) == 1 for ci in c)
        if per_output and len(c) != n_outputs:
            raise ValueError(f"classes has {len(c)} entries but y has {n_outputs} attribute columns.")
        given = [np.asarray(ci) for ci in c] if per_output else [np.asarray(c)] * n_outputs
        for g in given:
            if g.ndim != 1 or len(pd.unique(g)) != len(g):
                raise ValueError(f"classes must list distinct rating levels, got {g!r}.")
        return given

    def _encode_y(self, y: Any, n_samples: int, reset: bool = True, sample_weight: Any = None) -> np.ndarray:
        arr = self._ravel_column(target_array(y, type(self).__name__, n_samples))
        one_d = arr.ndim == 1
        cols = [arr] if one_d else [arr[:, j] for j in range(arr.shape[1])]
        names = _column_names(y, len(cols))
        codes = np.full((n_samples, len(cols)), np.nan, dtype=np.float32)
        classes = []
        if reset:
            given_classes = self._given_classes(len(cols), one_d)
        elif len(cols) != self.n_outputs_:
            raise ValueError(
                f"y has {len(cols)} attribute column(s); the head was fitted on {self.n_outputs_}."
            )
        else:
            given_classes = self._classes_list()
        for j, (col, given) in enumerate(zip(cols, given_classes)):
            check_finite_targets(np.asarray(col), f"y ({names[j]})")
            missing = np.asarray(pd.isna(col), dtype=bool)
            observed = col[~missing]
            if len(observed) == 0 and reset:  # fit_users: an attribute these people did not judge
                raise ValueError(f"y {names[j]} has no labels (all missing).")
            if given is None:
                check_classification_targets(observed)
            levels = np.unique(observed) if given is None else given
            index = {v: i for i, v in enumerate(levels.tolist())}
            try:
                codes[~missing, j] = [index[v] for v in observed.tolist()]
            except (KeyError, TypeError):
                bad = sorted({repr(v) for v in observed.tolist() if v not in index})[:5]
                raise ValueError(
                    f"y {names[j]} has label(s) {', '.join(bad)} outside classes {levels.tolist()}."
                ) from None
            if len(levels) < 2:
                raise ValueError(
                    f"y {names[j]} has only 1 class ({levels.tolist()}); need at least 2 classes."
                )
            classes.append(levels)
        if np.isnan(codes).all():
            raise ValueError("y has no labels (all missing).")
        if reset:
            self.n_outputs_ = len(cols)
            self.classes_ = classes[0] if one_d else classes
            self.class_weight_ = self._level_weights(codes)
        return codes

    def _level_weights(self, codes: np.ndarray) -> list[np.ndarray]:
        """Each attribute's weight per level (``class_weight``), from the training labels."""
        spec = self.class_weight
        per_output = isinstance(spec, list)
        if per_output and len(spec) != codes.shape[1]:
            raise ValueError(
                f"class_weight has {len(spec)} entries but y has {codes.shape[1]} attribute columns."
            )
        weights = []
        for j, levels in enumerate(self._classes_list()):
            given = spec[j] if per_output else spec
            if given is None:
                weights.append(np.ones(len(levels)))
                continue
            if isinstance(given, dict):
                unknown = [k for k in given if k not in set(levels.tolist())]
                if unknown:
                    raise ValueError(
                        f"class_weight names level(s) {unknown[:5]} not among classes {levels.tolist()}."
                    )
                given = {i: given.get(level, 1.0) for i, level in enumerate(levels.tolist())}
            observed = codes[~np.isnan(codes[:, j]), j].astype(int)
            level_w = np.ones(len(levels))
            # every row of a level gets that level's weight; levels absent from y keep 1
            level_w[observed] = compute_sample_weight(given, observed)
            weights.append(level_w)
        return weights

    def _entry_weights(self, y_encoded: np.ndarray, sample_weight: Any, X: np.ndarray) -> np.ndarray:
        """``sample_weight`` times each label's level weight (``class_weight_``)."""
        weights = super()._entry_weights(y_encoded, sample_weight, X)
        for j, level_w in enumerate(getattr(self, "class_weight_", [])):
            observed = ~np.isnan(y_encoded[:, j])
            weights[observed, j] *= level_w[y_encoded[observed, j].astype(int)]
        return weights

    def _classes_list(self) -> list[np.ndarray]:
        return (
            [self.classes_] if self.n_outputs_ == 1 and not isinstance(self.classes_, list) else self.classes_
        )

    def _stratify(self, y_encoded: np.ndarray) -> bool:
        if y_encoded.shape[1] != 1 or np.isnan(y_encoded).any():
            return False
        counts = np.bincount(y_encoded[:, 0].astype(int))
        counts = counts[counts > 0]
        n_valid = int(np.ceil(self.validation_fraction * len(y_encoded)))
        n_classes = len(counts)
        return counts.min() >= 2 and n_valid >= n_classes and len(y_encoded) - n_valid >= n_classes

    # -- module ------------------------------------------------------------------------------
    def _n_classes(self) -> list[int]:
        return [len(c) for c in self._classes_list()]

    def _module_params(self, n_features: int) -> tuple[type, dict]:
        return RatingNet, dict(
            n_features=n_features,
            n_classes=self._n_classes(),
            loss=self.loss,
            hidden_layer_sizes=self._hidden(),
            activation=self.activation,
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
        )

    def _criterion(self) -> tuple[type, dict]:
        return MaskedRatingLoss, dict(n_classes=self._n_classes(), loss=self.loss)

    def _start_at_marginal(self, module, targets: np.ndarray) -> None:
        # Each attribute's levels start at their (weighted) shares in the training labels, as
        # JointRanker's thresholds do: a net stopped early on a small hold-out after an epoch
        # or two otherwise says every level is about equally likely, whatever the ratings were.
        n = targets.shape[1] // 2
        bias = [
            marginal_logits(targets[:, j], targets[:, n + j], k, self.loss)
            for j, k in enumerate(self._n_classes())
        ]
        with torch.no_grad():
            module.linear.bias.copy_(torch.from_numpy(np.concatenate(bias)))

    # -- calibration (TemperedMembers) --------------------------------------------------------
    def _blocks(self, logits: np.ndarray) -> list[np.ndarray]:
        """``logits`` split into one block per attribute."""
        sizes = np.cumsum([logit_width(k, self.loss) for k in self._n_classes()])[:-1]
        return np.split(logits, sizes, axis=1)

    def _tempered(self, logits: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        return np.hstack([block / t for block, t in zip(self._blocks(logits), temperature)])

    def _fit_temperatures(self, logits: np.ndarray, codes: np.ndarray) -> list[float]:
        return [
            fit_level_temperature(block, codes[:, j], self.loss)
            for j, block in enumerate(self._blocks(logits))
        ]

    # Unlike the ranker's, the prior strength (``user_alpha='auto'``) is chosen on the untempered
    # held-out loss: judging each strength at its own best temperature let a strength that fits
    # people's few ratings too closely win on a small hold-out by flattening its probabilities
    # (T ≈ 20 at 20 ratings per person in benchmarks/personal_ratings.py).

    # -- prediction --------------------------------------------------------------------------
    def _proba_list(self, X: Any) -> list[np.ndarray]:
        # An ensemble averages its members' probabilities (a mixture of the members), not their
        # logits: CORN's conditional logits do not mix linearly, and the mixture keeps every
        # member's doubt where they disagree.
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        members = [self._member_proba(logits) for logits in self._member_outputs(X)]
        return [np.mean(parts, axis=0) for parts in zip(*members)]

    def _member_proba(self, logits: np.ndarray) -> list[np.ndarray]:
        sizes = [logit_width(k, self.loss) for k in self._n_classes()]
        out = []
        for part in torch.split(torch.from_numpy(logits), sizes, dim=1):
            p = torch.softmax(part, dim=1) if self.loss == "ce" else corn_proba(part)
            p = p.clamp_min(0).numpy()
            out.append(p / p.sum(axis=1, keepdims=True))
        return out

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Probability of each rating level.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or a list of such arrays (one per
            attribute) when ``y`` was 2-D. Rows sum to 1; columns follow ``classes_``.
        """
        probas = self._proba_list(X)
        return probas[0] if not isinstance(self.classes_, list) else probas

    def predict(self, X: Any) -> np.ndarray:
        """Most probable rating level per attribute, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        probas = self._proba_list(X)
        labels = [c[p.argmax(axis=1)] for c, p in zip(self._classes_list(), probas)]
        return labels[0] if not isinstance(self.classes_, list) else np.column_stack(labels)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy over the observed (non-missing) labels, averaged over attributes."""
        if sample_weight is not None or (
            not isinstance(self.classes_, list) and not pd.isna(np.asarray(y)).any()
        ):
            return super().score(X, y, sample_weight=sample_weight)
        pred = np.asarray(self.predict(X), dtype=object).reshape(len(X), -1)
        truth = np.asarray(y, dtype=object).reshape(len(pred), -1)
        scores = []
        for j in range(truth.shape[1]):
            keep = ~np.asarray(pd.isna(truth[:, j]), dtype=bool)
            if keep.any():
                scores.append(np.mean(pred[keep, j] == truth[keep, j]))
        return float(np.mean(scores))


@fill_doc
@estimator_parameters
class RatingRegressor(RegressorMixin, SkorchHead):
    """MLP head predicting continuous ratings for one or several attributes (skorch-trained).

    Each target column is standardized internally (mean 0, standard deviation 1 over its
    observed values) before training and predictions are mapped back, so the default ``lr``
    and the Huber threshold work the same for 0–10 and 0–100 rating scales.

    Parameters
    ----------
    loss : {'mse', 'huber', 'mae'}, default='mse'
        Huber uses δ = 1 on the standardized scale (one standard deviation).
    {common_params}

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        Per-column statistics used to standardize the targets (weighted by
        ``sample_weight`` when given).
    {common_attrs}

    Notes
    -----
    ``predict`` returns the shape of ``y``: 1-D for 1-D ``y``, ``(n_samples, n_outputs)``
    otherwise. NaN in ``y`` marks a missing rating and is left out of the loss.

    An ensemble (``n_ensemble > 1``) predicts the mean of its members' predictions: the
    least-squares combination, equal to ``VotingRegressor`` over the same members. Unlike
    ``sklearn.ensemble.BaggingRegressor`` (each member trained on a bootstrap sample of the
    rows, about 63 % of them), every member trains on all rows but its own held-out items.

    {midtraining}

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import RatingRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 8))
    >>> y = np.column_stack([50 + 10 * X[:, 0], 5 + X[:, 1]])
    >>> y[::7, 1] = np.nan                                      # missing ratings
    >>> reg = RatingRegressor(hidden_layer_sizes=(16,), max_epochs=30, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        **SkorchHead._parameter_constraints,
        "loss": [StrOptions({"mse", "huber", "mae"})],
    }
    _weighted_personal = True

    loss: str = "mse"
    validation_split: str = "items"

    def _encode_y(self, y: Any, n_samples: int, reset: bool = True, sample_weight: Any = None) -> np.ndarray:
        arr = target_array(y, type(self).__name__, n_samples)
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("y must be numeric ratings (NaN for missing) for RatingRegressor.") from None
        check_finite_targets(arr)
        one_d = arr.ndim == 1
        arr = arr.reshape(n_samples, -1)
        if not reset:
            if arr.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {arr.shape[1]} attribute column(s); the head was fitted on {self.n_outputs_}."
                )
            return ((arr - self.y_mean_) / self.y_scale_).astype(np.float32)
        self._single_output = one_d
        names = _column_names(y, arr.shape[1])
        observed = ~np.isnan(arr)
        empty = np.flatnonzero(~observed.any(axis=0))
        if len(empty):
            raise ValueError(f"y {names[empty[0]]} has no ratings (all missing).")
        self.y_mean_, scale = _weighted_stats(arr, sample_weight)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        self.n_outputs_ = arr.shape[1]
        return ((arr - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _module_params(self, n_features: int) -> tuple[type, dict]:
        return RatingNet, dict(
            n_features=n_features,
            n_classes=None,
            n_outputs=self.n_outputs_,
            hidden_layer_sizes=self._hidden(),
            activation=self.activation,
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
        )

    def _criterion(self) -> tuple[type, dict]:
        return MaskedRegressionLoss, dict(loss=self.loss)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted ratings on the original scale, shaped like the training ``y``."""
        pred = self._forward(X) * self.y_scale_ + self.y_mean_
        return pred.ravel() if self._single_output else pred

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² over the observed (non-missing) ratings, averaged over attributes."""
        truth = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        pred = np.asarray(self.predict(X)).reshape(len(truth), -1)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        scores = []
        for j in range(truth.shape[1]):
            keep = ~np.isnan(truth[:, j])
            if keep.any():
                scores.append(
                    r2_score(truth[keep, j], pred[keep, j], sample_weight=None if w is None else w[keep])
                )
        return float(np.mean(scores))
