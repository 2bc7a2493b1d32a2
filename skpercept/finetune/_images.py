"""Image batches for LoRA training: decode each image once, augment, stack unique images.

A batch is a set of rows (ratings or pairs). Each distinct image of the batch is decoded,
transformed and run through the tower once; rows then index into the stacked images, so a
pair batch costs one forward per image however many labelled pairs share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2

from skpercept.embed import load_image

AUGMENT_DEFAULTS = {"flip": True, "crop_scale": 0.85, "color_jitter": 0.1}


def check_augment(augment: bool | Mapping | None, defaults: Mapping = AUGMENT_DEFAULTS) -> dict | None:
    """Resolve ``augment`` into a dict of settings (None = no augmentation).

    ``defaults`` are the settings ``True`` stands for, and name the valid keys.
    """
    if augment is None or augment is False:
        return None
    if augment is True:
        return dict(defaults)
    if not isinstance(augment, Mapping):
        raise ValueError(f"augment must be a bool or a dict, got {augment!r}.")
    unknown = set(augment) - set(defaults)
    if unknown:
        raise ValueError(f"Unknown augment key(s) {sorted(unknown)}; valid keys: {sorted(defaults)}.")
    settings = {**defaults, **augment}
    if not 0 < settings["crop_scale"] <= 1:
        raise ValueError(f"augment['crop_scale'] must be in (0, 1], got {settings['crop_scale']}.")
    if settings["color_jitter"] < 0:
        raise ValueError(f"augment['color_jitter'] must be >= 0, got {settings['color_jitter']}.")
    if not 0 <= settings.get("grayscale", 0) <= 1:
        raise ValueError(
            f"augment['grayscale'] must be a probability in [0, 1], got {settings['grayscale']}."
        )
    return settings


def make_transform(size: int, mean, std, augment: dict | None) -> v2.Compose:
    """Tensor transform; random crop/flip/jitter only when ``augment`` is given (training)."""
    steps: list = [v2.ToImage()]
    if augment is None:
        steps += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    else:
        steps.append(v2.RandomResizedCrop(size, scale=(augment["crop_scale"], 1.0), antialias=True))
        if augment["flip"]:
            steps.append(v2.RandomHorizontalFlip())
        jitter = augment["color_jitter"]
        if jitter > 0:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        if augment.get("grayscale", 0) > 0:
            steps.append(v2.RandomGrayscale(p=augment["grayscale"]))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def _key(source):
    # Paths are compared by value; in-memory images (PIL, arrays) by identity.
    return str(source) if isinstance(source, (str, PathLike)) else id(source)


class ImageTable:
    """Distinct images of a frame's image columns, and each row's codes into them."""

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self.sources: list = []
        index: dict = {}
        codes = np.empty((len(frame), len(columns)), dtype=np.int64)
        for j, column in enumerate(columns):
            for i, source in enumerate(frame[column].tolist()):
                if source is None or (isinstance(source, float) and np.isnan(source)):
                    raise ValueError(
                        f"Missing image in column {column!r} at row {i} (index label {frame.index[i]!r})."
                    )
                key = _key(source)
                if key not in index:
                    index[key] = len(self.sources)
                    self.sources.append(source)
                codes[i, j] = index[key]
        self.codes = codes


class ImageRows(torch.utils.data.Dataset):
    """Rows of (image codes, user index, label); items are row numbers, collated by ImageCollate."""

    def __init__(self, codes: np.ndarray, users: np.ndarray, y: np.ndarray | None) -> None:
        self.codes = codes
        self.users = users
        self.y = y

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> int:
        return i


class ImageCollate:
    """Build ``({'images', 'index', 'users'}, y)`` batches from row numbers.

    Decoded images are cached (as PIL) across epochs when ``cache`` is True: decoding is
    redone otherwise on every epoch, which dominates on small towers. Decoding is the
    embedders' (:func:`~skpercept.embed.load_image` with ``target_size``): large files are
    decoded at reduced scale (JPEG draft mode, then an integer box filter for any format), so
    a cached photo takes about the tower's input size in memory, not its full resolution.
    Random augmentations run per epoch on these cached PIL images, so decoding stays on the
    CPU here: with the cache on, each image is decoded once per run.
    """

    def __init__(
        self,
        rows: ImageRows,
        sources: list,
        transform,
        *,
        image_root=None,
        target_size: int | None = None,
        cache: dict | None = None,
    ) -> None:
        self.rows = rows
        self.target_size = target_size
        self.sources = sources
        self.transform = transform
        self.image_root = image_root
        self.cache = cache

    def _image(self, code: int):
        if self.cache is not None and code in self.cache:
            return self.cache[code]
        image = load_image(self.sources[code], image_root=self.image_root, target_size=self.target_size)
        if self.cache is not None:
            self.cache[code] = image
        return image

    def __call__(self, batch: list[int]):
        rows = np.asarray(batch, dtype=np.int64)
        codes = self.rows.codes[rows]
        unique, inverse = np.unique(codes, return_inverse=True)
        images = torch.stack([self.transform(self._image(int(c))) for c in unique])
        X = {
            "images": images,
            "index": torch.as_tensor(inverse.reshape(codes.shape)),
            "users": torch.as_tensor(self.rows.users[rows]),
        }
        y = None if self.rows.y is None else torch.as_tensor(self.rows.y[rows])
        return X, y


class ImageBlockSampler(torch.utils.data.Sampler):
    """Batches built from blocks of images: all labelled rows inside each block.

    Each epoch the images are shuffled and cut into blocks of ``block_size``; a batch is every
    row (rating, or pair whose two images fall in the block) of one block. Dense pair
    designs then train on many pairs per image forward (32 images hold up to 496 pairs).
    Pairs straddling blocks wait for an epoch in which their images meet; with
    ``shuffle=False`` the blocks are fixed.
    """

    def __init__(self, codes: np.ndarray, block_size: int, *, shuffle: bool, seed: int) -> None:
        self.codes = codes
        self.block_size = block_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        # Only images that occur in these rows: codes index a table shared with held-out rows.
        self.images = np.unique(codes)

    def __iter__(self):
        images = self.rng.permutation(self.images) if self.shuffle else self.images
        block = np.zeros(int(self.images.max()) + 1 if self.images.size else 0, dtype=np.int64)
        block[images] = np.arange(images.size) // self.block_size
        blocks = block[self.codes]
        rows = np.flatnonzero((blocks == blocks[:, :1]).all(axis=1))
        groups = block[self.codes[rows, 0]]
        for b in np.unique(groups):
            yield rows[groups == b].tolist()

    def __len__(self) -> int:
        return max(1, -(-self.images.size // self.block_size))
