"""Small helpers shared across skpercept: device resolution, seeding, optional imports."""

from __future__ import annotations

import importlib
import random
from types import ModuleType

import numpy as np

_DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str | None) -> str:
    """Turn a user ``device`` string into a concrete torch device string.

    ``'auto'`` (or ``None``) picks ``'cuda'`` when a GPU is visible, else ``'cpu'``.
    ``'cuda'`` without a visible GPU is an error rather than a silent fallback, so a user who
    asked for the GPU learns that they did not get it. Indexed forms such as ``'cuda:1'`` pass.
    """
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or device.split(":")[0] not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES} (or 'cuda:N'), got {device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return device


def seed_everything(random_state: int | np.random.RandomState | None) -> int | None:
    """Seed Python, NumPy and torch from ``random_state``; return the integer seed used.

    ``None`` leaves the global generators alone (non-reproducible runs stay cheap).
    A ``RandomState`` instance is turned into a fresh integer seed drawn from it.
    """
    if random_state is None:
        return None
    import torch

    if isinstance(random_state, np.random.RandomState):
        seed = int(random_state.randint(0, 2**31 - 1))
    else:
        seed = int(random_state)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return seed


def optional_import(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{module!r} is required for this feature; install it with `pip install 'skpercept[{extra}]'`."
        ) from exc
