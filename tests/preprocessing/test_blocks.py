"""BlockScaler: equal total variance per block, average column variance 1, sklearn contract."""

from __future__ import annotations

import numpy as np
import pytest

from skpercept.preprocessing import BlockScaler


def test_blocks_get_equal_total_variance():
    rng = np.random.RandomState(0)
    X = np.hstack([rng.normal(5, 10, size=(200, 12)), rng.normal(-1, 0.01, size=(200, 3))])
    scaler = BlockScaler(block_sizes=[12, 3]).fit(X)
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)
    totals = [(Z[:, :12] ** 2).sum(1).mean(), (Z[:, 12:] ** 2).sum(1).mean()]
    np.testing.assert_allclose(totals, [7.5, 7.5])  # 15 features / 2 blocks
    assert Z.var(axis=0).mean() == pytest.approx(1.0)
    # relative scales inside a block are kept
    ratio = X[:, :12].std(0) / Z[:, :12].std(0)
    np.testing.assert_allclose(ratio, ratio[0])


def test_constant_block_and_dtype():
    X = np.hstack([np.ones((5, 2)), np.arange(5.0)[:, None]]).astype(np.float32)
    Z = BlockScaler(block_sizes=[2, 1]).fit_transform(X)
    assert Z.dtype == np.float32 and np.all(Z[:, :2] == 0)


def test_bad_block_sizes():
    with pytest.raises(ValueError, match="add up to the 3 features"):
        BlockScaler(block_sizes=[1, 1]).fit(np.zeros((4, 3)))
    with pytest.raises(
        ValueError, match="The 'block_sizes' parameter of BlockScaler must be an array-like or None"
    ):
        BlockScaler(block_sizes=3).fit(np.zeros((4, 3)))
