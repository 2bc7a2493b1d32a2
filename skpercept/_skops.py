"""skpercept's estimators among the types skops trusts by default, as it trusts scikit-learn's.

skops (and MLflow, which saves scikit-learn models with it) rebuilds a model only from types it
trusts; by default those are scikit-learn's estimators. A skpercept estimator keeps its fitted
state as plain data (weights as NumPy arrays, histories as lists), so rebuilding one runs
nothing that a scikit-learn estimator's rebuilding would not, and ``import skpercept`` adds the
classes named in :data:`TRUSTED_TYPES` (and pathlib's paths, which parameters such as
``cache_dir`` hold) to skops's default trust. ``mlflow.sklearn.log_model(model)`` then works
with MLflow's defaults and ``mlflow.pyfunc.load_model`` reads the model back in any process
that has imported skpercept. Any other type a file names stays untrusted: a file naming
``builtins.eval`` or a skorch internal is still refused.

As with scikit-learn's estimators, a trusted file chooses the parameters of what it builds; a
LoRA estimator whose ``model_name`` names a model hub downloads that base when it is loaded
(weights only: checkpoints are read with ``weights_only=True``). Load files you did not make
with :func:`skpercept.persistence.load_model`, which refuses any type outside this list before
building anything.

skops computes its default list when ``skops.io`` is first imported; importing skpercept does
not import skops (it is slow to import): the names are added when skops is imported, or at
once if it already is.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

#: The module of skops that holds its default trusted type names.
_SKOPS_TRUST = "skops.io._trusted_types"

#: The classes a skpercept model file may hold; ``tests/test_persistence.py`` checks that this
#: is :func:`skpercept.persistence.trusted_types` (which imports every subpackage to find them).
TRUSTED_TYPES = (
    "pathlib.PosixPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.WindowsPath",
    "skpercept.embed._clip.CLIPEmbedder",
    "skpercept.embed._dlib.DlibFaceEmbedder",
    "skpercept.embed._layout.LayoutEmbedder",
    "skpercept.embed._timm.TimmEmbedder",
    "skpercept.embed.base.BaseEmbedder",
    "skpercept.embed.towers.TowerSpec",
    "skpercept.finetune._contrastive.ContrastiveEmbedder",
    "skpercept.finetune._estimators.LoRAPairwiseRanker",
    "skpercept.finetune._estimators.LoRARatingClassifier",
    "skpercept.heads._joint.JointRatingRanker",
    "skpercept.heads._ranking.PairwiseRanker",
    "skpercept.heads._rating.RatingClassifier",
    "skpercept.heads._rating.RatingRegressor",
    "skpercept.label._learner.EmbeddingLookup",
    "skpercept.model_selection._search.PerceptSearchCV",
    "skpercept.personal._users.UserEncoder",
    "skpercept.preprocessing._blocks.BlockScaler",
    "skpercept.preprocessing._pairs.PairFeatures",
)


def _add_to(trust: ModuleType) -> None:
    # skops's object nodes trust this list (read when a file is audited, not copied at import);
    # a skops without it keeps its own defaults (skpercept's load_model does not need them)
    names = getattr(trust, "SKLEARN_ESTIMATOR_TYPE_NAMES", None)
    if isinstance(names, list):
        names.extend(name for name in TRUSTED_TYPES if name not in names)


class _Loader(importlib.abc.Loader):
    """skops's own loader of its trust module, adding the names once the module has run."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _add_to(module)


class _TrustWhenImported(importlib.abc.MetaPathFinder):
    """Finds skops's trust module through the other finders and wraps its loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _SKOPS_TRUST:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


def trust_skpercept_in_skops() -> None:
    """Add :data:`TRUSTED_TYPES` to skops's default trust, now or when skops is imported."""
    if _SKOPS_TRUST in sys.modules:
        _add_to(sys.modules[_SKOPS_TRUST])
    elif not any(isinstance(f, _TrustWhenImported) for f in sys.meta_path):
        try:
            installed = importlib.util.find_spec("skops") is not None
        except ValueError:  # a half-imported skops
            installed = False
        if installed:
            sys.meta_path.insert(0, _TrustWhenImported())
