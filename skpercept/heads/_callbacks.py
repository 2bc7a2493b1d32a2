"""skorch's callbacks and nested parameters on skpercept's skorch-trained estimators.

The estimators build a skorch net in ``fit`` whose targets are encoded (level codes, standardized
ratings, followed by per-label weights) and whose outputs are raw (logits, standardized values),
so skorch's scoring callbacks, left alone, would score raw outputs against encoded targets.
:class:`EstimatorScoring` routes a user's ``EpochScoring`` / ``BatchScoring`` to the estimator
instead: the scorer sees the estimator as it predicts at that moment and the rows' targets as
they were given to ``fit``. :func:`nested_params` and :func:`set_nested_params` give the
estimators skorch's nested parameter names (``callbacks__<name>__<param>``, ``optimizer__lr``)
where they mean something, and say which parameter to use where they do not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer
from sklearn.metrics._scorer import _BaseScorer
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from skorch.callbacks import BatchScoring, Callback
from skorch.callbacks.scoring import ScoringBase

__all__ = [
    "EstimatorScoring",
    "FitRows",
    "named_callbacks",
    "nested_params",
    "refuse_scoring",
    "route_scoring",
    "set_nested_params",
]

#: The callbacks a skpercept estimator's net has besides the user's, and what sets them.
BUILT_IN_CALLBACKS = {
    "early_stopping": "it is built from early_stopping, patience and validation_fraction: set those",
    "epoch_timer": "it is one of skorch's default callbacks, which the estimator does not expose",
    "train_loss": "it is one of skorch's default callbacks, which the estimator does not expose",
    "valid_loss": "it is one of skorch's default callbacks, which the estimator does not expose",
    "print_log": "it is skorch's default log: verbose switches it on",
}

#: The skorch components whose nested parameters (``<component>__<param>``) are recognized.
SKORCH_COMPONENTS = ("module", "criterion", "optimizer", "iterator_train", "iterator_valid", "dataset")


def named_callbacks(callbacks: list | None) -> list[tuple[str, Any]]:
    """The user's ``callbacks`` as ``(name, callback)``, named as the net names them: a tuple
    keeps its name, a bare callback is ``user_callback_<i>_<ClassName>``."""
    if not isinstance(callbacks, (list, tuple)):
        return []  # not a list: the parameter's validation says so in fit
    return [
        cb if isinstance(cb, tuple) else (f"user_callback_{i}_{type(cb).__name__}", cb)
        for i, cb in enumerate(callbacks)
    ]


# -- nested parameters ---------------------------------------------------------------------------
def nested_params(callbacks: list | None) -> dict[str, Any]:
    """``get_params(deep=True)``'s entries for the callbacks, as a skorch net has them:
    ``callbacks__<name>`` and ``callbacks__<name>__<param>``."""
    params: dict[str, Any] = {}
    for name, cb in named_callbacks(callbacks):
        params[f"callbacks__{name}"] = cb
        if hasattr(cb, "get_params") and not isinstance(cb, type):
            params.update({f"callbacks__{name}__{k}": v for k, v in cb.get_params().items()})
    return params


def set_nested_params(estimator: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Apply the skorch-style nested entries of ``params`` to ``estimator``; return the rest.

    ``callbacks__<name>__<param>`` sets that parameter of the named callback (in place, as
    ``Pipeline.set_params`` sets a step's), ``callbacks__<name>`` replaces the callback (None
    removes it). A ``<component>__<param>`` the estimator declares in ``_skorch_aliases`` sets
    the estimator's own parameter; any other nested name under a skorch component is a
    ValueError naming the parameters that control it. Call it before ``BaseEstimator.set_params``
    with the rest: entries nested under a callback are applied after ``callbacks`` itself.
    """
    rest: dict[str, Any] = {}
    callback_params: dict[str, Any] = {}
    for key, value in params.items():
        component, _, sub = key.partition("__")
        if not sub:
            rest[key] = value
        elif component == "callbacks":
            callback_params[sub] = value
        elif component in SKORCH_COMPONENTS:
            own = _own_parameter(estimator, key)
            if own in params and params[own] != value:
                raise ValueError(f"{key}={value!r} and {own}={params[own]!r} set one parameter twice.")
            rest[own] = value
        else:
            rest[key] = value
    if callback_params:
        rest["callbacks"] = _set_callback_params(
            estimator, rest.get("callbacks", estimator.callbacks), callback_params
        )
    return rest


