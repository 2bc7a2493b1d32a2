"""Small fitted models of every kind the client tests save: heads, pair Pipelines (shared and
personal), embedders (with bundled or random weights) and a LoRA estimator, on a few images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.pipeline import make_pipeline

from skpercept.embed import TimmEmbedder
from skpercept.heads import JointRatingRanker, PairwiseRanker, RatingClassifier, RatingRegressor, join_labels
from skpercept.personal import UserEncoder
from skpercept.preprocessing import PairFeatures

HEAD = dict(hidden_layer_sizes=(8,), max_epochs=3, early_stopping=False, device="cpu", random_state=0)


def images(folder: Path, n: int = 8) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    paths = []
    for i in range(n):
        pixels = rng.randint(0, 255, (40, 40, 3)).astype(np.uint8)
        pixels[..., 0] = 25 * i
        path = folder / f"{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def pair_table(paths: list[str], n: int = 48) -> tuple[pd.DataFrame, np.ndarray]:
    """Pairs of the images judged by two people; the redder image wins."""
    rng = np.random.RandomState(1)
    a, b = rng.randint(0, len(paths), (2, 3 * n))
    keep = np.flatnonzero(a != b)[:n]
    a, b = a[keep], b[keep]
    X = pd.DataFrame(
        {
            "image_a": np.asarray(paths)[a],
            "image_b": np.asarray(paths)[b],
            "user_id": np.where(keep % 2, "ann", "bob"),
        }
    )
    return X, (a > b).astype(float)


def embedder(**params) -> TimmEmbedder:
    return TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu", **params)


def fitted_models(folder: Path) -> dict[str, tuple[object, object]]:
    """name -> (fitted model, the X it predicts on)."""
    paths = images(folder)
    X_pairs, y_pairs = pair_table(paths)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 6))
    models = {
        "RatingClassifier": (RatingClassifier(**HEAD).fit(X, np.digitize(X[:, 0], [-0.5, 0.5]) + 1), X),
        "RatingRegressor": (RatingRegressor(**HEAD).fit(X, np.column_stack([X[:, 0], X[:, 1]])), X),
        "PairwiseRanker": (PairwiseRanker(**HEAD).fit(X, (X[:, 0] > X[:, 3]).astype(float)), X),
        "JointRatingRanker": _joint(X),
    }
    pair = make_pipeline(
        PairFeatures(item_transformer=embedder(), context_columns=()), PairwiseRanker(**HEAD)
    )
    models["pair Pipeline"] = (
        pair.fit(X_pairs[["image_a", "image_b"]], y_pairs),
        X_pairs[["image_a", "image_b"]],
    )
    personal = make_pipeline(
        PairFeatures(item_transformer=embedder(), context_transformer=UserEncoder()),
        PairwiseRanker(user_features="auto", **HEAD),
    )
    models["personal Pipeline"] = (personal.fit(X_pairs, y_pairs), X_pairs)
    image_frame = pd.DataFrame({"image": paths})
    models["TimmEmbedder(bundle_weights=True)"] = (
        embedder(bundle_weights=True).fit(image_frame),
        image_frame,
    )
    return models


def _joint(X: np.ndarray):
    items, rng = X[:, :3], np.random.RandomState(2)
    a, b = rng.randint(0, len(items), size=(2, 80))
    X_joint, y = join_labels(
        items,
        np.digitize(items[:, 0], [-0.5, 0.5]) + 1,
        np.hstack([items[a], items[b]]),
        (items[a, 0] > items[b, 0]).astype(float),
    )
    return JointRatingRanker(**HEAD).fit(X_joint, y), X_joint


def lora_model(folder: Path):
    from tests.finetune.test_lora import _ranker  # the LoRA tests' tiny ranker

    X, y = pair_table(images(folder), n=24)
    lora = _ranker(max_epochs=1, hidden_layer_sizes=(8,))
    return lora.fit(X, pd.DataFrame({"red": y})), X


def outputs(model, X) -> list[np.ndarray]:
    """Every prediction a model gives: predict, predict_proba (per attribute), transform."""
    out = []
    for method in ("predict", "predict_proba", "transform"):
        if hasattr(model, method):
            value = getattr(model, method)(X)
            out.extend(np.asarray(v, dtype=float) for v in (value if isinstance(value, list) else [value]))
    return out
