"""Scoring photos with a fitted skpercept model: which saved models are accepted, and how."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skpercept.heads import PairwiseRanker, RatingClassifier, RatingRegressor
from skpercept.persistence import load_model
from skpercept.preprocessing import PairFeatures

__all__ = ["load_photo_scorer", "photo_scorer"]

_ACCEPTED = (
    "rank accepts a Pipeline ending in a PairwiseRanker after PairFeatures (what `skpercept fit` saves "
    "for comparison tables), or a Pipeline of image features ending in a RatingClassifier or "
    "RatingRegressor (what it saves for rating tables), without per-user context"
)


def _pick_output(names: list[str], attribute: str | None) -> int:
    if attribute is None:
        if len(names) > 1:
            raise ValueError(
                f"the model predicts {len(names)} attributes {names}; choose one with --attribute."
            )
        return 0
    if attribute not in names:
        raise ValueError(f"the model has no attribute {attribute!r}; it has {names}.")
    return names.index(attribute)


def photo_scorer(model: Any, attribute: str | None = None) -> Callable[[Sequence[Any]], np.ndarray]:
    """A function from image paths to one score each (higher = better) for a fitted model.

    Accepted models (scikit-learn Pipelines taking image paths, as ``skpercept fit`` saves them):

    - ``Pipeline([..., PairFeatures(item_transformer=...), PairwiseRanker])``: the ranker's
      latent item score, :meth:`~skpercept.heads.PairwiseRanker.score_items`, on the item
      features;
    - ``Pipeline([features, RatingClassifier])``: the expected rating ``Σ level · P(level)``;
    - ``Pipeline([features, RatingRegressor])``: the predicted rating.

    Per-user models (a user context) are refused: a photo set has no rater.

    Parameters
    ----------
    model : fitted Pipeline
    attribute : str or None, default=None
        Which attribute of a multi-attribute model to score by (names from the model's
        ``skpercept_info_``, else ``'0'``, ``'1'``, ...); required when there are several.

    Returns
    -------
    score : callable
        ``score(paths) -> ndarray of shape (n_paths,)``.

    Raises
    ------
    ValueError
        For any other model, naming what is accepted.

    Examples
    --------
    A rating pipeline on image paths (a tiny random-weights backbone, so it runs offline):

    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import make_pipeline
    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.photos import photo_scorer
    >>> folder = tempfile.TemporaryDirectory()
    >>> files = [str(pathlib.Path(folder.name) / f"grey{level}.png") for level in (30, 90, 150, 210)]
    >>> for level, path in zip((30, 90, 150, 210), files):
    ...     Image.new("RGB", (32, 32), (level,) * 3).save(path)
    >>> embedder = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu")
    >>> model = make_pipeline(embedder, RatingRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0))
    >>> model = model.fit(pd.Series(files, name="image"), [1.0, 2.0, 3.0, 4.0])
    >>> score = photo_scorer(model)
    >>> score(files).shape
    (4,)
    >>> photo_scorer(Ridge())
    Traceback (most recent call last):
    ...
    ValueError: it holds a Ridge, not a Pipeline from image paths; rank accepts ...
    >>> folder.cleanup()
    """

    head = model[-1] if isinstance(model, Pipeline) else model
    if not isinstance(model, Pipeline) or len(model) < 2:
        raise ValueError(f"it holds a {type(model).__name__}, not a Pipeline from image paths; {_ACCEPTED}.")
    n_outputs = int(getattr(head, "n_outputs_", 1))
    names = [str(a) for a in getattr(model, "skpercept_info_", {}).get("attributes", range(n_outputs))]
    if len(names) != n_outputs:
        names = [str(k) for k in range(n_outputs)]
    if isinstance(head, PairwiseRanker):
        pairs = model[-2]
        if not isinstance(pairs, PairFeatures):
            raise ValueError(
                f"its PairwiseRanker follows a {type(pairs).__name__}, not PairFeatures; {_ACCEPTED}."
            )
        if getattr(pairs, "n_context_features_", 0):
            raise ValueError(
                "it is a per-user pair model (user context); a photo set has no user. " + _ACCEPTED
            )
        column = _pick_output(names, attribute)
        items = pairs.item_transformer_

        def score(paths):
            scores = np.asarray(
                head.score_items(items.transform(pd.Series(list(map(str, paths)), name="image")))
            )
            return scores.reshape(len(paths), -1)[:, column]

        return score
    if isinstance(head, (RatingClassifier, RatingRegressor)):
        features = model[:-1]
        if getattr(model, "skpercept_info_", {}).get("users") or "ColumnTransformer" in repr(features):
            raise ValueError(
                "it is a per-user rating model (user context); a photo set has no user. " + _ACCEPTED
            )
        column = _pick_output(names, attribute)

        def score(paths):
            X = features.transform(pd.Series(list(map(str, paths)), name="image"))
            if isinstance(head, RatingRegressor):
                return np.asarray(head.predict(X), dtype=np.float64).reshape(len(paths), -1)[:, column]
            proba = head.predict_proba(X)
            proba = proba if isinstance(proba, list) else [proba]
            levels = head.classes_ if not isinstance(head.classes_, list) else head.classes_[column]
            return proba[column] @ np.asarray(levels, dtype=np.float64)

        return score
    raise ValueError(f"it ends in a {type(head).__name__}; {_ACCEPTED}.")


def load_photo_scorer(path: str | os.PathLike, attribute: str | None = None):
    """:func:`photo_scorer` of a model saved by :func:`skpercept.persistence.save_model` (a safe
    ``.skops`` file, or a checked pickle: only load pickles you trust).

    Parameters
    ----------
    path : str or path-like
    attribute : str or None, default=None
        See :func:`photo_scorer`.

    Returns
    -------
    score : callable
        ``score(paths) -> ndarray of shape (n_paths,)``.

    Raises
    ------
    ValueError
        The file is missing, not a model file, damaged or changed, or holds a model that is not
        accepted.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np, pandas as pd
    >>> from PIL import Image
    >>> from sklearn.pipeline import make_pipeline
    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.persistence import save_model
    >>> from skpercept.photos import load_photo_scorer, photo_scorer
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(tmp.name)
    >>> files = [str(folder / f"grey{level}.png") for level in (30, 90, 150, 210)]
    >>> for level, path in zip((30, 90, 150, 210), files):
    ...     Image.new("RGB", (32, 32), (level,) * 3).save(path)
    >>> embedder = TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu")
    >>> model = make_pipeline(embedder, RatingRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0))
    >>> model = model.fit(pd.Series(files, name="image"), [1.0, 2.0, 3.0, 4.0])
    >>> save_model(model, folder / "model.skops")
    >>> score = load_photo_scorer(folder / "model.skops")
    >>> np.allclose(score(files), photo_scorer(model)(files))
    True
    >>> load_photo_scorer(folder / "missing.skops")
    Traceback (most recent call last):
    ...
    ValueError: no such file
    >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file" if not path.exists() else "not a file")
    try:
        model = load_model(path)
    except (ValueError, OSError) as exc:
        raise ValueError(str(exc).removeprefix(f"{path}: ").removeprefix(f"{path} ")) from exc
    except Exception as exc:
        raise ValueError(f"not a readable model file ({type(exc).__name__}: {exc})") from exc
    return photo_scorer(model, attribute)