def _own_parameter(estimator: Any, key: str) -> str:
    """The estimator's parameter that the skorch name ``key`` stands for, or a ValueError."""
    aliases = getattr(estimator, "_skorch_aliases", {})
    if key in aliases:
        return aliases[key]
    name = type(estimator).__name__
    component, _, sub = key.partition("__")
    owners = getattr(estimator, "_skorch_owners", {}).get(component, ())
    if sub.split("__")[0] in owners:
        instead = f"set {sub.split('__')[0]!r} instead"
    elif owners:
        names = [repr(p) for p in owners]
        instead = (
            "set " + (f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]) + " instead"
        )
    else:
        instead = f"its {component} has no parameters to set"
    accepted = ", ".join(sorted(aliases))
    raise ValueError(
        f"{name} builds its skorch {component} in fit from its own parameters, so it takes no "
        f"{key!r}: {instead}." + (f" (Of skorch's nested names it takes {accepted}.)" if accepted else "")
    )


def _set_callback_params(estimator: Any, callbacks: list | None, params: dict[str, Any]) -> list | None:
    named = named_callbacks(callbacks)
    names = [name for name, _ in named]
    replaced = dict(named)
    removed: set[str] = set()
    for sub, value in params.items():
        name, _, param = sub.partition("__")
        if name not in replaced:
            raise ValueError(_unknown_callback(estimator, name, names))
        if param:
            continue
        if value is None:
            removed.add(name)
        else:
            replaced[name] = value
    grouped: dict[str, dict[str, Any]] = {}
    for sub, value in params.items():
        name, _, param = sub.partition("__")
        if param:
            grouped.setdefault(name, {})[param] = value
    for name, values in grouped.items():
        cb = replaced[name]
        if name in removed or not hasattr(cb, "set_params") or isinstance(cb, type):
            raise ValueError(
                f"callbacks__{name} is {'removed' if name in removed else repr(cb)}: it has no "
                f"parameters {sorted(values)} to set."
            )
        cb.set_params(**values)
    if not removed and all(replaced[name] is cb for name, cb in named):
        return callbacks
    # Replacing or removing a callback keeps every name: the callbacks become named tuples.
    return [(name, replaced[name]) for name in names if name not in removed]


def _unknown_callback(estimator: Any, name: str, names: list[str]) -> str:
    owner = type(estimator).__name__
    if name in BUILT_IN_CALLBACKS:
        return f"{owner}'s callback {name!r} cannot be set through callbacks__{name}: {BUILT_IN_CALLBACKS[name]}."
    listed = ", ".join(repr(n) for n in names) if names else "none"
    return (
        f"callbacks__{name} names no callback of {owner}'s callbacks (named {listed}); a "
        "(name, callback) tuple in callbacks gives a callback its name."
    )


# -- scoring -------------------------------------------------------------------------------------
@dataclass
class FitRows:
    """The rows a fit trains and validates on, as scoring callbacks score them.

    ``X`` as the estimator's prediction methods take it during fit, ``y`` as given to ``fit``
    (1-D where the estimator predicts 1-D), and the positions of the current training
    (None: all rows) and validation rows (None: none).

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads.base import FitRows
    >>> rows = FitRows(np.zeros((5, 2)), np.arange(5.0), train=np.arange(4), valid=np.array([4]))
    >>> rows.y[rows.valid]  # what a scoring callback on the validation rows scores against
    array([4.])
    """

    X: Any
    y: Any
    train: np.ndarray | None = None
    valid: np.ndarray | None = None


