"""``sample_weight`` in every head's ``fit`` and the classifier's ``class_weight``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.raters import rater_weights

# Full-batch, deterministic training: repeated rows and integer weights give the same loss and
# gradients at every step (up to float rounding of the sums).
EXACT = dict(
    hidden_layer_sizes=(8,),
    dropout=0.0,
    early_stopping=False,
    max_epochs=30,
    lr=0.01,
    batch_size=1000,
    device="cpu",
    random_state=0,
)


def _data(kind, n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    if kind == "ranker":
        return X, (X[:, 0] > X[:, 2]).astype(float)
    if kind == "regressor":
        return X, np.column_stack([X[:, 0] + 0.1 * rng.normal(size=n), X[:, 1]])
    return X, np.digitize(X[:, 0], [-0.5, 0.5])


def _outputs(head, X):
    return head.predict_proba(X) if hasattr(head, "predict_proba") else head.predict(X)


@pytest.mark.parametrize(
    "kind, head",
    [
        ("ranker", PairwiseRanker(**EXACT)),
        ("ranker", PairwiseRanker(**EXACT, user_features=[1], user_alpha=0.5)),
        ("regressor", RatingRegressor(**EXACT, loss="huber")),
        ("classifier", RatingClassifier(**EXACT, loss="corn", class_weight={0: 2.0})),
    ],
    ids=["ranker", "ranker-personal", "regressor", "classifier"],
)
def test_integer_weights_equal_repeated_rows(kind, head):
    X, y = _data(kind)
    if kind == "ranker" and head.user_features is not None:
        X[:, 1] = X[:, 3] = np.arange(len(X)) % 2  # a person column, equal in both halves
    w = np.random.RandomState(1).randint(0, 4, len(X))
    weighted = head.__class__(**head.get_params()).fit(X, y, sample_weight=w)
    repeated = head.__class__(**head.get_params()).fit(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0))
    np.testing.assert_allclose(_outputs(weighted, X), _outputs(repeated, X), rtol=1e-4, atol=1e-5)
    unweighted = head.__class__(**head.get_params()).fit(X, y)
    assert not np.allclose(_outputs(weighted, X), _outputs(unweighted, X), rtol=1e-3)


def test_unit_weights_change_nothing():
    X, y = _data("regressor")
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, device="cpu", random_state=0)
    np.testing.assert_array_equal(
        RatingRegressor(**params).fit(X, y, sample_weight=np.ones(len(X))).predict(X),
        RatingRegressor(**params).fit(X, y).predict(X),
    )


def test_class_weight_is_a_sample_weight():
    X, y = _data("classifier")
    y2 = np.column_stack([y, (X[:, 1] > 0).astype(int)])
    balanced = RatingClassifier(**EXACT, class_weight="balanced").fit(X, y)
    as_weights = RatingClassifier(**EXACT).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.predict_proba(X), as_weights.predict_proba(X), rtol=1e-4, atol=1e-6)
    clf = RatingClassifier(**EXACT, class_weight=[{0: 3.0}, "balanced"]).fit(X, y2)
    counts = np.bincount(y2[:, 1])
    np.testing.assert_allclose(clf.class_weight_[0], [3.0, 1.0, 1.0])
    np.testing.assert_allclose(clf.class_weight_[1], len(y2) / (2 * counts))
    with pytest.raises(ValueError, match="not among classes"):
        RatingClassifier(**EXACT, class_weight={7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight has 3 entries"):
        RatingClassifier(**EXACT, class_weight=[None, None, None]).fit(X, y2)


def test_bad_sample_weight_is_refused():
    X, y = _data("regressor")
    head = RatingRegressor(**EXACT)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        head.fit(X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(10,\), expected \(60,\)"):
        head.fit(X, y, sample_weight=np.ones(10))


def test_sample_weight_through_a_pipeline():
    X, y = _data("regressor")
    w = np.random.RandomState(2).uniform(0, 2, len(X))
    direct = Pipeline([("scale", StandardScaler()), ("head", RatingRegressor(**EXACT))])
    direct.fit(X, y, head__sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        head = RatingRegressor(**EXACT).set_fit_request(sample_weight=True)
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        routed = Pipeline([("scale", scaler), ("head", head)]).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(routed.predict(X), direct.predict(X))


def test_rater_weights_drop_a_rater_as_documented():
    """``quality.rater_weights`` feeds ``fit(..., sample_weight=w)``: weight 0 = rows left out."""
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {"user_id": rng.choice([1, 2], 80), "x0": rng.normal(size=80), "x1": rng.normal(size=80)}
    )
    y = np.where(frame["user_id"] == 1, frame["x0"], rng.normal(size=80))  # rater 2 answers at random
    report = pd.DataFrame(
        {"keep": [True, False], "reliability": [0.8, 0.0]}, index=pd.Index([1, 2], name="user_id")
    )
    w = rater_weights(frame, report)
    X = frame[["x0", "x1"]].to_numpy()
    weighted = RatingRegressor(**EXACT).fit(X, y, sample_weight=w)
    kept = w > 0
    only_kept = RatingRegressor(**EXACT).fit(X[kept], y[kept])
    np.testing.assert_allclose(weighted.predict(X), only_kept.predict(X), rtol=1e-4, atol=1e-5)


def test_swap_augmentation_flips_labels_not_weights():
    import torch

    from skpercept.heads.base import random_swap

    X = torch.arange(8.0).reshape(2, 4)
    targets = torch.tensor([[1.0, 0.25], [0.0, 3.0]])  # label, weight
    Xs, ts = random_swap(
        X.repeat(50, 1), targets.repeat(50, 1), torch.Generator().manual_seed(0), weighted=True
    )
    swapped = Xs[:, 0] != X.repeat(50, 1)[:, 0]
    assert swapped.any() and (~swapped).any()
    np.testing.assert_array_equal(ts[:, 1], targets.repeat(50, 1)[:, 1])  # weights stay
    np.testing.assert_array_equal(ts[swapped, 0], 1 - targets.repeat(50, 1)[swapped, 0])
