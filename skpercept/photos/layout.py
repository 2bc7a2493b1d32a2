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

import numbers
import os
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["LayoutEmbedder"]


class LayoutEmbedder(TransformerMixin, BaseEstimator):
    """Images to a layout descriptor for near-duplicate grouping (a coarse grid of CNN features).

    See the module docstring for what the descriptor holds and why. On the degraded-series
    benchmark (``benchmarks/photo_series.py``: 200 held-out OMI faces x 8 versions, blurred,
    noisy, compressed, over- or under-exposed, shifted) it lifts near-duplicate retrieval and
    grouping well above the pooled embedding of the same network; the README's "Photo
    collections" section has the figures. Stage, grid and thumbnail size were chosen on that
    benchmark's training faces only.

    Parameters
    ----------
    model_name : str, default='efficientnet_lite0'
        A timm model with ``forward_intermediates`` (most convolutional networks in timm).
    pretrained : {'auto'}, path-like or None, default='auto'
        As for :class:`~skpercept.embed.TimmEmbedder`: ``'auto'`` is the shipped
        EfficientNet-Lite0 weights for that model, a path a local checkpoint, None random
        weights (seeded, the same in every process; only useful in tests).
    stage : int, default=3
        Which of the network's feature maps to use (0 = highest resolution); see
        ``model.feature_info``.
    grid : int, default=4
        The feature map is averaged over ``grid x grid`` cells.
    thumbnail : int, default=8
        Side of the grey thumbnail; 0 leaves it out.
    thumbnail_weight : float, default=1.0
        Scale of the (unit-length) thumbnail part against the (unit-length) feature part.
    side : int, default=224
        Images are resized to ``side x side`` before the network.
    device : str, default='auto'
        ``'auto'`` uses CUDA when available.
    batch_size : int or 'auto', default='auto'
        Images per forward pass; ``'auto'``: 8 on the CPU (small batches ran about twice as
        fast as batches of 64 there), 64 on a GPU.
    on_error : {'raise', 'nan'}, default='raise'
        An image that cannot be loaded raises :class:`~skpercept.embed.ImageLoadError`, or
        (``'nan'``) gets a row of NaN and one :class:`~skpercept.embed.BadImageWarning` lists them.
    progress : bool, default=False
        A tqdm bar over the batches.

    Attributes
    ----------
    n_channels_ : int
        Channels of the chosen feature map.
    embedding_dim_ : int
        ``n_channels_ * grid**2 + thumbnail**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.photos import LayoutEmbedder
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    >>> Z = LayoutEmbedder(pretrained=None, side=64, device="cpu").fit_transform(images)
    >>> Z.shape
    (3, 1856)
    >>> np.allclose(np.linalg.norm(Z, axis=1), np.sqrt(2))  # two unit-length parts
    True
    """

    def __init__(
        self,
        *,
        model_name: str = "efficientnet_lite0",
        pretrained: str | os.PathLike | None = "auto",
        stage: int = 3,
        grid: int = 4,
        thumbnail: int = 8,
        thumbnail_weight: float = 1.0,
        side: int = 224,
        device: str = "auto",
        batch_size: int | str = "auto",
        on_error: str = "raise",
        progress: bool = False,
    ) -> None:
        self.model_name = model_name
        self.pretrained = pretrained
        self.stage = stage
        self.grid = grid
        self.thumbnail = thumbnail
        self.thumbnail_weight = thumbnail_weight
        self.side = side
        self.device = device
        self.batch_size = batch_size
        self.on_error = on_error
        self.progress = progress

    # -- scikit-learn API ---------------------------------------------------------------------
    def fit(self, X: Any = None, y: Any = None) -> LayoutEmbedder:
        """Check the parameters and build the network (reads no image)."""
        names = ("stage", "grid", "thumbnail", "side") + (
            () if self.batch_size == "auto" else ("batch_size",)
        )
        for name, low in zip(names, (0, 1, 0, 16, 1)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if not (isinstance(self.thumbnail_weight, numbers.Real) and self.thumbnail_weight >= 0):
            raise ValueError(f"thumbnail_weight must be a number >= 0, got {self.thumbnail_weight!r}.")
        if self.on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {self.on_error!r}.")
        for name in ("_model", "_norm"):  # parameters may have changed since the last fit
            self.__dict__.pop(name, None)
        model = self._network()
        self.n_channels_ = int(model.feature_info[self.stage]["num_chs"])
        self.embedding_dim_ = self.n_channels_ * self.grid**2 + self.thumbnail**2
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Descriptors of the images: an (n_images, embedding_dim_) float32 array.

        Parameters
        ----------
        X : sequence of images, Series, one-column DataFrame, or an N x H x W (x C) array
            File paths, PIL images or arrays.
        """
        import torch
        from tqdm.auto import tqdm

        from skpercept.embed import BadImageWarning, ImageLoadError
        from skpercept.embed._inputs import object_table

        check_is_fitted(self, "embedding_dim_")
        table = object_table(X)
        if table.shape[1] != 1:
            raise ValueError(f"LayoutEmbedder takes one column of images, got {table.shape[1]}.")
        sources = table[:, 0]
        model = self._network()
        out = np.full((len(sources), self.embedding_dim_), np.nan, dtype=np.float32)
        failed = []
        batch_size = self.batch_size
        if batch_size == "auto":
            batch_size = 8 if next(model.parameters()).device.type == "cpu" else 64
        starts = range(0, len(sources), batch_size)
        for start in tqdm(starts, disable=not self.progress, desc="layout", unit="batch"):
            images, rows = [], []
            for row in range(start, min(start + batch_size, len(sources))):
                try:
                    images.append(self._load(sources[row]))
                except ImageLoadError as exc:
                    if self.on_error == "raise":
                        raise ImageLoadError(exc.source, f"row {row}: {exc.reason}") from None
                    failed.append(str(exc.source))
                    continue
                rows.append(row)
            if images:
                with torch.inference_mode():
                    out[rows] = self._describe(model, images)
        if failed:
            warnings.warn(
                f"{len(failed)} image(s) could not be loaded; their rows are NaN: {failed[:10]}",
                BadImageWarning,
                stacklevel=2,
            )
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "embedding_dim_")
        return np.array([f"layout_{i}" for i in range(self.embedding_dim_)], dtype=object)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_model", "_norm"):  # rebuilt on first use; pickles stay small
            state.pop(name, None)
        return state

    # -- internals ----------------------------------------------------------------------------
    def _network(self):
        cached = getattr(self, "_model", None)
        if cached is not None:
            return cached
        import timm
        import torch

        from skpercept.embed.towers import create_timm_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # random weights (pretrained=None) are the same in every process
            model = create_timm_model(self.model_name, self.pretrained)
        model.eval().requires_grad_(False)
        if not hasattr(model, "forward_intermediates"):
            raise ValueError(f"timm model {self.model_name!r} has no forward_intermediates.")
        if self.stage >= len(model.feature_info):
            raise ValueError(
                f"stage must be below {len(model.feature_info)} for {self.model_name!r}, got {self.stage}."
            )
        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        config = timm.data.resolve_model_data_config(model)
        self._norm = (
            torch.tensor(config["mean"], device=device).view(1, 3, 1, 1),
            torch.tensor(config["std"], device=device).view(1, 3, 1, 1),
        )
        # NHWC: EfficientNet's depthwise convolutions run about twice as fast so, on CPU and GPU
        self._model = model.to(device).to(memory_format=torch.channels_last)
        return self._model

    def _load(self, source: Any):
        from PIL import Image

        from skpercept.embed import load_image

        image = load_image(source, None, self.side)
        return image.resize((self.side, self.side), Image.BILINEAR)

    def _describe(self, model, images: list) -> np.ndarray:
        import torch
        import torch.nn.functional as F
        from PIL import Image

        device = next(model.parameters()).device
        pixels = np.stack([np.asarray(image, dtype=np.float32) for image in images]) / 255.0
        mean, std = self._norm
        x = ((torch.from_numpy(pixels).permute(0, 3, 1, 2).to(device) - mean) / std).contiguous(
            memory_format=torch.channels_last
        )
        (feature_map,) = model.forward_intermediates(x, indices=[self.stage], intermediates_only=True)
        cells = F.adaptive_avg_pool2d(feature_map.float(), self.grid).flatten(2)
        layout = (cells - cells.mean(dim=2, keepdim=True)).flatten(1)
        parts = [F.normalize(layout, dim=1).cpu().numpy()]
        if self.thumbnail:
            side = (self.thumbnail, self.thumbnail)
            tiny = np.stack(
                [
                    np.asarray(im.convert("L").resize(side, Image.BILINEAR), np.float32).ravel()
                    for im in images
                ]
            )
            tiny -= tiny.mean(axis=1, keepdims=True)
            norms = np.linalg.norm(tiny, axis=1, keepdims=True)
            parts.append(self.thumbnail_weight * tiny / np.where(norms > 0, norms, 1.0))
        return np.hstack(parts)
