"""The OMI demo: embed the shipped faces, cross-validate heads without leaks, fit final pipelines.

``skpercept demo`` and ``benchmarks/omi.py`` both run on these functions, so the benchmark's
figures are those of the code users run:

- :func:`make_backbones` / :func:`fit_featurizer`: EfficientNet-Lite0 (shipped ImageNet
  weights, flip-averaged) and, when the ``[face]`` extra is installed, dlib's face descriptor;
  blocks concatenated and balanced by :class:`~skpercept.preprocessing.BlockScaler`;
  embeddings cached by image content under :func:`default_cache_dir`.
- :func:`cross_validate`: image-disjoint K-fold over faces (no test face in any training row);
  every model predicts a score per held-out face, scored by the accuracy of ordering two
  held-out faces as their mean ratings do (ties skipped) and by Spearman's ρ, beside the
  raters' own noise ceiling.

Models (``MODELS``): ``'ridge'`` (baseline, ridge per attribute on mean ratings),
``'ranker'`` (:class:`~skpercept.ranking.PairwiseRanker` on consensus pairs of training faces,
soft labels from the means' standard errors),
``'classifier'`` (:class:`~skpercept.rating.RatingClassifier` on individual ratings binned to
classes 1–4; its face score is the expected class), ``'regressor'``
(:class:`~skpercept.rating.RatingRegressor` on mean ratings).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import spearmanr

from skpercept.embed.timm import TimmEmbedder

DEFAULT_ATTRIBUTES = ("trustworthy", "attractive", "smart")
RATING_LEVELS = np.array([1, 2, 3, 4])
MODELS = ("ridge", "ranker", "classifier", "regressor")
MODEL_LABELS = {
    "ceiling": "noise ceiling",
    "ridge": "ridge (baseline)",
    "ranker": "PairwiseRanker",
    "classifier": "RatingClassifier",
    "regressor": "RatingRegressor",
}


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$SKPERCEPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/skpercept``,
    else ``~/.cache/skpercept``."""
    if os.environ.get("SKPERCEPT_CACHE_DIR"):
        return Path(os.environ["SKPERCEPT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "skpercept"


def dlib_available() -> bool:
    """True when the ``[face]`` extra (``dlib`` and ``face_recognition_models``) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))


def subset_omi(omi, n_faces: int):
    """The first ``n_faces`` faces of ``omi`` (images, ratings and means), for quick runs."""
    from sklearn.utils import Bunch

    keep = omi.means["image"].iloc[:n_faces]
    return Bunch(
        **{
            **omi,
            "images": omi.images[omi.images["image"].isin(keep)].reset_index(drop=True),
            "ratings": omi.ratings[omi.ratings["image"].isin(keep)].reset_index(drop=True),
            "means": omi.means.iloc[:n_faces].reset_index(drop=True),
        }
    )


# -- features -----------------------------------------------------------------------------------
def make_backbones(
    names: Sequence[str] = ("lite0", "dlib"),
    *,
    flip: bool = True,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
    num_workers: int = 2,
) -> dict:
    """Embedders by name: ``'lite0'`` (TimmEmbedder with the shipped EfficientNet-Lite0
    weights, ``crop_pct=1.0``: whole image resized to 224 px) and
    ``'dlib'`` (DlibFaceEmbedder). ``flip`` averages each image with its mirror (lite0 only:
    for dlib it doubles the slowest step for no measured gain). Raw (un-normalised) vectors:
    scaling is the featurizer's job."""
    out = {}
    for name in names:
        common = dict(cache_dir=cache_dir, progress=progress, num_workers=num_workers, normalize=False)
        if name == "lite0":
            out[name] = TimmEmbedder(crop_pct=1.0, tta=flip, device=device, **common)
        elif name == "dlib":
            from skpercept.embed.dlib import DlibFaceEmbedder

            out[name] = DlibFaceEmbedder(**common)
        else:
            raise ValueError(f"Unknown backbone {name!r}; use 'lite0' and/or 'dlib'.")
    return out


def backbone_dims(backbones: dict) -> list[int]:
    """Output width of each backbone (builds each model once; reads no image)."""
    from sklearn.base import clone

    return [int(clone(b).fit(pd.Series(["unused"])).embedding_dim_) for b in backbones.values()]


def make_featurizer(backbones: dict, block_sizes: Sequence[int] | None = None):
    """Unfitted ``Pipeline([('embed', FeatureUnion(backbones)), ('scale', BlockScaler)])``:
    image paths in, one balanced feature row per image out."""
    from sklearn.pipeline import FeatureUnion, Pipeline

    from skpercept.preprocessing import BlockScaler

    sizes = list(block_sizes) if block_sizes is not None else backbone_dims(backbones)
    return Pipeline(
        [("embed", FeatureUnion(list(backbones.items()))), ("scale", BlockScaler(block_sizes=sizes))]
    )


def embed_blocks(backbones: dict, images: Sequence) -> tuple[np.ndarray, list[int]]:
    """Raw embeddings of ``images`` (backbone blocks side by side) and the block widths."""
    from sklearn.pipeline import FeatureUnion

    union = FeatureUnion(list(backbones.items()))
    Z = union.fit_transform(pd.Series(list(images), name="image"))
    return np.asarray(Z, dtype=np.float32), [int(t.embedding_dim_) for _, t in union.transformer_list]


# -- heads --------------------------------------------------------------------------------------
@dataclass
class HeadSettings:
    """Training settings of the demo's heads, sized for 2 CPU cores (``quick`` for tests)."""

    n_pairs: int = 3000
    ratings_per_face: int = 6
    hidden: tuple[int, ...] = (128,)
    max_epochs: int = 20
    patience: int = 5
    device: str = "auto"
    seed: int = 0
    #: torch and BLAS CPU threads while training heads. These MLPs are too small to gain from a second
    #: thread, and on a busy machine two OpenMP threads waiting on each other made a ranker fit
    #: 16x slower (55 s against 3.5 s with one thread, measured while other jobs ran).
    threads: int | None = 1

    @classmethod
    def quick(cls, **kw) -> HeadSettings:
        return cls(
            **{"n_pairs": 400, "ratings_per_face": 2, "hidden": (16,), "max_epochs": 3, "patience": 2, **kw}
        )

    def _common(self) -> dict:
        return dict(
            hidden_layer_sizes=self.hidden,
            activation="gelu",
            dropout=0.3,
            weight_decay=1e-2,
            max_epochs=self.max_epochs,
            patience=self.patience,
            device=self.device,
            random_state=self.seed,
        )


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads and BLAS threads (``None``: leave them alone)."""
    import torch
    from threadpoolctl import threadpool_limits

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        with threadpool_limits(limits=int(n)):
            yield
    finally:
        torch.set_num_threads(old)


def make_head(kind: str, settings: HeadSettings):
    """An unfitted head of the given kind with the demo's settings."""
    if kind == "ridge":
        from sklearn.linear_model import RidgeCV

        # one SVD serves every attribute; each attribute still gets its own alpha (efficient LOO)
        return RidgeCV(alphas=np.logspace(-2, 4, 13), alpha_per_target=True)
    if kind == "ranker":
        from skpercept.ranking import PairwiseRanker

        return PairwiseRanker(batch_size=256, **settings._common())
    if kind == "classifier":
        from skpercept.rating import RatingClassifier

        return RatingClassifier(loss="corn", classes=RATING_LEVELS, batch_size=256, **settings._common())
    if kind == "regressor":
        from skpercept.rating import RatingRegressor

        return RatingRegressor(batch_size=64, **settings._common())
    raise ValueError(f"Unknown model {kind!r}; choose from {MODELS}.")


def standard_errors(omi) -> np.ndarray:
    """Standard error of each face's mean rating, (n_faces, n_attributes) in ``omi.means`` order."""
    grouped = omi.ratings.groupby(["image", "attribute"])["rating"]
    se = (grouped.std() / np.sqrt(grouped.count())).unstack("attribute")
    return se.reindex(index=omi.means["image"], columns=list(omi.attributes)).to_numpy(np.float64)


def training_pairs(
    means: pd.DataFrame, attributes: Sequence[str], n_pairs: int, seed: int, se: np.ndarray | None = None
) -> pd.DataFrame:
    """Consensus pairs among the rows of ``means`` (ties dropped), with soft labels when ``se``
    (standard errors of the means, rows as ``means``) is given.

    A soft label is ``Φ((m_a − m_b) / sqrt(se_a² + se_b²))``, the probability that face a's
    true mean rating exceeds b's given the sampled raters: near-ties teach "unsure" instead of
    a coin-flip hard label. On OMI it left pair accuracy unchanged (±0.004) and roughly halved
    the ranker's pair calibration error.
    """
    from scipy.stats import norm

    from skpercept.datasets import consensus_pairs

    attributes = list(attributes)
    total = len(means) * (len(means) - 1) // 2
    pairs = consensus_pairs(
        means[["image"] + attributes], attributes, n_pairs=min(n_pairs, total), ties="drop", random_state=seed
    )
    if se is not None:
        row = pd.Series(np.arange(len(means)), index=means["image"].to_numpy())
        a, b = row.loc[pairs["image_a"]].to_numpy(), row.loc[pairs["image_b"]].to_numpy()
        m = means[attributes].to_numpy(np.float64)
        spread = np.sqrt(se[a] ** 2 + se[b] ** 2)
        soft = norm.cdf((m[a] - m[b]) / np.where(spread > 0, spread, np.inf))
        soft = np.where(spread > 0, soft, (m[a] > m[b]).astype(float))
        pairs[attributes] = np.where(pairs[attributes].isna(), np.nan, soft)
    return pairs


def rating_rows(
    ratings: pd.DataFrame, faces: np.ndarray, attributes: Sequence[str], per_face: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training rows of individual rating classes: (face position per row, (rows, attributes)).

    ``per_face`` ratings of each attribute are drawn per face (all of them if fewer). OMI has no
    rater ids, so the k-th drawn rating of every attribute shares row k of its face: each
    attribute's head still sees each drawn rating exactly once, in a third of the rows.
    """
    from skpercept.datasets import to_rating_classes

    rng = np.random.RandomState(seed)
    wanted = pd.Series(np.arange(len(faces)), index=faces)
    rows = ratings[ratings["face"].isin(wanted.index)]
    blocks = {}
    for attribute in attributes:
        part = rows[rows["attribute"] == attribute]
        shuffled = part.iloc[rng.permutation(len(part))]
        shuffled = shuffled.assign(k=shuffled.groupby("face").cumcount())
        blocks[attribute] = shuffled[shuffled["k"] < per_face].set_index(["face", "k"])["rating"]
    table = pd.concat(blocks, axis=1).reindex(columns=list(attributes))
    return (
        wanted.loc[table.index.get_level_values(0)].to_numpy(),
        to_rating_classes(table.to_numpy(dtype=np.float64)),
    )


# -- cross-validation ---------------------------------------------------------------------------
@dataclass
class CVResult:
    """What :func:`cross_validate` measured: per-fold metrics and pooled out-of-fold outputs."""

    attributes: list[str]
    metrics: pd.DataFrame  # rows: (model, attribute, fold)
    scores: dict = field(default_factory=dict)  # model -> (n_faces, n_attr) out-of-fold scores
    pair_curves: dict = field(default_factory=dict)  # attribute -> (labels, P(left))
    rating_curves: dict = field(default_factory=dict)  # attribute -> (classes, proba)
    seconds: dict = field(default_factory=dict)  # model -> training + prediction time

    def summary(self) -> pd.DataFrame:
        """Mean over folds, one row per (attribute, model)."""
        return (
            self.metrics.groupby(["attribute", "model"], sort=False)
            .mean(numeric_only=True)
            .drop(columns="fold", errors="ignore")
        )


def _pair_metrics(scores: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    i, j = np.triu_indices(len(means), 1)
    truth, pred = means[i] - means[j], scores[i] - scores[j]
    keep = truth != 0
    acc = float(np.mean(np.sign(truth[keep]) == np.sign(pred[keep])))
    return acc, float(spearmanr(means, scores).statistic)


def _rating_metrics(proba: np.ndarray, face_of_row: np.ndarray, classes: np.ndarray) -> dict:
    from skpercept.metrics import expected_calibration_error, quadratic_weighted_kappa

    p = proba[face_of_row]
    pred = RATING_LEVELS[p.argmax(axis=1)]
    return {
        "rating_acc": float(np.mean(pred == classes)),
        "rating_mae": float(np.mean(np.abs(pred - classes))),
        "qwk": float(quadratic_weighted_kappa(classes, pred, labels=RATING_LEVELS)),
        "ece": float(expected_calibration_error(classes, p, labels=RATING_LEVELS)),
    }


def long_ratings(omi) -> pd.DataFrame:
    """``omi.ratings`` with a ``face`` column: the row position of the face in ``omi.means``."""
    face = pd.Series(np.arange(len(omi.means)), index=omi.means["image"].to_numpy())
    return omi.ratings.assign(face=face.loc[omi.ratings["image"].to_numpy()].to_numpy())


def fit_head(
    kind: str,
    Z: np.ndarray,
    block_sizes,
    train: np.ndarray,
    means: np.ndarray,
    ratings: pd.DataFrame,
    attributes: Sequence[str],
    settings: HeadSettings,
    se: np.ndarray | None = None,
):
    """Fit ``Pipeline([BlockScaler, head])`` of ``kind`` on the training faces ``train``.

    Returns the fitted pipeline and a function mapping face features to per-attribute scores
    (and, for the classifier, class probabilities).
    """
    from sklearn.pipeline import Pipeline

    from skpercept.preprocessing import BlockScaler

    scaler = BlockScaler(block_sizes=list(block_sizes)).fit(Z[train])
    X = scaler.transform(Z[train])
    head = make_head(kind, settings)
    with torch_threads(settings.threads):
        if kind in ("ridge", "regressor"):
            head.fit(X, means[train])
        elif kind == "ranker":
            frame = pd.DataFrame(means[train], columns=list(attributes)).assign(image=np.arange(len(train)))
            pairs = training_pairs(
                frame, attributes, settings.n_pairs, settings.seed, se=None if se is None else se[train]
            )
            a, b = pairs["image_a"].to_numpy(int), pairs["image_b"].to_numpy(int)
            head.fit(np.hstack([X[a], X[b]]), pairs[list(attributes)].to_numpy(np.float32))
        elif kind == "classifier":
            rows, y = rating_rows(ratings, train, attributes, settings.ratings_per_face, settings.seed)
            head.fit(X[rows], y)
    return Pipeline([("scale", scaler), ("head", head)])


def face_scores(kind: str, model, Z: np.ndarray) -> tuple[np.ndarray, list | None]:
    """Per-face scores (n, n_attr) of a fitted :func:`fit_head` pipeline; class probabilities too
    for the classifier (its score is the expected class)."""
    X = model[0].transform(Z)
    head = model[-1]
    if kind == "ranker":
        return np.asarray(head.score_items(X)).reshape(len(Z), -1), None
    if kind == "classifier":
        proba = head.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        return np.column_stack([p @ RATING_LEVELS for p in proba]), proba
    return np.asarray(head.predict(X)).reshape(len(Z), -1), None


def cross_validate(
    omi,
    Z: np.ndarray,
    block_sizes: Sequence[int],
    models: Sequence[str],
    *,
    folds: int = 5,
    settings: HeadSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> CVResult:
    """Image-disjoint K-fold over the faces of ``omi`` (rows of ``Z`` follow ``omi.means``).

    Parameters
    ----------
    omi : Bunch from :func:`skpercept.datasets.load_omi`
    Z : ndarray of shape (n_faces, n_features)
        Raw embeddings, one row per face in ``omi.means`` order.
    block_sizes : sequence of int
        Backbone blocks of ``Z`` for the BlockScaler (fitted on training faces only).
    models : sequence of {'ridge', 'ranker', 'classifier', 'regressor'}
    folds : int, default=5
    settings : HeadSettings or None
    progress : callable or None
        Called with a one-line message after each fitted model.

    Returns
    -------
    result : CVResult
    """
    import time

    from skpercept.model_selection import ImageDisjointSplit

    settings = settings or HeadSettings()
    attributes = list(omi.attributes)
    means = omi.means[attributes].to_numpy(np.float64)
    ratings = long_ratings(omi)
    se = standard_errors(omi)
    cv = ImageDisjointSplit(n_splits=folds, random_state=settings.seed)
    rows = []
    result = CVResult(attributes=attributes, metrics=pd.DataFrame())
    for model in models:
        result.scores[model] = np.full(means.shape, np.nan)
        result.seconds[model] = 0.0
    for fold, (train, test) in enumerate(cv.split(omi.means[["image"]])):
        test_ratings = ratings[ratings["face"].isin(test)]
        position = pd.Series(np.arange(len(test)), index=test)
        for model in models:
            start = time.perf_counter()
            fitted = fit_head(model, Z, block_sizes, train, means, ratings, attributes, settings, se)
            scores, proba = face_scores(model, fitted, Z[test])
            result.seconds[model] += time.perf_counter() - start
            result.scores[model][test] = scores
            for k, attribute in enumerate(attributes):
                acc, rho = _pair_metrics(scores[:, k], means[test, k])
                row = {"model": model, "attribute": attribute, "fold": fold, "pair_acc": acc, "spearman": rho}
                if model == "ranker":
                    row["ece"] = _pair_calibration(result, attribute, scores[:, k], means[test, k])
                if proba is not None:
                    part = test_ratings[test_ratings["attribute"] == attribute]
                    classes = _classes(part["rating"].to_numpy())
                    face_rows = position.loc[part["face"].to_numpy()].to_numpy()
                    row.update(_rating_metrics(proba[k], face_rows, classes))
                    y, p = result.rating_curves.get(attribute, (np.empty(0), np.empty((0, 4))))
                    result.rating_curves[attribute] = (np.r_[y, classes], np.r_[p, proba[k][face_rows]])
                rows.append(row)
            if progress:
                done = [r for r in rows if r["model"] == model and r["fold"] == fold]
                progress(
                    f"fold {fold + 1}/{folds} {MODEL_LABELS[model]}: pair accuracy "
                    + " / ".join(f"{r['pair_acc']:.3f}" for r in done)
                )
    result.metrics = pd.DataFrame(rows)
    return result


def _classes(ratings_0_100: np.ndarray) -> np.ndarray:
    from skpercept.datasets import to_rating_classes

    return np.asarray(to_rating_classes(ratings_0_100.astype(np.float64)), dtype=np.int64)


def _pair_calibration(result: CVResult, attribute: str, scores: np.ndarray, means: np.ndarray) -> float:
    """ECE of P(left ≻ right) = σ(s_left − s_right) on all test pairs, by consensus order."""
    from skpercept.metrics import expected_calibration_error

    i, j = np.triu_indices(len(means), 1)
    keep = means[i] != means[j]
    i, j = i[keep], j[keep]
    y = (means[i] > means[j]).astype(np.float64)
    p = expit(scores[i] - scores[j])
    old_y, old_p = result.pair_curves.get(attribute, (np.empty(0), np.empty(0)))
    result.pair_curves[attribute] = (np.r_[old_y, y], np.r_[old_p, p])
    return float(expected_calibration_error(y, p))


def noise_ceiling_table(omi, seed: int = 0) -> pd.DataFrame:
    """Per attribute: the raters' pair-order ceiling and the rating metrics of each face's own
    modal class (an in-sample oracle: what knowing every face's rating distribution gives)."""
    from skpercept.metrics import noise_ceiling, quadratic_weighted_kappa

    ceiling = noise_ceiling(
        omi.ratings, item_col="image", rating_col="rating", group_col="attribute", random_state=seed
    )
    out = {}
    for attribute in omi.attributes:
        part = omi.ratings[omi.ratings["attribute"] == attribute]
        classes = pd.Series(_classes(part["rating"].to_numpy()), index=part.index)
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
    """Readable table: per attribute, the noise ceiling row then one row per model, with the
    fraction of the ceiling's headroom reached ``(acc − 0.5) / (ceiling − 0.5)``."""
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
    columns = [
        "attribute",
        "model",
        "pair_acc",
        "spearman",
        "headroom",
        "rating_acc",
        "rating_mae",
        "qwk",
        "ece",
    ]
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in columns if c in table.columns]).set_index(["attribute", "model"])
