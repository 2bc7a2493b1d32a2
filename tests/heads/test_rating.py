"""RatingClassifier / RatingRegressor: labels, masking, ordinal loss, early stopping, sklearn use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skpercept._holdout import hold_out_items, rating_item_codes
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.heads.nets import MaskedRatingLoss, corn_proba

FAST = dict(
    hidden_layer_sizes=(16,),
    lr=0.03,
    max_epochs=15,
    batch_size=32,
    dropout=0.0,
    early_stopping=False,
    device="cpu",
    random_state=0,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 6))
    y = np.digitize(X[:, 0] + 0.2 * rng.normal(size=160), [-0.7, 0, 0.7]) + 1  # levels 1..4
    return X, y


def test_classifier_learns_and_probabilities_sum_to_one(data):
    X, y = data
    for loss in ("ce", "corn"):
        clf = RatingClassifier(loss=loss, **FAST).fit(X, y)
        proba = clf.predict_proba(X)
        assert proba.shape == (len(X), 4)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        assert set(clf.predict(X)) <= {1, 2, 3, 4}
        assert clf.score(X, y) > 0.6


def test_corn_probabilities_are_ordinal():
    logits = torch_tensor([[2.0, 0.0, -2.0], [-3.0, 1.0, 1.0]])
    p = corn_proba(logits)
    assert p.shape == (2, 4)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-6)
    # CORN's loss is the negative log of that probability model.
    loss = MaskedRatingLoss([4], loss="corn")(logits, torch_tensor([[1.0], [3.0]]))
    expected = -np.log(p[[0, 1], [1, 3]].numpy()).mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


def torch_tensor(values):
    import torch

    return torch.tensor(values, dtype=torch.float32)


def test_corn_beats_ce_on_ordinal_error(data):
    X, y = data
    mae = {
        loss: np.abs(RatingClassifier(loss=loss, **FAST).fit(X, y).predict(X) - y).mean()
        for loss in ("ce", "corn")
    }
    assert mae["corn"] < 0.5 and mae["ce"] < 0.5


def test_multi_output_with_missing_labels(data):
    X, y = data
    Y = np.column_stack([y, 5 - y]).astype(float)
    Y[::3, 1] = np.nan
    clf = RatingClassifier(**FAST).fit(X, Y)
    assert clf.n_outputs_ == 2 and isinstance(clf.classes_, list)
    assert clf.predict(X).shape == (len(X), 2)
    probas = clf.predict_proba(X)
    assert [p.shape for p in probas] == [(len(X), 4), (len(X), 4)]
    assert 0.5 < clf.score(X, Y) <= 1


def test_missing_labels_do_not_change_the_loss():
    import torch

    logits = torch.randn(4, 8)
    y = torch.tensor([[0.0, 1.0], [1.0, float("nan")], [2.0, 3.0], [3.0, float("nan")]])
    loss = MaskedRatingLoss([4, 4])(logits, y)
    assert torch.isfinite(loss)
    logits.requires_grad_(True)
    MaskedRatingLoss([4, 4], loss="corn")(torch.randn(4, 6, requires_grad=True), y).backward()


def test_fixed_classes_keep_proba_shape_when_a_level_is_missing(data):
    X, y = data
    keep = y != 4
    clf = RatingClassifier(classes=[1, 2, 3, 4], **FAST).fit(X[keep], y[keep])
    assert clf.predict_proba(X).shape == (len(X), 4)
    with pytest.raises(ValueError, match=r"label\(s\) 5 outside classes \[1, 2, 3, 4\]"):
        RatingClassifier(classes=[1, 2, 3, 4], **FAST).fit(X, np.where(y == 4, 5, y))


@pytest.mark.parametrize("loss", ["ce", "corn"])
def test_a_classifier_starts_at_the_level_shares_of_its_training_labels(loss):
    # A net stopped after an epoch or two (early stopping on a small hold-out) is about where it
    # started: there it must say how often each level was given, not that all are alike.
    rng = np.random.RandomState(0)
    X = 0.01 * rng.normal(size=(400, 5))  # features that say nothing
    shares = np.array([0.6, 0.25, 0.1, 0.05])
    y = np.column_stack([rng.choice([1, 2, 3, 4], size=400, p=shares), rng.choice([1, 2], size=400)])
    y = y.astype(float)
    y[::2, 1] = np.nan  # the second attribute's missing labels do not count
    y[1::4, 1] = 2  # its observed labels: half 1, half 2 at random, then a quarter forced to 2
    untrained = dict(FAST, hidden_layer_sizes=(), lr=1e-7, max_epochs=1)
    clf = RatingClassifier(loss=loss, **untrained).fit(X, y)
    first, second = clf.predict_proba(X)
    observed = np.bincount(y[:, 0].astype(int) - 1, minlength=4) / 400
    np.testing.assert_allclose(first.mean(axis=0), observed, atol=0.01)
    rated = ~np.isnan(y[:, 1])
    np.testing.assert_allclose(second[:, 1].mean(), np.mean(y[rated, 1] == 2), atol=0.01)
    # with early stopping the training rows (90 %) set it: about the same shares
    held = RatingClassifier(loss=loss, **dict(untrained, early_stopping=True)).fit(X, y[:, 0])
    np.testing.assert_allclose(held.predict_proba(X).mean(axis=0), observed, atol=0.03)


def test_regressor_standardizes_targets_and_masks_nan(data):
    X, _ = data
    Y = np.column_stack([50 + 20 * X[:, 0], 5 + X[:, 1]])
    Y[::4, 1] = np.nan
    reg = RatingRegressor(**FAST).fit(X, Y)
    np.testing.assert_allclose(reg.y_mean_, np.nanmean(Y, axis=0))
    assert reg.predict(X).shape == (len(X), 2)
    assert reg.score(X, Y) > 0.7
    one = RatingRegressor(loss="huber", **FAST).fit(X, Y[:, 0])
    assert one.predict(X).shape == (len(X),)


def test_early_stopping_restores_best_weights(data):
    X, y = data
    clf = RatingClassifier(
        **{**FAST, "early_stopping": True, "patience": 3, "max_epochs": 60, "lr": 0.1}
    ).fit(X, y)
    history = clf.net_.history
    valid = history[:, "valid_loss"]
    assert len(history[:, "train_loss"]) == len(valid) < 60
    best = int(np.argmin(valid))
    # predictions equal the best epoch's: recompute the validation loss of the restored weights
    # on the rows of the held-out items (the split fit made with random_state=0)
    valid_rows = hold_out_items(rating_item_codes(X.astype(np.float32))[0], 0.1, seed=0).valid
    Xv, yv = (t[valid_rows] for t in _tensors(clf, X, y))
    import torch

    with torch.no_grad():
        restored = clf.net_.get_loss(clf.net_.infer(Xv), yv).item()
    assert restored == pytest.approx(valid[best], rel=1e-4)
    assert best < len(valid) - 1


def _tensors(clf, X, y):
    import torch

    codes = np.searchsorted(clf.classes_, y).astype(np.float32).reshape(-1, 1)
    return torch.from_numpy(X.astype(np.float32)), torch.from_numpy(codes)


def test_reproducible_with_random_state(data):
    X, y = data
    params = {**FAST, "early_stopping": True, "dropout": 0.2}
    a = RatingClassifier(**params).fit(X, y).predict_proba(X)
    b = RatingClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_mid_training_predict_from_callback(data):
    from skorch.callbacks import Callback

    X, y = data
    scores = []

    class Spy(Callback):
        def __init__(self, est):
            self.est = est

        def on_epoch_end(self, net, **kwargs):
            scores.append(self.est.score(X, y))

    clf = RatingClassifier(**FAST)
    clf.set_params(callbacks=[("spy", Spy(clf))]).fit(X, y)
    assert len(scores) == FAST["max_epochs"]
    assert scores[-1] == clf.score(X, y)


def test_bad_input(data):
    X, y = data
    clf = RatingClassifier(**FAST)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(bad, y)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="X has 160 rows but y has 159"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="y must be 1-D"):
        clf.fit(X, y.reshape(-1, 2, 80).transpose(0, 2, 1).reshape(160, 1, 1))
    with pytest.raises(ValueError, match="0 sample"):
        clf.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="all missing"):
        RatingRegressor(**FAST).fit(X, np.column_stack([y, np.full(len(y), np.nan)]))
    fitted = clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :3])


def test_sklearn_tools(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    head = RatingClassifier(**FAST).fit(frame, y)
    assert list(head.feature_names_in_) == list(frame.columns)
    pipe = make_pipeline(StandardScaler(), RatingClassifier(**FAST))
    assert clone(pipe[-1]).get_params()["hidden_layer_sizes"] == (16,)
    search = GridSearchCV(
        pipe,
        {"ratingclassifier__hidden_layer_sizes": [(8,), (16,)], "ratingclassifier__loss": ["ce", "corn"]},
        cv=2,
    ).fit(frame, y)
    assert search.best_params_["ratingclassifier__loss"] in ("ce", "corn")
    scores = cross_val_score(
        RatingRegressor(**FAST), X, y.astype(float), cv=KFold(2), scoring="neg_mean_absolute_error"
    )
    assert scores.shape == (2,)


@pytest.mark.parametrize("n_rows, expected", [(40, 8), (400, 50), (4000, 256)])
def test_auto_batch_size_gives_small_data_several_steps_per_epoch(n_rows, expected):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_rows, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = RatingClassifier(max_epochs=1, early_stopping=False, device="cpu", random_state=0).fit(X, y)
    assert clf.batch_size == "auto"
    assert clf.net_.iterator_train__batch_size == expected
    assert clf.net_.batch_size == 256  # prediction and validation batches
    fixed = RatingClassifier(batch_size=32, max_epochs=1, early_stopping=False, device="cpu").fit(X, y)
    assert fixed.net_.iterator_train__batch_size == 32


def test_fit_users_of_several_attributes_takes_judgments_of_one():
    """A person judged one attribute of a model of several (a labelling project asks about one):
    fit_users learns from those; only a y without any label is an error."""
    rng = np.random.RandomState(0)
    items, people = rng.normal(size=(60, 3)), np.eye(2)
    who = rng.randint(0, 2, 60)
    X = np.hstack([items, people[who]])
    y = np.column_stack([np.digitize(items[:, 0], [0.0]), np.digitize(items[:, 1], [0.0])]) + 1.0
    clf = RatingClassifier(classes=[1.0, 2.0], user_features=[3, 4], **FAST).fit(X, y)
    new = np.hstack([items[:8], np.zeros((8, 2)), np.ones((8, 1))])  # a third person
    only_second = np.column_stack([np.full(8, np.nan), np.ones(8)])
    clf.fit_users(new, only_second)
    assert clf.n_user_features_ == 3
    with pytest.raises(ValueError, match="all missing"):
        clf.fit_users(new, np.full((8, 2), np.nan))