def refuse_scoring(callbacks: list, estimator: str, reason: str) -> list:
    """``callbacks`` unchanged, or a ValueError when one of them is a skorch scoring callback.

    For an estimator with no predictions a scoring callback could score; ``reason`` ends the
    error message, after the callback's name and ``estimator``.

    Examples
    --------
    >>> from skorch.callbacks import Checkpoint, EpochScoring
    >>> from skpercept.heads.base import refuse_scoring
    >>> [name for name, _ in refuse_scoring([("cp", Checkpoint())], "MyEmbedder", "...")]
    ['cp']
    >>> refuse_scoring([("r2", EpochScoring("r2"))], "MyEmbedder", "makes no predictions.")
    Traceback (most recent call last):
    ...
    ValueError: callbacks: 'r2' is a skorch scoring callback, but MyEmbedder makes no predictions.
    """
    for name, cb in callbacks:
        if isinstance(cb, ScoringBase):
            raise ValueError(f"callbacks: {name!r} is a skorch scoring callback, but {estimator} {reason}")
    return callbacks


def route_scoring(
    callbacks: list, *, view: Callable[[Any], Any], rows: FitRows, estimator: str, batches: bool = True
) -> list:
    """``callbacks`` with each skorch scoring callback wrapped in :class:`EstimatorScoring`.

    ``view(net)`` is the estimator as it predicts while ``net`` trains. ``batches=False``
    refuses ``BatchScoring`` (whose validation batches cannot be told apart).

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.callbacks import Checkpoint, EpochScoring
    >>> from skpercept.heads.base import FitRows, route_scoring
    >>> rows = FitRows(np.zeros((5, 2)), np.arange(5.0), valid=np.array([4]))
    >>> routed = route_scoring(
    ...     [("r2", EpochScoring("r2")), ("cp", Checkpoint())],
    ...     view=lambda net: None,  # a head passes a function returning itself
    ...     rows=rows,
    ...     estimator="MyHead",
    ... )
    >>> [(name, type(cb).__name__) for name, cb in routed]
    [('r2', 'EstimatorScoring'), ('cp', 'Checkpoint')]
    >>> try:  # without a hold-out, validation rows cannot be scored
    ...     route_scoring([("r2", EpochScoring("r2"))], view=lambda net: None,
    ...                   rows=FitRows(np.zeros((5, 2)), np.arange(5.0)), estimator="MyHead")
    ... except ValueError as exc:
    ...     print(str(exc).split(", but")[0])
    callbacks: 'r2' (EpochScoring, on_train=False) scores the validation rows
    """
    routed = []
    for name, cb in callbacks:
        if isinstance(cb, ScoringBase):
            _check_scoring(name, cb, rows, estimator, batches)
            cb = EstimatorScoring(cb, view=view, rows=rows)
        routed.append((name, cb))
    return routed


def _check_scoring(name: str, cb: ScoringBase, rows: FitRows, estimator: str, batches: bool) -> None:
    kind = type(cb).__name__
    if isinstance(cb, BatchScoring) and (cb.on_train or not batches):
        raise ValueError(
            f"callbacks: {name!r} is a BatchScoring on "
            + (
                "training batches, which are shuffled and drawn mid-epoch (for pairs, with swapped "
                "halves): it cannot score the estimator's predictions on the rows given to fit. Use "
                "EpochScoring(on_train=True), which scores them after every epoch."
                if cb.on_train
                else f"validation batches, which {estimator} cannot tell apart here. Use EpochScoring."
            )
        )
    if not cb.on_train and rows.valid is None:
        raise ValueError(
            f"callbacks: {name!r} ({kind}, on_train=False) scores the validation rows, but with "
            f"early_stopping=False {estimator} holds none out: pass early_stopping=True (its "
            "hold-out is the validation set) or score the training rows (on_train=True)."
        )


