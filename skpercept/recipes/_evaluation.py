"""Image-disjoint cross-validation of heads on frozen image features: the protocol behind
every OMI figure of ``skpercept demo`` and ``benchmarks/omi.py``.

:func:`cross_validate` splits the images into K folds (no test image in any training row),
fits each head of :func:`skpercept.heads.make_head` on the training images only (its
``BlockScaler`` too) and scores every held-out image:

- pair metrics (:func:`pair_metrics`): the accuracy of ordering two held-out images as their
  mean ratings do (all pairs, ties skipped) and Spearman's ρ of the scores with the means;
- for the ranker, the calibration of ``P(left ≻ right)`` on those pairs, each in both orders
  (:func:`pair_calibration`);
- for the classifier, rating metrics on every individual rating of the held-out images
  (:func:`rating_metrics`).

:func:`noise_ceiling_table` gives the raters' own ceiling and :func:`results_table` puts both
side by side. The data are a Bunch shaped like :func:`skpercept.datasets.load_omi`'s: ``means``
(``image`` + one column per attribute), long ``ratings`` (``image``, ``attribute``, ``rating``
on a 0–100 scale, binned to classes 1–4 by :func:`~skpercept.datasets.to_rating_classes`) and
``attributes``; any dataset in that shape works.

Every function returns new objects: no input and no result passed in is modified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from skpercept._utils import torch_threads
from skpercept.datasets import (
    mean_standard_errors,
    ratings_with_face_index,
    sample_rating_rows,
    soft_consensus_pairs,
    to_rating_classes,
)
from skpercept.heads import RATING_LEVELS, HeadSettings, get_head, make_head
from skpercept.metrics import expected_calibration_error, noise_ceiling, quadratic_weighted_kappa
from skpercept.model_selection import ImageDisjointSplit
from skpercept.preprocessing import BlockScaler

#: Row labels of :func:`results_table` (and of progress messages), by head kind.
MODEL_LABELS = {
    "ceiling": "noise ceiling",
    "ridge": "ridge (baseline)",
    "ranker": "PairwiseRanker",
    "classifier": "RatingClassifier",
    "regressor": "RatingRegressor",
    "ranker-default": "PairwiseRanker()",
    "regressor-default": "RatingRegressor()",
}


@dataclass(frozen=True)
class CVResult:
    """What :func:`cross_validate` measured.

    Attributes
    ----------
    attributes : list of str
    metrics : DataFrame
        One row per (model, attribute, fold): ``pair_acc``, ``spearman``, and ``ece`` (ranker:
        of its pair probabilities) or ``rating_acc``, ``rating_mae``, ``qwk``, ``ece``
        (classifier).
    scores : dict of str to ndarray of shape (n_images, n_attributes)
        Out-of-fold score of every image, by model.
    pair_curves : dict of str to (labels, probabilities)
        Per attribute, the ranker's ``P(left ≻ right)`` on all test pairs of all folds and the
        consensus order (1 = left's mean is higher).
    rating_curves : dict of str to (classes, probabilities)
        Per attribute, the classifier's class probabilities for every held-out rating.
    seconds : dict of str to float
        Training + prediction time per model, summed over folds.

    Examples
    --------
    :func:`cross_validate` returns one; its :meth:`~skpercept.recipes.CVResult.summary` averages
    the folds:

    >>> import pandas as pd
    >>> from skpercept.recipes import CVResult
    >>> metrics = pd.DataFrame({"model": ["ridge", "ridge"], "attribute": ["smart", "smart"],
    ...                         "fold": [0, 1], "pair_acc": [0.7, 0.8], "spearman": [0.5, 0.6]})
    >>> CVResult(attributes=["smart"], metrics=metrics).summary()  # doctest: +NORMALIZE_WHITESPACE
                     pair_acc  spearman
    attribute model
    smart     ridge      0.75      0.55
    """

    attributes: list[str]
    metrics: pd.DataFrame
    scores: dict = field(default_factory=dict)
    pair_curves: dict = field(default_factory=dict)
    rating_curves: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean over folds, one row per (attribute, model)."""
        return (
            self.metrics.groupby(["attribute", "model"], sort=False)
            .mean(numeric_only=True)
            .drop(columns="fold", errors="ignore")
        )


# -- metrics ------------------------------------------------------------------------------------
def rating_classes(ratings: np.ndarray) -> np.ndarray:
    """0–100 ratings as int classes 1–4 (``[0, 25)`` → 1, …, ``[75, 100]`` → 4).

    Examples
    --------
    >>> from skpercept.recipes import rating_classes
    >>> rating_classes([0, 24.9, 25, 60, 100]).tolist()
    [1, 1, 2, 3, 4]
    """
    return np.asarray(to_rating_classes(np.asarray(ratings, dtype=np.float64)), dtype=np.int64)


def pair_metrics(scores: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    """Pair accuracy and Spearman's ρ of one attribute's scores against the mean ratings.

    Pair accuracy is the share of all pairs of images with different means that the scores
    order the same way (a tied score counts as wrong).

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.recipes import pair_metrics
    >>> acc, rho = pair_metrics(np.array([1.0, 2.0, 4.0, 3.0]), np.array([10.0, 20.0, 30.0, 40.0]))
    >>> round(acc, 3), round(rho, 3)  # 5 of 6 pairs in order
    (0.833, 0.8)
    """
    i, j = np.triu_indices(len(means), 1)
    truth, pred = means[i] - means[j], scores[i] - scores[j]
    keep = truth != 0
    acc = float(np.mean(np.sign(truth[keep]) == np.sign(pred[keep])))
    return acc, float(spearmanr(means, scores).statistic)


def pair_calibration(scores: np.ndarray, means: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Calibration of ``P(left ≻ right) = σ(s_left − s_right)`` on all pairs with different means.

    Every pair is counted in both orders, ``(a, b)`` and ``(b, a)``: which image of a pair is
    "left" is an accident of file order, and a pair model's probability has to be right in
    either. Counting one order only lets anything that follows the file numbering enter the
    calibration (in OMI the mean ratings shift with the stimulus number, and in file order that
    lean made most of the ECE: ``docs/benchmarks.md``, "Calibration"). In both orders the labels
    average exactly ½ and the ECE measures how extreme the probabilities are, which is what
    calibration is about.

    Returns
    -------
    ece : float
        Expected calibration error of those probabilities against the consensus order.
    labels : ndarray
        1.0 where the left image's mean is higher, else 0.0: the pairs in file order (image
        ``i < j`` on the left), then the same pairs swapped.
    probabilities : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.recipes import pair_calibration
    >>> ece, labels, proba = pair_calibration(np.array([0.0, 1.0, 3.0]), np.array([10.0, 20.0, 30.0]))
    >>> labels.tolist()  # pairs (0, 1), (0, 2), (1, 2), then each swapped
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    >>> proba.round(2).tolist()
    [0.27, 0.05, 0.12, 0.73, 0.95, 0.88]
    >>> round(ece, 3)
    0.145
    """
    i, j = np.triu_indices(len(means), 1)
    keep = means[i] != means[j]
    i, j = i[keep], j[keep]
    y = (means[i] > means[j]).astype(np.float64)
    p = expit(scores[i] - scores[j])
    y, p = np.concatenate([y, 1.0 - y]), np.concatenate([p, 1.0 - p])
    return float(expected_calibration_error(y, p)), y, p


def rating_metrics(proba: np.ndarray, face_of_row: np.ndarray, classes: np.ndarray) -> dict:
    """Rating accuracy, MAE, QWK and top-label ECE of per-image class probabilities.

    ``proba`` has one row per image (columns: classes 1–4); each individual rating ``k``
    (class ``classes[k]``) is predicted by its image's row ``face_of_row[k]`` (most probable
    class).

    Examples
    --------
    Two images rated twice each: the first is predicted class 1, the second class 4.

    >>> import numpy as np
    >>> from skpercept.recipes import rating_metrics
    >>> proba = np.array([[0.7, 0.2, 0.1, 0.0], [0.0, 0.1, 0.3, 0.6]])
    >>> metrics = rating_metrics(proba, face_of_row=np.array([0, 0, 1, 1]), classes=np.array([1, 2, 4, 3]))
    >>> {name: round(value, 3) for name, value in metrics.items()}
    {'rating_acc': 0.5, 'rating_mae': 0.5, 'qwk': 0.857, 'ece': 0.15}
    """
    p = proba[face_of_row]
    pred = RATING_LEVELS[p.argmax(axis=1)]
    return {
        "rating_acc": float(np.mean(pred == classes)),
        "rating_mae": float(np.mean(np.abs(pred - classes))),
        "qwk": float(quadratic_weighted_kappa(classes, pred, labels=RATING_LEVELS)),
        "ece": float(expected_calibration_error(classes, p, labels=RATING_LEVELS)),
    }


# -- heads on one split -------------------------------------------------------------------------
def fit_head(
    kind: str,
    Z: np.ndarray,
    block_sizes: Sequence[int],
    train: np.ndarray,
    means: np.ndarray,
    ratings: pd.DataFrame,
    attributes: Sequence[str],
    settings: HeadSettings,
    se: np.ndarray | None = None,
    head=None,
):
    """Fit ``Pipeline([BlockScaler, head])`` of ``kind`` on the training images ``train``.

    Parameters
    ----------
    kind : str
        A registered head (:func:`skpercept.heads.head_names`) of ratings or a pair head that scores
        single images.
        Ridge and regressor (also ``'regressor-default'``) fit the mean ratings; the ranker fits
        :func:`~skpercept.datasets.soft_consensus_pairs` of the training images; the classifier
        fits :func:`~skpercept.datasets.sample_rating_rows` of their individual ratings.
    Z : ndarray of shape (n_images, n_features)
        Raw features of every image (rows as ``means``).
    block_sizes : sequence of int
    train : ndarray of int
        Positions of the training images.
    means : ndarray of shape (n_images, n_attributes)
    ratings : DataFrame
        Long ratings with a ``face`` column (:func:`~skpercept.datasets.ratings_with_face_index`).
    attributes : sequence of str
    settings : HeadSettings
    se : ndarray of shape (n_images, n_attributes) or None
        Standard errors of the means: soft labels for the ranker (None: hard labels).
    head : unfitted estimator or None
        Fitted in place of ``make_head(kind, settings)`` (a clone is fitted), on the same
        targets as ``kind``'s: a variant of a preset head, e.g. ``PairwiseRanker`` with other
        parameters.

    Returns
    -------
    model : fitted Pipeline of ``('scale', BlockScaler)`` and ``('head', head)``

    Examples
    --------
    A ridge baseline on 20 of 30 images (features: the mean rating plus noise):

    >>> import numpy as np, pandas as pd
    >>> from skpercept.heads import HeadSettings
    >>> from skpercept.recipes import fit_head
    >>> rng = np.random.default_rng(0)
    >>> means = rng.uniform(0, 100, size=(30, 1))
    >>> ratings = pd.DataFrame({"face": np.arange(30), "attribute": "smart", "rating": means[:, 0].round()})
    >>> Z = np.column_stack([means, rng.normal(size=(30, 3))]).astype(np.float32)
    >>> model = fit_head("ridge", Z, [1, 3], np.arange(20), means, ratings, ["smart"], HeadSettings.quick())
    >>> [name for name, _ in model.steps], model.predict(Z[20:]).shape
    (['scale', 'head'], (10,))
    """

    scaler = BlockScaler(block_sizes=list(block_sizes)).fit(Z[train])
    X = scaler.transform(Z[train])
    head = make_head(kind, settings) if head is None else clone(head)
    output = _output(kind)
    with torch_threads(settings.threads):
        if output == "values":
            head.fit(X, means[train])
        elif output == "pairs":
            frame = pd.DataFrame(means[train], columns=list(attributes)).assign(image=np.arange(len(train)))
            pairs = soft_consensus_pairs(
                frame,
                attributes,
                n_pairs=settings.n_pairs,
                standard_errors=None if se is None else se[train],
                random_state=settings.seed,
            )
            a, b = pairs["image_a"].to_numpy(int), pairs["image_b"].to_numpy(int)
            head.fit(np.hstack([X[a], X[b]]), pairs[list(attributes)].to_numpy(np.float32))
        elif output == "classes":
            rows, y = sample_rating_rows(
                ratings, train, attributes, per_face=settings.ratings_per_face, random_state=settings.seed
            )
            head.fit(X[rows], y)
    return Pipeline([("scale", scaler), ("head", head)])


def _output(kind: str) -> str:
    """How the registered head ``kind`` is trained and read here: 'values', 'classes' or 'pairs'."""
    spec = get_head(kind)
    if spec.output not in ("values", "classes", "pairs") or (
        spec.output == "pairs" and not hasattr(spec.estimator, "score_items")
    ):
        raise ValueError(
            f"head {kind!r} cannot be cross-validated on mean ratings: the protocol fits heads of ratings "
            "(values or classes) and pair heads that score single images (score_items)."
        )
    return spec.output


def face_scores(kind: str, model, Z: np.ndarray) -> tuple[np.ndarray, list | None]:
    """Per-image scores (n, n_attributes) of a fitted :func:`fit_head` pipeline.

    Also returns the class probabilities (one array per attribute) for the classifier, whose
    score is the expected class; None for the other kinds.

    Examples
    --------
    A quick rating classifier for two attributes, fitted on 20 images, scores the other 10:

    >>> import numpy as np, pandas as pd
    >>> from skpercept.heads import HeadSettings
    >>> from skpercept.recipes import face_scores, fit_head
    >>> rng = np.random.default_rng(0)
    >>> means = rng.uniform(0, 100, size=(30, 2))
    >>> ratings = pd.DataFrame({"face": np.repeat(np.arange(30), 2), "attribute": ["smart", "warm"] * 30,
    ...                         "rating": means.ravel().round()})
    >>> Z = np.column_stack([means, rng.normal(size=(30, 2))]).astype(np.float32)
    >>> settings = HeadSettings.quick(device="cpu")
    >>> model = fit_head("classifier", Z, [4], np.arange(20), means, ratings, ["smart", "warm"], settings)
    >>> scores, proba = face_scores("classifier", model, Z[20:])
    >>> scores.shape, len(proba), proba[0].shape  # expected class; P(class 1..4) per attribute
    ((10, 2), 2, (10, 4))
    >>> face_scores("ridge", fit_head("ridge", Z, [4], np.arange(20), means, ratings, ["smart", "warm"],
    ...                               settings), Z[20:])[1] is None
    True
    """
    X = model[0].transform(Z)
    head = model[-1]
    if _output(kind) == "pairs":
        return np.asarray(head.score_items(X)).reshape(len(Z), -1), None
    if _output(kind) == "classes":
        proba = head.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        return np.column_stack([p @ RATING_LEVELS for p in proba]), proba
    return np.asarray(head.predict(X)).reshape(len(Z), -1), None


# -- the protocol -------------------------------------------------------------------------------
def cross_validate(
    data,
    Z: np.ndarray | None,
    block_sizes: Sequence[int],
    models: Sequence[str],
    *,
    folds: int = 5,
    settings: HeadSettings | None = None,
    progress: Callable[[str], None] | None = None,
    fold_features: Callable[[np.ndarray], np.ndarray] | None = None,
) -> CVResult:
    """Image-disjoint K-fold over the images of ``data`` (rows of ``Z`` follow ``data.means``).

    Parameters
    ----------
    data : Bunch shaped like :func:`skpercept.datasets.load_omi`'s
        ``means``, long ``ratings`` (0–100) and ``attributes``.
    Z : ndarray of shape (n_images, n_features) or None
        Raw features, one row per image in ``data.means`` order (None with ``fold_features``).
    block_sizes : sequence of int
        Backbone blocks of ``Z`` for the BlockScaler (fitted on training images only).
    models : sequence of {'ridge', 'ranker', 'classifier', 'regressor'}
    folds : int, default=5
    settings : HeadSettings or None
        None uses ``HeadSettings()``; its ``seed`` also seeds the folds.
    progress : callable or None
        Called with a one-line message after each fitted model.
    fold_features : callable or None
        Features that learn from images, learned per fold: called with the training images'
        positions in ``data.means``, it returns that fold's ``Z`` (every image's row, e.g. from
        an embedder fitted on the training images only, such as
        :class:`skpercept.finetune.ContrastiveEmbedder`). Replaces ``Z``.

    Returns
    -------
    result : CVResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from skpercept.recipes import cross_validate
    >>> rng = np.random.RandomState(0)
    >>> means = rng.uniform(0, 100, size=60)
    >>> data = Bunch(
    ...     means=pd.DataFrame({"image": [f"{i}.jpg" for i in range(60)], "smart": means}),
    ...     ratings=pd.DataFrame({"image": [f"{i}.jpg" for i in range(60)], "attribute": "smart",
    ...                           "rating": means.round()}),
    ...     attributes=["smart"])
    >>> Z = np.column_stack([means, rng.normal(size=(60, 3))]).astype(np.float32)
    >>> result = cross_validate(data, Z, [4], ["ridge"], folds=3)
    >>> bool(result.summary().loc[("smart", "ridge"), "pair_acc"] > 0.95)
    True
    """
    settings = settings or HeadSettings()
    attributes = list(data.attributes)
    means = data.means[attributes].to_numpy(np.float64)
    ratings = ratings_with_face_index(data)
    se = mean_standard_errors(data)
    cv = ImageDisjointSplit(n_splits=folds, random_state=settings.seed)
    rows = []
    scores_of = {model: np.full(means.shape, np.nan) for model in models}
    seconds = dict.fromkeys(models, 0.0)
    pair_parts = {a: [] for a in attributes}
    rating_parts = {a: [] for a in attributes}
    if (Z is None) == (fold_features is None):
        raise ValueError("Pass either Z or fold_features (features learned per fold), not both or neither.")
    for fold, (train, test) in enumerate(cv.split(data.means[["image"]])):
        if fold_features is not None:
            Z = np.asarray(fold_features(train))
            if Z.shape[0] != len(means):
                raise ValueError(
                    f"fold_features returned {Z.shape[0]} rows for fold {fold}; expected one per image "
                    f"of data.means ({len(means)})."
                )
        test_ratings = ratings[ratings["face"].isin(test)]
        position = pd.Series(np.arange(len(test)), index=test)
        for model in models:
            start = time.perf_counter()
            fitted = fit_head(model, Z, block_sizes, train, means, ratings, attributes, settings, se)
            scores, proba = face_scores(model, fitted, Z[test])
            seconds[model] += time.perf_counter() - start
            scores_of[model][test] = scores
            for k, attribute in enumerate(attributes):
                acc, rho = pair_metrics(scores[:, k], means[test, k])
                row = {"model": model, "attribute": attribute, "fold": fold, "pair_acc": acc, "spearman": rho}
                if _output(model) == "pairs":
                    row["ece"], y, p = pair_calibration(scores[:, k], means[test, k])
                    pair_parts[attribute].append((y, p))
                if proba is not None:
                    part = test_ratings[test_ratings["attribute"] == attribute]
                    classes = rating_classes(part["rating"].to_numpy())
                    face_rows = position.loc[part["face"].to_numpy()].to_numpy()
                    row.update(rating_metrics(proba[k], face_rows, classes))
                    rating_parts[attribute].append((classes, proba[k][face_rows]))
                rows.append(row)
            if progress:
                done = [r for r in rows if r["model"] == model and r["fold"] == fold]
                progress(
                    f"fold {fold + 1}/{folds} {MODEL_LABELS[model]}: pair accuracy "
                    + " / ".join(f"{r['pair_acc']:.3f}" for r in done)
                )
    return CVResult(
        attributes=attributes,
        metrics=pd.DataFrame(rows),
        scores=scores_of,
        pair_curves=_pooled(pair_parts),
        rating_curves=_pooled(rating_parts),
        seconds=seconds,
    )


def _pooled(parts: dict) -> dict:
    """Per attribute, the folds' (labels, probabilities) concatenated; attributes without any dropped."""
    return {
        attribute: (np.concatenate([y for y, _ in folds]), np.concatenate([p for _, p in folds]))
        for attribute, folds in parts.items()
        if folds
    }


