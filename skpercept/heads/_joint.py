"""JointRatingRanker: one model trained on ratings and pairwise comparisons at once.

Labelling projects often collect both: ratings of single images (1–4) and judgments of which of
two images is more trustworthy. Both say something about one latent score per attribute, so
one model learns that score from both: a shared scorer ``s_j(x) = w_j·h(x) + b_j`` (an MLP
trunk ``h`` and one linear output per attribute), a rating head that cuts ``s_j`` by learned
thresholds (cumulative-link ordinal regression) and a pair head ``σ(κ_j (s_j(a) − s_j(b)))``.

Input layout (:func:`join_labels` builds it): the pair layout of :mod:`skpercept.preprocessing`,
``X = [left | right]``, where a *rating row* is ``[item | NaN …]`` (the right half all NaN)
and rates its left item, and ``y`` holds the rating level on rating rows and the preference
(1 = left preferred, 0 = right, soft values in between) on pair rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._compat import Interval, StrOptions
from skpercept._holdout import identical_rows, indicator_columns
from skpercept._utils import estimator_parameters, symmetric_expit
from skpercept.heads._joint_net import JointLoss, JointNet, joint_output
from skpercept.heads.base import SkorchHead, check_finite_targets, fill_doc, target_array
from skpercept.heads.calibration import TemperedMembers, fit_level_temperature, fit_temperature
from skpercept.personal import pair_context_columns


def join_labels(X_rated: Any, y_rated: Any, X_pairs: Any, y_pairs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Stack rating rows and pair rows into the input layout of :class:`JointRatingRanker`.

    Parameters
    ----------
    X_rated : array-like of shape (n_rated, n_half)
        Features of each rated item (plus context such as a user one-hot).
    y_rated : array-like of shape (n_rated,) or (n_rated, n_outputs)
        Rating levels, NaN for missing.
    X_pairs : array-like of shape (n_pairs, 2 * n_half)
        Pair features ``[left | right]`` (e.g. from :class:`~skpercept.preprocessing.PairFeatures`).
    y_pairs : array-like of shape (n_pairs,) or (n_pairs, n_outputs)
        1 where the left item is preferred, 0 where the right is, values in between for soft
        labels, NaN for missing.

    Returns
    -------
    X : ndarray of shape (n_rated + n_pairs, 2 * n_half)
        Rating rows first, as ``[item | NaN]``, then the pairs.
    y : ndarray of shape (n_rated + n_pairs,) or (n_rated + n_pairs, n_outputs)
        Float when the levels are numbers, object otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import join_labels
    >>> X, y = join_labels([[0.5, 1.0]], [3], [[0.5, 1.0, 0.2, 0.1]], [1])
    >>> X
    array([[0.5, 1. , nan, nan],
           [0.5, 1. , 0.2, 0.1]])
    >>> y
    array([3., 1.])
    """
    X_rated, X_pairs = _dense(X_rated), _dense(X_pairs)
    if X_pairs.shape[1] != 2 * X_rated.shape[1]:
        raise ValueError(
            f"X_pairs must have twice the columns of X_rated ([left | right] halves); got "
            f"{X_pairs.shape[1]} and {X_rated.shape[1]}."
        )
    X = np.vstack([rating_rows(X_rated), X_pairs])
    y_rated, y_pairs = np.asarray(y_rated), np.asarray(y_pairs)
    if y_rated.ndim != y_pairs.ndim or y_rated.shape[1:] != y_pairs.shape[1:]:
        raise ValueError(f"y_rated {y_rated.shape} and y_pairs {y_pairs.shape} must have the same columns.")
    y = np.concatenate([y_rated.astype(object), y_pairs.astype(object)])
    try:
        return X, y.astype(np.float64)
    except (TypeError, ValueError):
        return X, y


def rating_rows(X_items: Any) -> np.ndarray:
    """Items ``(n, n_half)`` as rating rows ``[item | NaN]`` of the joint layout.

    Examples
    --------
    >>> from skpercept.heads import rating_rows
    >>> rating_rows([[1.0, 2.0]])
    array([[ 1.,  2., nan, nan]])
    """
    X_items = _dense(X_items)
    return np.hstack([X_items, np.full(X_items.shape, np.nan)])