@contextmanager
def _uncached(net: Any) -> Iterator[None]:
    """Lift skorch's prediction cache from ``net`` (scoring callbacks replace ``forward_iter``
    with one pass over cached outputs; the estimator's prediction methods need the real one)."""
    patched = net.__dict__.pop("forward_iter", None)
    try:
        yield
    finally:
        if patched is not None:
            net.forward_iter = patched


class EstimatorScoring(Callback):
    """A user's skorch scoring callback, scoring the estimator's predictions.

    skorch calls ``scorer(net, X_test, y_test)`` with the net and the encoded targets; this
    adapter runs the wrapped callback unchanged, except that its ``_scoring`` (shadowed by an
    instance attribute for the duration of the call, as skorch itself shadows
    ``net.forward_iter`` with cached outputs) calls :func:`score_rows` on the estimator as it
    predicts at that moment (``view(net)``) and the scored rows' ``X`` and ``y`` as given to
    ``fit``. History, names, ``lower_is_better`` and ``*_best`` stay the callback's. Attributes
    and parameters are the wrapped callback's (``net.callbacks_[name].best_score_``).

    ``EpochScoring`` scores the validation rows (``on_train=False``) or the training rows;
    ``BatchScoring`` scores each validation batch, in order, its rows counted from skorch's
    recorded ``valid_batch_size``.
    """

    def __init__(self, callback: ScoringBase, *, view: Callable[[Any], Any], rows: FitRows) -> None:
        self.callback = callback
        self.view = view
        self.rows = rows

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("callback", "view", "rows"):
            raise AttributeError(name)
        return getattr(self.callback, name)

    def get_params(self, deep: bool = True) -> dict:
        return self.callback.get_params(deep=deep)

    def set_params(self, **params) -> EstimatorScoring:
        self.callback.set_params(**params)
        return self

    def initialize(self) -> EstimatorScoring:
        self.callback.initialize()
        self._offset = 0
        return self

    def on_train_begin(self, net, **kwargs) -> None:
        self.callback.on_train_begin(net, **kwargs)

    def on_train_end(self, net, **kwargs) -> None:
        self.callback.on_train_end(net, **kwargs)

    def on_epoch_begin(self, net, **kwargs) -> None:
        self._offset = 0
        self.callback.on_epoch_begin(net, **kwargs)

    def on_batch_begin(self, net, **kwargs) -> None:
        self.callback.on_batch_begin(net, **kwargs)

    def on_grad_computed(self, net, named_parameters, **kwargs) -> None:
        self.callback.on_grad_computed(net, named_parameters, **kwargs)

    def on_batch_end(self, net, batch=None, training=False, **kwargs) -> None:
        if not isinstance(self.callback, BatchScoring) or training:
            self.callback.on_batch_end(net, batch=batch, training=training, **kwargs)
            return
        n = int(net.history[-1, "batches", -1, "valid_batch_size"])
        positions = self.rows.valid[self._offset : self._offset + n]
        self._offset += n
        with self._routed(positions):
            self.callback.on_batch_end(net, batch=batch, training=training, **kwargs)

    def on_epoch_end(self, net, **kwargs) -> None:
        if isinstance(self.callback, BatchScoring):
            self.callback.on_epoch_end(net, **kwargs)
            return
        positions = self.rows.train if self.callback.on_train else self.rows.valid
        with self._routed(positions):
            self.callback.on_epoch_end(net, **kwargs)

    @contextmanager
    def _routed(self, positions: np.ndarray | None) -> Iterator[None]:
        rows = self.rows
        X = rows.X if positions is None else _safe_indexing(rows.X, positions)
        y = rows.y if positions is None else _safe_indexing(rows.y, positions)
        callback = self.callback

        def scoring(net: Any, X_test: Any = None, y_test: Any = None) -> float:
            with _uncached(net):
                return score_rows(callback.scoring_, self.view(net), X, y, name=callback.name_)

        callback._scoring = scoring
        try:
            yield
        finally:
            del callback.__dict__["_scoring"]


