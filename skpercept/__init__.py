"""skpercept: scikit-learn estimators that learn how people perceive images.

Data flows one way: images → vectors (``skpercept.embed``) → heads (rating, ranking) →
scores and reports (``skpercept.metrics``). Public names are imported lazily so that
``import skpercept`` stays cheap and optional extras are only needed when used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'skpercept' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
