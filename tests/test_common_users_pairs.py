"""scikit-learn conformance of UserEncoder and PairFeatures (merged into test_common.py later)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.estimator_checks import parametrize_with_checks

from skpercept.pairs import PairFeatures
from skpercept.users import UserEncoder


class ItemScaler(TransformerMixin, BaseEstimator):
    """A minimal item transformer: a 1-D column of numeric items -> (n, 2) features."""

    def fit(self, X, y=None):
        x = check_array(np.asarray(X, dtype=float).reshape(-1, 1))
        self.scale_ = float(np.abs(x).max()) or 1.0
        return self

    def transform(self, X):
        x = check_array(np.asarray(X, dtype=float).reshape(-1, 1)) / self.scale_
        return np.hstack([x, x**2])


# Reasons a check cannot pass, by design.
USER_ENCODER_XFAIL = {
    "check_fit1d": "1-D input is a column of user ids, accepted by design (a Series of ids).",
    "check_fit2d_predict1d": "1-D input at transform is a column of ids, accepted by design.",
}
PAIR_FEATURES_XFAIL: dict[str, str] = {}


def _expected_failed_checks(estimator):
    if isinstance(estimator, UserEncoder):
        return USER_ENCODER_XFAIL
    if isinstance(estimator, PairFeatures):
        return PAIR_FEATURES_XFAIL
    return {}


@parametrize_with_checks(
    [
        UserEncoder(),
        UserEncoder(min_count=2, sparse_output=True),
        PairFeatures(item_transformer=ItemScaler(), item_columns=(0, 1), context_columns=None),
        PairFeatures(
            item_transformer=ItemScaler(),
            context_transformer="passthrough",
            item_columns=(0, 1),
            context_columns=(-1,),
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