def score_rows(scoring: Any, estimator: Any, X: Any, y: Any, *, name: str = "score") -> float:
    """``scoring`` of ``estimator`` on rows ``X`` with targets ``y`` as given to ``fit``.

    None: the estimator's ``score``. A scorer name or scikit-learn scorer: per attribute (column
    of ``y``) on the observed (non-missing) labels, averaged over attributes, as the heads'
    ``score`` does. Any other callable: ``scoring(estimator, X, y)``.
    """
    if scoring is None:
        return estimator.score(X, y)
    if isinstance(scoring, str):
        scorer = get_scorer(scoring)
    elif isinstance(scoring, _BaseScorer):
        scorer = scoring
    else:
        return scoring(estimator, X, y)
    return _per_attribute(scorer, estimator, X, y, name)


def _per_attribute(scorer: Any, estimator: Any, X: Any, y: Any, name: str) -> float:
    owner = type(estimator).__name__
    methods = getattr(scorer, "_response_method", "predict")
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not any(hasattr(estimator, m) for m in methods):
        raise ValueError(
            f"The scoring callback {name!r} scores {' or '.join(methods)}, which {owner} does not "
            "have; use a scorer of predict (e.g. 'r2', 'accuracy'), a callable scorer(estimator, X, "
            "y) or scoring=None (the estimator's score)."
        )
    y = np.asarray(y)
    responses = _Responses(estimator, X, multi=y.ndim == 2)
    columns = [y] if y.ndim == 1 else [y[:, j] for j in range(y.shape[1])]
    scores = []
    for j, column in enumerate(columns):
        observed = ~np.asarray(pd.isna(column), dtype=bool)
        if not observed.any():
            continue
        truth = column[observed]
        if truth.dtype == object:
            truth = np.asarray(truth.tolist())  # numbers stored among NaN: their own dtype
        attribute = _Attribute(responses, j, observed)
        try:
            scores.append(float(scorer(attribute, _safe_indexing(X, np.flatnonzero(observed)), truth)))
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"The scoring callback {name!r} could not score {owner}'s predictions of attribute "
                f"{j} (its observed labels): {str(error).rstrip('.')}. A callable scorer(estimator, X, y) or "
                "scoring=None (the estimator's score) scores what this scorer cannot."
            ) from error
    return float(np.mean(scores)) if scores else float("nan")


class _Responses:
    """An estimator's predictions on fixed rows, each method computed once."""

    def __init__(self, estimator: Any, X: Any, multi: bool) -> None:
        self.estimator = estimator
        self.X = X
        self.multi = multi
        self._done: dict[str, Any] = {}

    def get(self, method: str, j: int) -> np.ndarray:
        if method not in self._done:
            self._done[method] = getattr(self.estimator, method)(self.X)
        out = self._done[method]
        if not self.multi:
            return np.asarray(out)
        return np.asarray(out[j] if isinstance(out, list) else np.asarray(out)[:, j])


def _has(method: str) -> Callable[[Any], bool]:
    return lambda self: hasattr(self._responses.estimator, method)


class _Attribute:
    """One attribute of an estimator's predictions on the observed rows of that attribute: what
    a scikit-learn scorer expects of a single-output estimator."""

    def __init__(self, responses: _Responses, j: int, observed: np.ndarray) -> None:
        self._responses = responses
        self._j = j
        self._observed = observed
        classes = getattr(responses.estimator, "classes_", None)
        if classes is not None:
            self.classes_ = classes[j] if isinstance(classes, list) else classes

    def __sklearn_tags__(self):
        return get_tags(self._responses.estimator)

    def _rows(self, method: str, X: Any) -> np.ndarray:
        out = self._responses.get(method, self._j)[self._observed]
        if len(X) != len(out):
            raise ValueError(f"scores {len(out)} rows, got {len(X)}")
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self._rows("predict", X)

    @available_if(_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        return self._rows("predict_proba", X)

    @available_if(_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        return self._rows("decision_function", X)
