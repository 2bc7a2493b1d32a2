"""Ready-made settings shared by the ``skpercept`` command, the benchmarks and the examples.

- Backbones: :func:`make_backbones` (EfficientNet-Lite0 with shipped ImageNet weights, optionally
  flip-averaged; dlib's face descriptor when the ``[face]`` extra is installed),
  :func:`backbone_dims`, :func:`embed_blocks`.
- Featurizer: :func:`make_featurizer`, backbones side by side balanced by
  :class:`~skpercept.preprocessing.BlockScaler`.
- Heads: :class:`HeadSettings` and :func:`make_head` (``'ridge'``, ``'ranker'``,
  ``'classifier'``, ``'regressor'``), run under :func:`torch_threads`.
- Environment: :func:`default_cache_dir` (the embedding cache), :func:`dlib_available`.

Everything here returns unfitted estimators; nothing reads images or trains at import time.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: The ordinal classes of a 1–4 rating scale (what ``to_rating_classes`` makes of 0–100 ratings).
RATING_LEVELS = np.array([1, 2, 3, 4])
#: Head kinds :func:`make_head` knows.
HEAD_KINDS = ("ridge", "ranker", "classifier", "regressor", "ranker-default", "regressor-default")
BACKBONES = ("lite0", "dlib")


def default_cache_dir() -> Path:
    """Where embeddings are cached.

    ``$SKPERCEPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/skpercept``, else ``~/.cache/skpercept``.

    Examples
    --------
    >>> from skpercept.presets import default_cache_dir
    >>> default_cache_dir().is_absolute()
    True
    """
    if os.environ.get("SKPERCEPT_CACHE_DIR"):
        return Path(os.environ["SKPERCEPT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "skpercept"


def dlib_available() -> bool:
    """True when the ``[face]`` extra (``dlib`` and ``face_recognition_models``) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))


# -- features -----------------------------------------------------------------------------------
def make_backbones(
    names: Sequence[str] = BACKBONES,
    *,
    flip: bool = True,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
    num_workers: int = 2,
) -> dict:
    """Unfitted embedders by name, in the order given.

    Parameters
    ----------
    names : sequence of {'lite0', 'dlib'}, default=('lite0', 'dlib')
        ``'lite0'``: :class:`~skpercept.embed.TimmEmbedder` with the shipped EfficientNet-Lite0
        weights and ``crop_pct=1.0`` (the whole image resized to 224 px). ``'dlib'``:
        :class:`~skpercept.embed.DlibFaceEmbedder` (needs the ``[face]`` extra).
    flip : bool, default=True
        Average each image's lite0 vector with its mirror image's. dlib ignores it: mirroring
        doubles its slowest step for no measured gain.
    cache_dir, device, progress, num_workers :
        Passed to every embedder.

    Returns
    -------
    backbones : dict of str to embedder
        Raw (un-normalised) vectors: scaling is the featurizer's job.

    Examples
    --------
    >>> from skpercept.presets import make_backbones
    >>> list(make_backbones(["lite0"], cache_dir=None))
    ['lite0']
    """
    from skpercept.embed.timm import TimmEmbedder

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
    """Unfitted ``Pipeline([('embed', FeatureUnion(backbones)), ('scale', BlockScaler)])``.

    Image paths in, one balanced feature row per image out. ``block_sizes`` (the width of each
    backbone's block) defaults to :func:`backbone_dims`.
    """
    from sklearn.pipeline import FeatureUnion, Pipeline

    from skpercept.preprocessing import BlockScaler

    sizes = list(block_sizes) if block_sizes is not None else backbone_dims(backbones)
    return Pipeline(
        [("embed", FeatureUnion(list(backbones.items()))), ("scale", BlockScaler(block_sizes=sizes))]
    )


def embed_blocks(backbones: dict, images: Sequence) -> tuple[np.ndarray, list[int]]:
    """Raw embeddings of ``images`` (backbone blocks side by side, float32) and the block widths."""
    from sklearn.pipeline import FeatureUnion

    union = FeatureUnion(list(backbones.items()))
    Z = union.fit_transform(pd.Series(list(images), name="image"))
    return np.asarray(Z, dtype=np.float32), [int(t.embedding_dim_) for _, t in union.transformer_list]


# -- heads --------------------------------------------------------------------------------------
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
    device : str, default='auto'
    seed : int, default=0
    threads : int or None, default=1
        torch and BLAS CPU threads while training heads (``None``: leave them alone). These
        MLPs are too small to gain from a second thread, and on a busy machine OpenMP threads
        waiting on each other slow a fit down many times over.

    Examples
    --------
    >>> from skpercept.presets import HeadSettings
    >>> HeadSettings.quick(seed=3).max_epochs, HeadSettings.quick(seed=3).seed
    (3, 3)
    """

    n_pairs: int = 3000
    ratings_per_face: int = 6
    hidden: tuple[int, ...] = (128,)
    max_epochs: int = 20
    patience: int = 5
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
            device=self.device,
            random_state=self.seed,
        )


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads and BLAS threads (``None``: leave them alone).

    Both thread counts are restored on exit, also when the block raises.
    """
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


def head_family(kind: str) -> str:
    """The task family of a head kind: ``'ranker-default'`` trains and predicts as ``'ranker'``.

    >>> head_family("regressor-default")
    'regressor'
    """
    return kind.removesuffix("-default")


def make_head(kind: str, settings: HeadSettings | None = None):
    """An unfitted head of the given kind with the preset settings.

    Parameters
    ----------
    kind : {'ridge', 'ranker', 'classifier', 'regressor', 'ranker-default', 'regressor-default'}
        ``'ridge'``: ``RidgeCV`` with a penalty per attribute (targets: mean ratings);
        ``'ranker'``: :class:`~skpercept.ranking.PairwiseRanker` (targets: pair labels);
        ``'classifier'``: :class:`~skpercept.rating.RatingClassifier` (CORN loss, classes
        :data:`RATING_LEVELS`); ``'regressor'``: :class:`~skpercept.rating.RatingRegressor`.
        The ``'-default'`` kinds are the same heads with their constructor defaults (only
        ``device`` and ``random_state`` from ``settings``): what a new user gets.
    settings : HeadSettings or None
        None uses ``HeadSettings()``; ridge ignores it.

    Returns
    -------
    head : unfitted estimator

    Examples
    --------
    >>> from skpercept.presets import make_head
    >>> type(make_head("ridge")).__name__
    'RidgeCV'
    """
    settings = settings if settings is not None else HeadSettings()
    if kind == "ridge":
        from sklearn.linear_model import RidgeCV

        # one SVD serves every attribute; each attribute still gets its own alpha (efficient LOO)
        return RidgeCV(alphas=np.logspace(-2, 4, 13), alpha_per_target=True)
    if kind == "ranker-default":
        from skpercept.ranking import PairwiseRanker

        return PairwiseRanker(device=settings.device, random_state=settings.seed)
    if kind == "regressor-default":
        from skpercept.rating import RatingRegressor

        return RatingRegressor(device=settings.device, random_state=settings.seed)
    if kind == "ranker":
        from skpercept.ranking import PairwiseRanker

        return PairwiseRanker(batch_size=256, **settings.mlp_params())
    if kind == "classifier":
        from skpercept.rating import RatingClassifier

        return RatingClassifier(loss="corn", classes=RATING_LEVELS, batch_size=256, **settings.mlp_params())
    if kind == "regressor":
        from skpercept.rating import RatingRegressor

        return RatingRegressor(batch_size=64, **settings.mlp_params())
    raise ValueError(f"Unknown model {kind!r}; choose from {HEAD_KINDS}.")