def _dense(X: Any) -> np.ndarray:
    X = X.toarray() if hasattr(X, "toarray") else X
    X = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array of features, got shape {X.shape}.")
    return X


# -- the estimator ----------------------------------------------------------------------------
_USER_PRIOR_DOC = """    user_prior : {'isotropic', 'learned'}, default='isotropic'
        The prior over a person's parameters ``θ_u``: ``'isotropic'``, the ``user_alpha``
        penalty above; ``'learned'``, the empirical-Bayes prior of the rating and pair heads
        (see :class:`~skpercept.heads.PairwiseRanker`), fitted on the ratings and the
        comparisons together."""


@fill_doc(overrides={"user_prior": _USER_PRIOR_DOC})
@estimator_parameters
class JointRatingRanker(TemperedMembers, SkorchHead):
    """One scorer per attribute trained on ratings and pairwise comparisons together (skorch-trained).

    Each attribute ``j`` has one latent score ``s_j(x) = w_j·h(x) + b_j`` of an item (an MLP
    trunk ``h`` shared by the attributes). Both label types are read from it:

    - a rating of ``x`` is ordinal: ``P(rating > level k) = σ(s_j(x) − θ_jk)`` with learned
      increasing thresholds ``θ_j`` (cumulative-link, "proportional odds" model);
    - a comparison is Bradley–Terry: ``P(a ≻ b) = σ(κ_j (s_j(a) − s_j(b)))``, where the learned
      ``κ_j > 0`` lets the two label types differ in noise (a consensus comparison is surer
      than one person's rating).

    The rating head reads nothing but ``s_j`` on purpose: a head that also saw the trunk (CORN
    or cross-entropy on ``h``) could fit the ratings through directions the pair head never
    sees, and the two label types would no longer train one score. Predicted level
    probabilities are monotone in the score, and ranking items by ``score_items`` agrees with
    both heads.

    **Input layout.** ``X`` is the pair layout ``[left | right]`` of :mod:`skpercept.preprocessing` (two halves of equal
    width). A **rating row** has its right half all NaN and rates its left item; a **pair
    row** has both halves. ``y`` (1-D, or one column per attribute; NaN = missing) holds the
    rating level on rating rows and the preference on pair rows (1 = left preferred, 0 =
    right, soft values in between). :func:`join_labels` stacks the two tables,
    :func:`rating_rows` lays out items to rate.

    Parameters
    ----------
    classes : array-like, list of array-likes or None, default=None
        The rating levels, lowest first: one array for all attributes or one per attribute.
        ``None``: the sorted distinct labels of the rating rows seen in ``fit``. Needed when
        ``fit`` gets no rating row (the thresholds then keep their initial spacing).
    pair_weight : float > 0, default=1.0
        Weight of one pair label in the loss relative to one rating label (it multiplies
        ``fit``'s ``sample_weight`` on pair rows).
    calibration : {'auto', 'temperature'} or None, default='auto'
        Post-hoc calibration on held-out judgments: after training (and, with
        ``user_features``, after every person's parameters are fitted), each member gets two
        temperatures per attribute, one dividing the pair logits (fitted on the held-out pair
        rows, as :class:`PairwiseRanker` does) and one dividing the cumulative rating logits
        (fitted on the held-out rating rows under a standard normal prior on ``log T``, as
        :class:`RatingClassifier` does). The held-out rows are those training never saw (the
        early-stopping hold-out's items); without early stopping ``T`` stays 1. Dividing by
        ``T > 0`` keeps pair predictions antisymmetric, the order of ``score_items`` and the
        order of the levels' thresholds. ``'auto'``: ``'temperature'`` for a model of people
        (``user_features``), None for the shared model. ``calibration_`` says which was used.
    {common_params}

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Rating levels per attribute; a single array when ``y`` was 1-D.
    n_half_features_ : int
        Width of one half.
    user_features_ : ndarray of int
        Indices of the user columns within a half (empty without ``user_features``).
    n_user_features_ : int
    pair_scale_ : ndarray of shape (n_outputs,)
        ``κ_j`` of the first member.
    thresholds_ : list of ndarray
        ``θ_j`` per attribute of the first member (on the scale of ``s_j``).
    calibration_ : str or None
        The calibration used (``calibration`` with ``'auto'`` resolved).
    temperature_ : ndarray of shape (n_ensemble, 2, n_outputs)
        Each member's temperatures per attribute: row 0 divides the pair logits (and
        ``score_items``), row 1 the rating logits. Ones without calibration or without early
        stopping.
    {common_attrs}

    Notes
    -----
    ``predict`` answers every row in ``y``'s terms: the most probable level on rating rows,
    1/0 (left/right preferred) on pair rows. ``predict_rating_proba`` rates the left item of
    any row (or items given as one half), ``predict_pair_proba`` needs pair rows. Early
    stopping holds out items across both label types (``validation_split='items'``): a held-out
    image has neither its ratings nor its comparisons in training. ``groups`` may give the
    item ids as two columns (left, right); the right id of a rating row is ignored. An
    ensemble averages its members' level probabilities and their pair logits.

    Personal taste (``user_features``, read from the left half of a rating row, the same
    columns in both halves of a pair row; ``'auto'``: the context columns of the pair rows):
    the trunk sees the item columns only, a person ``u`` scores ``s_j(x, u) = h(x)·(w_j + V_j
    u) + b_j`` for both label types, and rates with an offset and a scale,
    ``P(rating > k) = σ(exp(a_j·u) (s_j(x, u) + c_j·u − θ_jk))`` (lenient, harsh and decisive
    raters). ``u = 0``, an unknown person, gives exactly the shared model. ``fit_users``
    fits the people in its rows alone (their ``V_j u``, ``c_j·u`` and ``a_j·u``, from their
    ratings and comparisons together) with the shared part frozen, under the isotropic prior
    that ``fit`` used (``user_prior``); new
    people come as person columns appended at the end of each half. Nobody else's
    predictions change.

    {midtraining}

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import JointRatingRanker, join_labels, rating_rows
    >>> rng = np.random.RandomState(0)
    >>> items = rng.normal(size=(60, 5))
    >>> levels = np.digitize(items[:, 0], [-0.7, 0, 0.7]) + 1            # ratings 1..4
    >>> a, b = rng.randint(0, 60, size=(2, 200))
    >>> X, y = join_labels(items, levels, np.hstack([items[a], items[b]]),
    ...                    (items[a, 0] > items[b, 0]).astype(float))
    >>> model = JointRatingRanker(hidden_layer_sizes=(16,), max_epochs=30, random_state=0).fit(X, y)
    >>> model.classes_
    array([1, 2, 3, 4])
    >>> model.predict_rating_proba(rating_rows(items[:2])).shape
    (2, 4)
    >>> model.predict_pair_proba(X[-2:]).shape
    (2, 2)
    >>> model.score_items(items).shape
    (60,)
    """

    _units: ClassVar[int] = 2  # a person looks at one half of a row at a time
    # sample weights (times pair_weight) and the personal prior go through the base's targets
    _weighted_personal: ClassVar[bool] = True

    _parameter_constraints: ClassVar[dict] = {
        **SkorchHead._parameter_constraints,
        "classes": ["array-like", None],
        "pair_weight": [Interval(numbers.Real, 0, None, closed="neither")],
        "calibration": [StrOptions({"auto", "temperature"}), None],
    }

    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {
        **SkorchHead._skorch_owners,
        "criterion": ("pair_weight",),
    }

    classes: Any = None
    pair_weight: float = 1.0
    calibration: str | None = "auto"
    user_prior: str = "isotropic"

    # -- input ---------------------------------------------------------------------------------
    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        """Float32 ``[left | right]`` rows; NaN only as a whole right half (a rating row)."""
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=False,
            dtype=(np.float32, np.float64),
            ensure_all_finite=False,
            ensure_min_samples=1,
        )
        rated = _rating_rows_of(X)
        if reset:
            self.n_half_features_ = X.shape[1] // 2
            self._resolve_users(X)
            self._fit_rated = rated
        return np.ascontiguousarray(X, dtype=np.float32)

    def _widen(self, X: Any) -> np.ndarray:
        """``fit_users``' input (new person columns at the end of each half); its rating rows
        are kept for ``_encode_y``."""
        X = super()._widen(X)
        self._fit_rated = _rating_rows_of(X)
        return X

    def _user_blocks(self, X: np.ndarray) -> list[np.ndarray]:
        """The person block of each half; a rating row's (NaN) right half has its left one."""
        left, right = super()._user_blocks(X)
        rated = np.isnan(X[:, X.shape[1] // 2 :]).all(axis=1)
        return [left, np.where(rated[:, None], left, right)]

    def _auto_user_features(self, X: np.ndarray, names: np.ndarray | None) -> np.ndarray:
        """``'auto'``: the context columns of the pair rows (equal in both halves, not constant)."""
        pairs = X[~np.isnan(X[:, X.shape[1] // 2 :]).all(axis=1)]
        if not len(pairs):
            raise ValueError("user_features='auto' reads the person's columns off pair rows; X has none.")
        return pair_context_columns(pairs)

    def _item_columns(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.n_half_features_), self.user_features_)

    def _row_items(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """Item codes ``(n, 2)`` in one code space for both label types (a rating row's item twice).

        Equal item columns (user columns left out) make one item; among them, the columns
        equal in both halves of every pair row are context, and indicator columns count only
        when nothing else tells items apart (the rule of the other heads' item hold-out).
        """
        half = self.n_half_features_
        rated = np.isnan(X[:, half:]).all(axis=1)
        left, right = X[:, :half], np.where(rated[:, None], X[:, :half], X[:, half:])
        own = np.zeros(half, dtype=bool)
        own[self._item_columns()] = True
        if (~rated).any():
            context = np.all(left[~rated] == right[~rated], axis=0)
            if (own & ~context).any():
                own &= ~context
        stacked = np.vstack([left, right])
        indicators = indicator_columns(stacked)
        key = own & ~indicators if (own & ~indicators).any() else own
        codes = identical_rows(stacked[:, key]).reshape(2, -1).T
        return codes, bool((own & ~indicators).any())

    def _validation(self, X: np.ndarray, y_encoded: np.ndarray, groups: Any, seed: int):
        if groups is not None:
            groups = self._group_codes(X, groups)
        return super()._validation(X, y_encoded, groups, seed)

    def _group_codes(self, X: np.ndarray, groups: Any) -> np.ndarray:
        arr = groups.to_numpy() if hasattr(groups, "to_numpy") else np.asarray(groups, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            return arr  # row keys, checked by the base
        if len(arr) != len(X):
            raise ValueError(f"groups has {len(arr)} rows but X has {len(X)}.")
        arr = arr.astype(object, copy=True)
        rated = np.isnan(X[:, self.n_half_features_ :]).all(axis=1)
        arr[rated, 1] = arr[rated, 0]  # a rating row's right id is ignored
        return arr

    # -- targets -------------------------------------------------------------------------------
    def _given_classes(self, n_outputs: int, one_d: bool) -> list[np.ndarray | None]:
        if self.classes is None:
            return [None] * n_outputs
        c = self.classes
        per_output = (not one_d) and len(c) > 0 and all(np.ndim(ci) == 1 for ci in c)
        if per_output and len(c) != n_outputs:
            raise ValueError(f"classes has {len(c)} entries but y has {n_outputs} attribute columns.")
        given = [np.asarray(ci) for ci in c] if per_output else [np.asarray(c)] * n_outputs
        for g in given:
            if g.ndim != 1 or len(g) < 2 or len(pd.unique(g)) != len(g):
                raise ValueError(f"classes must list at least two distinct rating levels, got {g!r}.")
        return given

    def _encode_y(self, y: Any, n_samples: int, sample_weight: Any = None, reset: bool = True) -> np.ndarray:
        """Codes of ``y``: the preference on pair rows, the level's index on rating rows (the
        rows' kinds come from the ``X`` just validated). ``reset``: learn ``classes_`` and the
        initial thresholds; else (``fit_users``) read the levels off the fitted ``classes_``."""
        arr = self._ravel_column(target_array(y, type(self).__name__, n_samples))
        one_d = arr.ndim == 1
        arr = arr.reshape(n_samples, -1)
        rated = self.__dict__.pop("_fit_rated")  # needed for the targets only
        if reset:
            given_classes = self._given_classes(arr.shape[1], one_d)
        elif arr.shape[1] != self.n_outputs_ or one_d != (not isinstance(self.classes_, list)):
            raise ValueError(
                f"y has {arr.shape[1]} attribute column(s){' (1-D)' if one_d else ''}; this "
                f"{type(self).__name__} was fitted on y of shape (n, {self.n_outputs_})"
                f"{'' if isinstance(self.classes_, list) else ' or (n,)'}."
            )
        else:
            given_classes = self._classes_list()
        # the thresholds start at the weighted level shares: weights act as repeated rows
        weights = np.ones(n_samples)
        if sample_weight is not None and np.shape(sample_weight) == (n_samples,):
            weights = np.asarray(sample_weight, dtype=np.float64)  # a bad one is refused later, by name
        codes = np.full(arr.shape, np.nan, dtype=np.float32)
        classes, thresholds = [], []
        for j, given in enumerate(given_classes):
            col = arr[:, j]
            if np.issubdtype(col.dtype, np.number):
                check_finite_targets(col.astype(np.float64), f"y column {j}")
            seen = ~np.asarray(pd.isna(col), dtype=bool)
            codes[seen & ~rated, j] = self._pair_labels(col[seen & ~rated], j)
            levels, codes[seen & rated, j] = self._levels(col[seen & rated], given, j)
            classes.append(levels)
            thresholds.append(_initial_thresholds(codes[seen & rated, j], len(levels), weights[seen & rated]))
        if not np.isfinite(codes).any():
            raise ValueError("y has no labels (all missing).")
        if not reset:
            return codes
        self.n_outputs_ = arr.shape[1]
        self.classes_ = classes[0] if one_d else classes
        self._init_thresholds = thresholds
        return codes

    @staticmethod
    def _pair_labels(values: np.ndarray, j: int) -> np.ndarray:
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"y column {j}: a pair row's label must be a number in [0, 1] (1 = left preferred)."
            ) from None
        check_finite_targets(values, f"y column {j}")
        if len(values) and (values.min() < 0 or values.max() > 1):
            bad = values[(values < 0) | (values > 1)][:5].tolist()
            raise ValueError(
                f"y column {j}: pair rows need labels in [0, 1] (1 = left preferred, 0 = right, 0.5 "
                f"= tie); got {bad}. Rating levels go on rating rows (right half NaN)."
            )
        return values

    def _levels(self, observed: np.ndarray, given: np.ndarray | None, j: int) -> tuple[np.ndarray, list]:
        if given is None:
            if not len(observed):
                raise ValueError(
                    f"y column {j} has no rating (no rating row, i.e. a row whose right half is NaN, "
                    "has a label); pass classes= to fit on comparisons alone, or use PairwiseRanker."
                )
            check_classification_targets(observed)
            given = np.unique(observed)
            if given.dtype.kind == "f" and np.all(given == np.round(given)):
                # a float y (levels beside pair labels) holds whole levels: keep them ints
                given, observed = given.astype(np.int64), observed.astype(np.int64)
            if len(given) < 2:
                raise ValueError(f"y column {j} has only 1 rating level ({given.tolist()}); need at least 2.")
        index = {v: i for i, v in enumerate(given.tolist())}
        try:
            return given, [index[v] for v in observed.tolist()]
        except (KeyError, TypeError):
            bad = sorted({repr(v) for v in observed.tolist() if v not in index})[:5]
            raise ValueError(
                f"y column {j} has rating(s) {', '.join(bad)} outside classes {given.tolist()}."
            ) from None

    def _classes_list(self) -> list[np.ndarray]:
        return self.classes_ if isinstance(self.classes_, list) else [self.classes_]

    # -- module --------------------------------------------------------------------------------
    def _module_params(self, n_features: int) -> tuple[type, dict]:
        return JointNet, dict(
            n_half=self.n_half_features_,
            item_columns=self._item_columns().tolist(),
            n_classes=[len(c) for c in self._classes_list()],
            init_thresholds=self._init_thresholds,
            hidden_layer_sizes=self._hidden(),
            activation=self.activation,
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
        )

    def _criterion(self) -> tuple[type, dict]:
        return JointLoss, dict(n_classes=[len(c) for c in self._classes_list()])

    def _entry_weights(self, y_encoded: np.ndarray, sample_weight: Any, X: np.ndarray) -> np.ndarray:
        """``sample_weight`` per label, times ``pair_weight`` on pair rows."""
        weights = super()._entry_weights(y_encoded, sample_weight, X)
        rated = np.isnan(X[:, self.n_half_features_ :]).all(axis=1)
        return np.where(rated[:, None], weights, weights * float(self.pair_weight)).astype(np.float32)

    def _build_net(self, n_features, train_split, callbacks, device=None, generator=None):
        net = super()._build_net(n_features, train_split, callbacks, device, generator)
        # user_alpha alone shrinks the personal parameters; the thresholds and κ are not weights
        free = ("taste", "offset", "log_scale", "first", "gaps.*", "log_pair_scale")
        return net.set_params(optimizer__param_groups=[(name, {"weight_decay": 0.0}) for name in free])

    def _member_trained(self, member: int, net: Any, X_valid, y_valid) -> None:
        super()._member_trained(member, net, X_valid, y_valid)
        if member == 0:
            module = net.module_
            with torch.no_grad():
                self.pair_scale_ = torch.exp(module.log_pair_scale).cpu().numpy().astype(np.float64)
                self.thresholds_ = [
                    module.thresholds(j).cpu().numpy().astype(np.float64) for j in range(self.n_outputs_)
                ]

    # -- calibration (TemperedMembers) ----------------------------------------------------------
    def _temperature_shape(self) -> tuple[int, ...]:
        return (2, self.n_outputs_)

    def _rating_blocks(self, out: np.ndarray) -> list[np.ndarray]:
        """The cumulative rating logits of ``out``, one block per attribute."""
        sizes = np.cumsum([len(c) - 1 for c in self._classes_list()])[:-1]
        return np.split(out[:, self.n_outputs_ : -1], sizes, axis=1)

    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        pair, rating = temperature
        blocks = [z / t for z, t in zip(self._rating_blocks(out), rating)]
        return np.hstack([out[:, : self.n_outputs_] / pair, *blocks, out[:, -1:]])

    def _fit_temperatures(self, out: np.ndarray, codes: np.ndarray) -> np.ndarray:
        rated = out[:, -1] > 0.5
        d = out[:, : self.n_outputs_]
        pair = [fit_temperature(d[~rated, j], codes[~rated, j]) for j in range(self.n_outputs_)]
        rating = [
            fit_level_temperature(z[rated], codes[rated, j], "cumulative")
            for j, z in enumerate(self._rating_blocks(out))
        ]
        return np.array([pair, rating])

    # -- prediction ----------------------------------------------------------------------------
    def _outputs(self, X: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """Each member's raw outputs for validated ``X``, and which rows are rating rows."""
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        return self._member_outputs(X), np.isnan(X[:, self.n_half_features_ :]).all(axis=1)

    def _level_proba(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        """Level probabilities per attribute, averaged over the members."""
        per_member = []
        for out in outputs:
            member = []
            for z in self._rating_blocks(out):
                above = expit(z)  # P(level > k), non-increasing in k
                p = np.hstack([np.ones((len(z), 1)), above]) - np.hstack([above, np.zeros((len(z), 1))])
                p = np.clip(p, 0, None)
                member.append(p / p.sum(axis=1, keepdims=True))
            per_member.append(member)
        return [np.mean(parts, axis=0) for parts in zip(*per_member)]

    def _as_rows(self, X: Any) -> Any:
        width = X.shape[1] if hasattr(X, "shape") and len(X.shape) == 2 else None
        return rating_rows(X) if width == getattr(self, "n_half_features_", None) else X

    def predict_rating_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Probability of each rating level of the left item of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in) or (n_samples, n_half_features)
            Rows of the joint layout (rating rows ``[item | NaN]``; a pair row rates its left
            item), or items laid out as one half.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_levels), or a list of them (one per attribute)
            when ``y`` was 2-D. Columns follow ``classes_``; rows sum to 1.
        """
        outputs, _ = self._outputs(self._as_rows(X))
        probas = self._level_proba(outputs)
        return probas if isinstance(self.classes_, list) else probas[0]

    def predict_pair_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """``[P(right ≻ left), P(left ≻ right)]`` of pair rows (a list per attribute for 2-D ``y``).

        Swapping the halves gives exactly the complementary probabilities.
        """
        outputs, rated = self._outputs(X)
        if rated.any():
            raise ValueError(
                f"predict_pair_proba needs pair rows; row {int(np.flatnonzero(rated)[0])} is a rating "
                "row (right half NaN): use predict_rating_proba."
            )
        p = symmetric_expit(np.mean([out[:, : self.n_outputs_] for out in outputs], axis=0))
        probas = [np.column_stack([1.0 - p[:, j], p[:, j]]) for j in range(self.n_outputs_)]
        return probas if isinstance(self.classes_, list) else probas[0]

    def predict(self, X: Any) -> np.ndarray:
        """Per row, ``y``'s kind of answer: the most probable level on rating rows and 1 (left
        preferred) or 0 on pair rows; shape ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        outputs, rated = self._outputs(X)
        d = np.mean([out[:, : self.n_outputs_] for out in outputs], axis=0)
        columns = []
        for j, (levels, p) in enumerate(zip(self._classes_list(), self._level_proba(outputs))):
            column = np.where(rated, levels[p.argmax(axis=1)].astype(object), (d[:, j] > 0).astype(int))
            columns.append(column)
        pred = np.column_stack(columns)
        numeric = all(np.issubdtype(np.asarray(c).dtype, np.number) for c in self._classes_list())
        pred = pred.astype(np.result_type(*self._classes_list(), np.int64)) if numeric else pred
        return pred if isinstance(self.classes_, list) else pred[:, 0]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean credit over the observed labels (weighted by ``sample_weight``): a rating row
        earns 1 for its exact level, a pair row the pairwise accuracy (``y`` if left is
        predicted, ``1 − y`` if right: soft labels earn partial credit)."""
        _, rated = self._outputs(X)
        truth = target_array(y, type(self).__name__, len(rated)).reshape(len(rated), -1)
        pred = np.asarray(self.predict(X), dtype=object).reshape(truth.shape)
        weights = (
            np.ones(len(rated)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        )
        credit = np.zeros(truth.shape)
        for j in range(truth.shape[1]):
            t = np.where(rated, 0.0, pd.to_numeric(pd.Series(truth[:, j]), errors="coerce").to_numpy())
            left = pred[:, j].astype(object) == 1
            credit[:, j] = np.where(rated, pred[:, j] == truth[:, j], np.where(left, t, 1.0 - t))
        seen = ~np.asarray(pd.isna(truth), dtype=bool) * weights[:, None]
        if not seen.sum():
            raise ValueError("y has no labels to score (all missing).")
        return float((np.nan_to_num(credit) * seen).sum() / seen.sum())

    def score_items(self, X_half: Any) -> np.ndarray:
        """Latent score of each item on the pair-logit scale, ``κ_j s_j(x)``: rank an image set.

        ``σ(score_items(a) − score_items(b))`` equals ``predict_pair_proba`` of ``[a | b]``
        (for an ensemble, the mean member score); a higher score also means higher levels are
        more probable. With user columns in ``X_half``, that person's scores.

        Parameters
        ----------
        X_half : array-like of shape (n_items, n_half_features)

        Returns
        -------
        scores : ndarray of shape (n_items,) or (n_items, n_outputs)
        """
        check_is_fitted(self, "net_")
        X_half = _dense(X_half).astype(np.float32)
        if X_half.shape[1] != self.n_half_features_ or not np.isfinite(X_half).all():
            raise ValueError(
                f"score_items expects finite items laid out as one half, shape (n_items, "
                f"{self.n_half_features_}); got {X_half.shape}."
            )
        members = zip(self._members(), self._temperatures())
        scores = np.mean([self._item_scores(net, X_half) / t[0] for net, t in members], axis=0)
        return scores if isinstance(self.classes_, list) else scores[:, 0]

    def _item_scores(self, net: Any, X_half: np.ndarray) -> np.ndarray:
        module = net.module_
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = [
                    module.item_scores(
                        torch.from_numpy(X_half[i : i + self._predict_batch_size()]).to(net.device)
                    )
                    .cpu()
                    .numpy()
                    for i in range(0, len(X_half), self._predict_batch_size())
                ]
        finally:
            module.train(was_training)
        return np.concatenate(out).astype(np.float64)

    # -- the personal read-outs of the other heads, for this module -----------------------------
    @contextmanager
    def _personal_output(self, net: Any, X: np.ndarray) -> Iterator[Callable[[list], torch.Tensor]]:
        parts = net.module_.frozen_parts(torch.from_numpy(X).to(net.device))
        yield lambda per_row: joint_output(*parts, *per_row)

    def _personal_parameters(self, net: Any) -> list[torch.nn.Parameter]:
        module = net.module_
        return [module.taste, module.offset, module.log_scale]

    def _personal_blocks(self, net: Any) -> list[torch.Tensor]:
        """``V`` (person first: ``(n_users, d, n_outputs)``), the offsets ``c`` and log-scales ``a``."""
        module = net.module_
        return [module.taste.detach().permute(2, 0, 1), module.offset.detach(), module.log_scale.detach()]

    def item_representation(self, X: Any) -> np.ndarray:
        """The trunk's representation ``h(x)`` (first member) of items laid out as one half."""
        X = self._unit_array(X, "item_representation")
        module = self.net_.module_.eval()
        with torch.no_grad():
            return (
                module.trunk(torch.from_numpy(X[:, self._item_columns()]).to(self.net_.device)).cpu().numpy()
            )

    def user_deviation(self, X: Any) -> np.ndarray:
        """Each row's scorer weights ``w + V u``, shape ``(n, d, n_outputs)`` (first member), for
        rows laid out as one half; only the person columns are read."""
        X = self._unit_array(X, "user_deviation")
        module = self.net_.module_
        w = module.head.weight.detach().T.cpu().double().numpy()[None]
        if not self.n_user_features_:
            return np.repeat(w, len(X), axis=0)
        V = module.taste.detach().cpu().double().numpy()
        return w + np.einsum("djm,nm->ndj", V, X[:, self.user_features_].astype(np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = True
        return tags


def _rating_rows_of(X: np.ndarray) -> np.ndarray:
    """Which rows of the joint layout are rating rows, checking the layout (NaN only as a
    whole right half, no infinity)."""
    if X.shape[1] % 2:
        raise ValueError(
            f"X must have an even number of columns ([left | right] halves of equal width; a "
            f"rating row's right half is NaN); got {X.shape[1]}. Build it with join_labels."
        )
    half = X.shape[1] // 2
    if np.isinf(X).any():
        raise ValueError("X contains infinity; only a rating row's whole right half may be NaN.")
    left_nan, right_nan = np.isnan(X[:, :half]), np.isnan(X[:, half:])
    bad = left_nan.any(axis=1) | (right_nan.any(axis=1) & ~right_nan.all(axis=1))
    if bad.any():
        raise ValueError(
            f"X row {int(np.flatnonzero(bad)[0])} has NaN outside a whole right half; a rating "
            "row is [item | NaN ...] (all NaN on the right), a pair row has no NaN."
        )
    return right_nan.all(axis=1)


def _initial_thresholds(codes: np.ndarray, n_levels: int, weights: np.ndarray) -> list[float]:
    """Cut points at the logits of the rating rows' cumulative level shares (evenly spaced
    logistic quantiles without ratings), at least 0.1 apart: training starts at the marginal."""
    if len(codes):
        counts = np.bincount(codes.astype(int), weights=weights, minlength=n_levels)[:n_levels] + 0.5
        share = np.cumsum(counts)[:-1] / counts.sum()
    else:
        share = np.arange(1, n_levels) / n_levels
    share = np.clip(share, 0.02, 0.98)
    cuts = np.log(share / (1 - share))
    for k in range(1, len(cuts)):
        cuts[k] = max(cuts[k], cuts[k - 1] + 0.1)
    return cuts.tolist()
