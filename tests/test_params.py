"""Declarative parameter validation: scikit-learn's ``check_param_validation`` and its messages.

``parametrize_with_checks`` does not run ``check_param_validation`` (scikit-learn runs it on
its own estimators only), so it runs here for every skpercept estimator with
``_parameter_constraints``, including those the common checks cannot drive (LoRA, the search).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.model_selection._search import PerceptSearchCV
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing import BlockScaler
from skpercept.preprocessing._pairs import PairFeatures

FAST = dict(hidden_layer_sizes=(4,), max_epochs=1, device="cpu", random_state=0)


def _lora_estimators() -> list:
    try:
        from skpercept.finetune import LoRAPairwiseRanker, LoRARatingClassifier
    except ImportError:  # pragma: no cover - without the lora extra
        return []
    return [LoRARatingClassifier(), LoRAPairwiseRanker()]


ESTIMATORS = [
    RatingClassifier(**FAST),
    RatingRegressor(**FAST),
    PairwiseRanker(**FAST),
    UserEncoder(),
    PairFeatures(item_transformer=FunctionTransformer()),
    BlockScaler(),
    PerceptSearchCV(LogisticRegression(), {"C": [1.0]}),
    *_lora_estimators(),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_check_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


def test_messages_name_parameter_estimator_and_range():
    X, y = np.zeros((10, 4)), np.arange(10) % 2
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'dropout' parameter of PairwiseRanker must be a float in the range \[0.0, 1.0\). Got 1.0",
    ):
        PairwiseRanker(dropout=1.0).fit(X, y)
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'validation_fraction' parameter of RatingRegressor must be a float in the range "
        r"\(0.0, 1.0\)",
    ):
        RatingRegressor(validation_fraction=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="The 'loss' parameter of RatingClassifier must be a str"):
        RatingClassifier(loss="mse").fit(X, y)
    # InvalidParameterError is both a ValueError and a TypeError, as in scikit-learn.
    with pytest.raises(TypeError, match="The 'callbacks' parameter of RatingClassifier"):
        RatingClassifier(callbacks="early").fit(X, y)


def test_elements_of_hidden_layer_sizes_are_checked():
    X, y = np.arange(40.0).reshape(10, 4), np.arange(10) % 2
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive ints"):
        RatingClassifier(
            hidden_layer_sizes=(8, 0), **{k: v for k, v in FAST.items() if k != "hidden_layer_sizes"}
        ).fit(X, y)
    assert RatingClassifier(**{**FAST, "hidden_layer_sizes": 3}).fit(X, y).net_.module_ is not None


def test_heads_share_one_init():
    import inspect

    from skpercept.heads.base import SkorchHead

    base = inspect.signature(SkorchHead.__init__).parameters
    shared = set(base) - {"self"}
    assert set(PairwiseRanker().get_params()) == shared | {"calibration"}
    assert set(RatingRegressor().get_params()) == shared | {"loss"}
    assert set(RatingClassifier().get_params()) == shared | {"loss", "classes", "class_weight", "calibration"}
    # heads with a signature of their own keep the shared parameters' defaults
    for head in (PairwiseRanker, RatingRegressor, RatingClassifier):
        own = inspect.signature(head.__init__).parameters
        for name in shared:
            if not (head is not PairwiseRanker and name == "validation_split"):
                assert own[name].default == base[name].default, (head.__name__, name)
    clf = RatingClassifier(loss="corn", classes=[1, 2], lr=0.5, callbacks=[])
    assert (clf.loss, clf.classes, clf.lr, clf.callbacks) == ("corn", [1, 2], 0.5, [])
