"""One registry of heads: a head registered here is offered everywhere a head is chosen by name.

The command's ``fit --head`` and ``compare --heads``, :func:`make_head` (the presets the command,
the benchmarks and the examples share), the safe file format (:func:`skpercept.persistence.save_safe`
rebuilds only registered classes) and the scikit-learn common checks all read this registry, so a
new head is added in one place::

    register_head(
        "my-ranker", task="pairs", output="pairs", estimator=MyRanker,
        build=lambda settings: MyRanker(**settings.mlp_params()),
        description="my pair head",
    )

A head's *task* is the kind of table it learns from (``'rating'``: one image per row, ``'pairs'``:
two); its *output* says how it is trained and read by the evaluation protocol: ``'values'``
(regression on ratings), ``'classes'`` (rating levels with probabilities), ``'pairs'``
(``P(left ≻ right)`` and item scores) or ``'joint'`` (ratings and pairs together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeCV

from skpercept.heads._joint import JointRatingRanker
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.heads.base import SkorchHead

__all__ = [
    "HEAD_OUTPUTS",
    "HEAD_TASKS",
    "RATING_LEVELS",
    "HeadSettings",
    "HeadSpec",
    "get_head",
    "head_names",
    "make_head",
    "register_head",
    "registered_estimators",
    "unregister_head",
]

#: The kinds of table a head learns from.
HEAD_TASKS = ("rating", "pairs", "joint")
#: How a head is trained and read (see the module docstring).
HEAD_OUTPUTS = ("values", "classes", "pairs", "joint")
#: The ordinal levels the preset classifier predicts (a 1–4 rating scale).
RATING_LEVELS = np.array([1, 2, 3, 4])


@dataclass
class HeadSettings:
    """Training settings of the preset heads, sized for a few CPU cores.

    Attributes
    ----------
    n_pairs : int, default=3000
        Consensus pairs the ranker trains on.
    ratings_per_face : int, default=6
        Individual ratings per face and attribute the classifier trains on.
    hidden : tuple of int, default=(128,)
        Hidden layer sizes of the MLP heads.
    max_epochs, patience : int, default=20, 5
        Training length and early-stopping patience.
    n_ensemble : int, default=1
        Members of each MLP head (their ``n_ensemble``): each holds out its own items for early
        stopping, and their mean is less over-confident than one net.
    device : str, default='auto'
    seed : int, default=0
    threads : int or None, default=1
        torch and BLAS CPU threads while training heads (``None``: leave them alone). These
        MLPs are too small to gain from a second thread, and on a busy machine OpenMP threads
        waiting on each other slow a fit down many times over.

    Examples
    --------
    >>> from skpercept.heads import HeadSettings
    >>> HeadSettings.quick(seed=3).max_epochs, HeadSettings.quick(seed=3).seed
    (3, 3)
    """

    n_pairs: int = 3000
    ratings_per_face: int = 6
    hidden: tuple[int, ...] = (128,)
    max_epochs: int = 20
    patience: int = 5
    n_ensemble: int = 1
    device: str = "auto"
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls, **kw) -> HeadSettings:
        """Tiny settings for smoke runs and tests (keywords override them)."""
        return cls(
            **{"n_pairs": 400, "ratings_per_face": 2, "hidden": (16,), "max_epochs": 3, "patience": 2, **kw}
        )

    def mlp_params(self) -> dict:
        """Keyword arguments shared by the MLP heads (ranker, classifier, regressor)."""
        return dict(
            hidden_layer_sizes=self.hidden,
            activation="gelu",
            dropout=0.3,
            weight_decay=1e-2,
            max_epochs=self.max_epochs,
            patience=self.patience,
            n_ensemble=self.n_ensemble,
            device=self.device,
            random_state=self.seed,
        )

    def default_params(self) -> dict:
        """What a new user sets: only the device and the seed."""
        return dict(device=self.device, random_state=self.seed)


@dataclass(frozen=True)
class HeadSpec:
    """A registered head (see :func:`register_head`).

    Examples
    --------
    >>> from skpercept.heads import HeadSpec, get_head
    >>> spec = get_head("ranker")
    >>> isinstance(spec, HeadSpec), spec.task, spec.output, spec.estimator.__name__
    (True, 'pairs', 'pairs', 'PairwiseRanker')
    >>> spec.skpercept_head  # skorch-trained: people, ensembles, the safe format
    True
    >>> get_head("ridge").skpercept_head
    False
    """

    name: str
    task: str
    output: str
    build: Callable[[HeadSettings], Any]
    description: str
    estimator: type | None = None
    in_command: bool = True

    @property
    def skpercept_head(self) -> bool:
        """A skorch-trained skpercept head: NaN targets, people, ensembles, the safe format."""
        return isinstance(self.estimator, type) and issubclass(self.estimator, SkorchHead)


_HEADS: dict[str, HeadSpec] = {}


def register_head(
    name: str,
    *,
    task: str,
    output: str,
    build: Callable[[HeadSettings], Any],
    description: str,
    estimator: type | None = None,
    in_command: bool = True,
    replace: bool = False,
) -> HeadSpec:
    """Register a head under ``name``; it then appears wherever heads are chosen by name.

    Parameters
    ----------
    name : str
        The name used by ``skpercept fit --head``, ``compare --heads`` and :func:`make_head`.
    task : {'rating', 'pairs', 'joint'}
        The table it learns from.
    output : {'values', 'classes', 'pairs', 'joint'}
        How it is trained and read (module docstring).
    build : callable
        ``build(settings)`` returns an unfitted estimator for a :class:`HeadSettings`.
    description : str
        One line for help texts.
    estimator : type or None
        The estimator class ``build`` makes. A :class:`~skpercept.heads.base.SkorchHead`
        subclass is also offered by ``skpercept fit``, stored by the safe file format and run
        through the common checks.
    in_command : bool, default=True
        Offered by the command (False for variants such as the constructor defaults of a head).
    replace : bool, default=False
        Allow replacing a head of the same name.

    Returns
    -------
    spec : HeadSpec

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from skpercept.heads import head_names, make_head, register_head, unregister_head
    >>> spec = register_head("toy-ridge", task="rating", output="values",
    ...                      build=lambda settings: Ridge(alpha=1.0), estimator=Ridge,
    ...                      description="ridge regression on the features")
    >>> "toy-ridge" in head_names("rating"), make_head("toy-ridge")
    (True, Ridge())
    >>> unregister_head("toy-ridge")  # leave the registry as it was
    >>> "toy-ridge" in head_names()
    False
    """
    if task not in HEAD_TASKS:
        raise ValueError(f"task must be one of {HEAD_TASKS}, got {task!r}.")
    if output not in HEAD_OUTPUTS:
        raise ValueError(f"output must be one of {HEAD_OUTPUTS}, got {output!r}.")
    if not name or "," in name or name != name.strip():
        raise ValueError(
            f"A head name must be non-empty, without commas or surrounding spaces; got {name!r}."
        )
    if name in _HEADS and not replace:
        raise ValueError(f"A head named {name!r} is already registered; pass replace=True to replace it.")
    spec = HeadSpec(name, task, output, build, description, estimator, in_command)
    _HEADS[name] = spec
    return spec


def unregister_head(name: str) -> None:
    """Remove a registered head (a test's toy head, say).

    Examples
    --------
    >>> from skpercept.heads import head_names, register_head, unregister_head
    >>> _ = register_head("toy", task="rating", output="values", build=lambda settings: None,
    ...                   description="a toy head")
    >>> unregister_head("toy")
    >>> "toy" in head_names()
    False
    >>> unregister_head("toy")  # an unknown name is ignored
    """
    _HEADS.pop(name, None)


def get_head(name: str) -> HeadSpec:
    """The registered head ``name``; an unknown name is a ValueError listing the known ones.

    Examples
    --------
    >>> from skpercept.heads import HeadSettings, get_head
    >>> spec = get_head("regressor")
    >>> spec.task, spec.output
    ('rating', 'values')
    >>> type(spec.build(HeadSettings.quick())).__name__
    'RatingRegressor'
    >>> try:
    ...     get_head("no-such-head")
    ... except ValueError as exc:
    ...     print(str(exc).split(";")[0])
    Unknown head 'no-such-head'
    """
    try:
        return _HEADS[name]
    except KeyError:
        raise ValueError(f"Unknown head {name!r}; choose from {', '.join(head_names())}.") from None


def head_names(task: str | None = None, *, command: bool = False, skpercept_only: bool = False) -> list[str]:
    """Names of the registered heads, in registration order.

    Parameters
    ----------
    task : {'rating', 'pairs', 'joint'} or None
        Only heads of this task.
    command : bool, default=False
        Only heads the command offers.
    skpercept_only : bool, default=False
        Only skorch-trained skpercept heads.

    Examples
    --------
    >>> from skpercept.heads import head_names
    >>> head_names("pairs", command=True)
    ['logistic', 'ranker']
    """
    return [
        spec.name
        for spec in _HEADS.values()
        if (task is None or spec.task == task)
        and (not command or spec.in_command)
        and (not skpercept_only or spec.skpercept_head)
    ]


def registered_estimators() -> dict[str, type]:
    """Class name -> class of every registered skpercept head (what the safe format rebuilds).

    Examples
    --------
    >>> from skpercept.heads import PairwiseRanker, registered_estimators
    >>> estimators = registered_estimators()
    >>> estimators["PairwiseRanker"] is PairwiseRanker
    True
    >>> "RidgeCV" in estimators  # registered too, but not a skpercept head
    False
    """
    return {spec.estimator.__name__: spec.estimator for spec in _HEADS.values() if spec.skpercept_head}


def make_head(name: str, settings: HeadSettings | None = None):
    """An unfitted head of a registered kind with the preset settings.

    Parameters
    ----------
    name : str
        A registered head (:func:`head_names`): ``'ridge'`` (``RidgeCV`` with a penalty per
        attribute; targets: mean ratings), ``'logistic'`` (logistic regression on a pair's
        feature difference), ``'ranker'`` (:class:`~skpercept.heads.PairwiseRanker`),
        ``'classifier'`` (:class:`~skpercept.heads.RatingClassifier`, CORN loss, classes 1–4),
        ``'regressor'`` (:class:`~skpercept.heads.RatingRegressor`), ``'joint'``
        (:class:`~skpercept.heads.JointRatingRanker`); ``'ranker-default'`` and
        ``'regressor-default'`` are the same heads with their constructor defaults (only
        ``device`` and ``random_state`` from ``settings``): what a new user gets.
    settings : HeadSettings or None
        None uses ``HeadSettings()``; the linear heads ignore it.

    Returns
    -------
    head : unfitted estimator

    Examples
    --------
    >>> from skpercept.heads import make_head
    >>> type(make_head("ridge")).__name__
    'RidgeCV'
    """
    return get_head(name).build(settings if settings is not None else HeadSettings())


# -- the built-in heads ---------------------------------------------------------------------------
def _ridge(settings: HeadSettings) -> RidgeCV:
    # one SVD serves every attribute; each attribute still gets its own alpha (efficient LOO)
    return RidgeCV(alphas=np.logspace(-2, 4, 13), alpha_per_target=True)


def _logistic(settings: HeadSettings) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=1000)


register_head(
    "ridge",
    task="rating",
    output="values",
    build=_ridge,
    description="RidgeCV on the features (a linear baseline; one penalty per attribute)",
)
register_head(
    "classifier",
    task="rating",
    output="classes",
    estimator=RatingClassifier,
    build=lambda s: RatingClassifier(loss="corn", classes=RATING_LEVELS, batch_size=256, **s.mlp_params()),
    description="RatingClassifier: rating levels with probabilities",
)
register_head(
    "regressor",
    task="rating",
    output="values",
    estimator=RatingRegressor,
    build=lambda s: RatingRegressor(batch_size=64, **s.mlp_params()),
    description="RatingRegressor: ratings as numbers",
)
register_head(
    "logistic",
    task="pairs",
    output="pairs",
    build=_logistic,
    description="logistic regression on a pair's feature difference (a linear baseline)",
)
register_head(
    "ranker",
    task="pairs",
    output="pairs",
    estimator=PairwiseRanker,
    build=lambda s: PairwiseRanker(batch_size=256, **s.mlp_params()),
    description="PairwiseRanker: P(left preferred) and a score per image",
)
register_head(
    "joint",
    task="joint",
    output="joint",
    estimator=JointRatingRanker,
    build=lambda s: JointRatingRanker(**s.mlp_params()),
    description="JointRatingRanker: ratings and comparisons on one latent scale",
    in_command=False,
)
register_head(
    "ranker-default",
    task="pairs",
    output="pairs",
    estimator=PairwiseRanker,
    build=lambda s: PairwiseRanker(**s.default_params()),
    description="PairwiseRanker at its constructor defaults",
    in_command=False,
)
register_head(
    "regressor-default",
    task="rating",
    output="values",
    estimator=RatingRegressor,
    build=lambda s: RatingRegressor(**s.default_params()),
    description="RatingRegressor at its constructor defaults",
    in_command=False,
)