# -- tables -------------------------------------------------------------------------------------
_TABLE_COLUMNS = (
    "attribute",
    "model",
    "pair_acc",
    "spearman",
    "headroom",
    "rating_acc",
    "rating_mae",
    "qwk",
    "ece",
)


def noise_ceiling_table(data, seed: int = 0) -> pd.DataFrame:
    """Per attribute: the raters' pair-order ceiling and the rating metrics of each image's own
    modal class (an in-sample oracle: what knowing every image's rating distribution gives).

    The ceiling is :func:`skpercept.metrics.noise_ceiling` of ``data.ratings`` (split-half,
    Spearman–Brown), turned into the best achievable pair accuracy.

    Examples
    --------
    Twenty images, each rated six times with noise:

    >>> import numpy as np, pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from skpercept.recipes import noise_ceiling_table
    >>> rng = np.random.default_rng(0)
    >>> images, truth = [f"{i}.jpg" for i in range(20)], rng.uniform(0, 100, 20)
    >>> ratings = pd.DataFrame({"image": np.repeat(images, 6), "attribute": "smart",
    ...                         "rating": np.clip(np.repeat(truth, 6) + rng.normal(0, 10, 120), 0, 100)})
    >>> means = ratings.groupby("image", sort=False)["rating"].mean().reset_index(name="smart")
    >>> data = Bunch(means=means, ratings=ratings, attributes=["smart"])
    >>> noise_ceiling_table(data).round(2)
           pair_acc  rating_acc  rating_mae   qwk
    smart      0.97        0.82        0.18  0.94
    """
    ceiling = noise_ceiling(
        data.ratings, item_col="image", rating_col="rating", group_col="attribute", random_state=seed
    )
    out = {}
    for attribute in data.attributes:
        part = data.ratings[data.ratings["attribute"] == attribute]
        classes = pd.Series(rating_classes(part["rating"].to_numpy()), index=part.index)
        mode = classes.groupby(part["image"]).agg(lambda s: s.value_counts().idxmax())
        pred = mode.loc[part["image"]].to_numpy()
        out[attribute] = {
            "pair_acc": float(ceiling.loc[attribute, "pair_order_ceiling"]),
            "rating_acc": float(np.mean(pred == classes.to_numpy())),
            "rating_mae": float(np.mean(np.abs(pred - classes.to_numpy()))),
            "qwk": float(quadratic_weighted_kappa(classes.to_numpy(), pred, labels=RATING_LEVELS)),
        }
    return pd.DataFrame(out).T


