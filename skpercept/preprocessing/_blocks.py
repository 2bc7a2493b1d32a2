"""Feature preprocessing for concatenated embeddings.

Concatenating two backbones' vectors (e.g. EfficientNet's 1,280-d and dlib's 128-d) gives the
wider one ten times the say in any L2-penalised or distance-based head. :class:`BlockScaler`
centres each block and scales it so that every backbone contributes the same total variance
whatever its width — the scaling that made the concatenation beat each backbone alone on OMI
(``benchmarks/omi.py``) — while the columns keep an average variance of 1, the input scale that
neural heads' default initialisation and learning rates expect.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._compat import fit_context
from skpercept._utils import SavedFormatMixin


class BlockScaler(SavedFormatMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Centre each block of columns and give every block the same total variance.

    For a block ``B`` (training rows), with ``p`` features in all and ``k`` blocks:
    ``B' = (B − mean) / sqrt(mean_i ||B_i − mean||² · k / p)``, so each block's mean squared
    row norm is ``p / k`` and the average column variance over all columns is 1. Within a
    block relative scales are kept (unlike a per-column ``StandardScaler``, which would
    inflate near-constant embedding dimensions); across blocks total variances are equal.

    Parameters
    ----------
    block_sizes : sequence of int or None, default=None
        Widths of consecutive column blocks; they must add up to the number of features.
        ``None``: all columns form one block.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        The divisor of each column (constant within a block; 1 for an all-constant block).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.preprocessing import BlockScaler
    >>> X = np.hstack([np.random.RandomState(0).normal(size=(50, 4)) * 10,
    ...                np.random.RandomState(1).normal(size=(50, 2))])
    >>> Z = BlockScaler(block_sizes=[4, 2]).fit_transform(X)
    >>> np.round([(Z[:, :4] ** 2).sum(1).mean(), (Z[:, 4:] ** 2).sum(1).mean()], 6)
    array([3., 3.])
    """

    _parameter_constraints: ClassVar[dict] = {"block_sizes": ["array-like", None]}

    def __init__(self, *, block_sizes: Sequence[int] | None = None) -> None:
        self.block_sizes = block_sizes

    def _blocks(self, n_features: int) -> list[slice]:
        # The sizes depend on the data's width, so they are checked here, not by the constraints.
        sizes = [n_features] if self.block_sizes is None else [int(s) for s in self.block_sizes]
        if any(s < 1 for s in sizes) or sum(sizes) != n_features:
            raise ValueError(
                f"block_sizes {list(self.block_sizes)} must be positive and add up to the "
                f"{n_features} features of X."
            )
        edges = np.cumsum([0] + sizes)
        return [slice(a, b) for a, b in itertools.pairwise(edges)]

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> BlockScaler:
        """Learn each block's mean and scale from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : BlockScaler
        """
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=True)
        self.mean_ = X.mean(axis=0).astype(np.float64)
        self.scale_ = np.ones(X.shape[1])
        blocks = self._blocks(X.shape[1])
        target = X.shape[1] / len(blocks)
        for block in blocks:
            centred = X[:, block] - self.mean_[block]
            norm = float(np.sqrt(np.mean(np.sum(centred.astype(np.float64) ** 2, axis=1)) / target))
            self.scale_[block] = norm if norm > 0 else 1.0
        return self

    def transform(self, X) -> np.ndarray:
        """Centre and scale ``X`` with the fitted block statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_scaled : ndarray of shape (n_samples, n_features), dtype of ``X`` (float32/64)
        """
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return ((X - self.mean_) / self.scale_).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
