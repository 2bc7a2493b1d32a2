"""Featurizers: registered backbones side by side, each block scaled to equal total variance.

:func:`make_featurizer` is what ``skpercept fit``, the demo and the benchmarks put in front of
every head: image paths in, one balanced feature row per image out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion, Pipeline

from skpercept.preprocessing import BlockScaler

__all__ = ["backbone_dims", "embed_blocks", "make_featurizer"]


def backbone_dims(backbones: dict) -> list[int]:
    """Output width of each backbone (builds each model once; reads no image).

    Examples
    --------
    Tiny random-weights timm models (they run offline):

    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.recipes import backbone_dims
    >>> backbones = {
    ...     "cnn": TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu"),
    ...     "vit": TimmEmbedder(model_name="test_vit", pretrained=None, device="cpu"),
    ... }
    >>> backbone_dims(backbones)
    [256, 64]
    """
    return [int(clone(b).fit(pd.Series(["unused"])).embedding_dim_) for b in backbones.values()]


def make_featurizer(backbones: dict, block_sizes: Sequence[int] | None = None):
    """Unfitted ``Pipeline([('embed', FeatureUnion(backbones)), ('scale', BlockScaler)])``.

    Image paths in, one balanced feature row per image out. ``block_sizes`` (the width of each
    backbone's block) defaults to :func:`backbone_dims`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.recipes import make_featurizer
    >>> backbones = {
    ...     "cnn": TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu"),
    ...     "vit": TimmEmbedder(model_name="test_vit", pretrained=None, device="cpu"),
    ... }
    >>> featurizer = make_featurizer(backbones, block_sizes=[256, 64])
    >>> [name for name, _ in featurizer.steps], featurizer[-1].block_sizes
    (['embed', 'scale'], [256, 64])
    >>> images = pd.Series([np.full((32, 32, 3), v, dtype=np.uint8) for v in (0, 128, 255)], name="image")
    >>> featurizer.fit_transform(images).shape
    (3, 320)
    """
    sizes = list(block_sizes) if block_sizes is not None else backbone_dims(backbones)
    return Pipeline(
        [("embed", FeatureUnion(list(backbones.items()))), ("scale", BlockScaler(block_sizes=sizes))]
    )


def embed_blocks(backbones: dict, images: Sequence) -> tuple[np.ndarray, list[int]]:
    """Raw embeddings of ``images`` (backbone blocks side by side, float32) and the block widths.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import TimmEmbedder
    >>> from skpercept.recipes import embed_blocks
    >>> backbones = {
    ...     "cnn": TimmEmbedder(model_name="test_efficientnet", pretrained=None, device="cpu"),
    ...     "vit": TimmEmbedder(model_name="test_vit", pretrained=None, device="cpu"),
    ... }
    >>> images = [np.full((32, 32, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    >>> Z, sizes = embed_blocks(backbones, images)
    >>> Z.shape, Z.dtype, sizes
    ((3, 320), dtype('float32'), [256, 64])
    """
    union = FeatureUnion(list(backbones.items()))
    Z = union.fit_transform(pd.Series(list(images), name="image"))
    return np.asarray(Z, dtype=np.float32), [int(t.embedding_dim_) for _, t in union.transformer_list]