def results_table(result: CVResult, ceiling: pd.DataFrame, extra_label: str = "") -> pd.DataFrame:
    """Readable table: per attribute, the noise ceiling row then one row per model.

    ``headroom`` is the fraction of the ceiling's headroom reached,
    ``(pair_acc − 0.5) / (ceiling − 0.5)``; ``extra_label`` is appended to each model's label.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from skpercept.recipes import cross_validate, noise_ceiling_table, results_table
    >>> rng = np.random.default_rng(0)
    >>> images, truth = [f"{i}.jpg" for i in range(40)], rng.uniform(0, 100, 40)
    >>> ratings = pd.DataFrame({"image": np.repeat(images, 6), "attribute": "smart",
    ...                         "rating": np.clip(np.repeat(truth, 6) + rng.normal(0, 10, 240), 0, 100)})
    >>> means = ratings.groupby("image", sort=False)["rating"].mean().reset_index(name="smart")
    >>> data = Bunch(means=means, ratings=ratings, attributes=["smart"])
    >>> Z = np.column_stack([truth + rng.normal(0, 15, 40), rng.normal(size=(40, 3))]).astype(np.float32)
    >>> result = cross_validate(data, Z, [4], ["ridge"], folds=2)
    >>> table = results_table(result, noise_ceiling_table(data))
    >>> table.index.tolist()
    [('smart', 'noise ceiling'), ('smart', 'ridge (baseline)')]
    >>> table.columns.tolist()
    ['pair_acc', 'spearman', 'headroom', 'rating_acc', 'rating_mae', 'qwk']
    >>> bool(0.5 < table.loc[("smart", "ridge (baseline)"), "headroom"] < 1)
    True
    """
    summary = result.summary()
    rows = []
    for attribute in result.attributes:
        top = ceiling.loc[attribute, "pair_acc"]
        rows.append(
            {
                "attribute": attribute,
                "model": MODEL_LABELS["ceiling"],
                **ceiling.loc[attribute].to_dict(),
                "headroom": 1.0,
            }
        )
        for model in summary.loc[attribute].index:
            values = summary.loc[(attribute, model)].to_dict()
            values["headroom"] = (values["pair_acc"] - 0.5) / (top - 0.5)
            rows.append({"attribute": attribute, "model": MODEL_LABELS[model] + extra_label, **values})
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in _TABLE_COLUMNS if c in table.columns]).set_index(
        ["attribute", "model"]
    )
