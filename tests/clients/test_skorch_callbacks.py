"""skorch's callbacks and nested parameters on the heads, as a skorch user writes them.

``EpochScoring`` / ``BatchScoring`` score the head's own predictions (class labels, ratings on
their scale, pair probabilities) against ``y`` as given to ``fit``; the values are checked
against an independent computation: inside the fit, by a callback that recovers the
validation rows from skorch's ``dataset_valid`` and scores the head itself; after the fit, on
the training rows of a fit without early stopping (the weights then are the last epoch's).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import accuracy_score, get_scorer, mean_absolute_error, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import BatchScoring, Callback, EarlyStopping, EpochScoring

from skpercept.heads import JointRatingRanker, PairwiseRanker, RatingClassifier, RatingRegressor, join_labels

KW = dict(hidden_layer_sizes=(8,), max_epochs=3, device="cpu", random_state=0)


def _X() -> np.ndarray:
    return np.random.RandomState(0).normal(size=(80, 6))


def _targets(X: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "reg": X[:, 0],
        "clf": np.digitize(X[:, 0], [-0.5, 0.5]) + 1,
        "rank": (X[:, 0] > X[:, 3]).astype(float),
    }


class Expected(Callback):
    """After the scoring callbacks of an epoch: ``scoring(head, X_valid, y_valid)`` of the head
    itself, on the validation rows recovered from skorch's ``dataset_valid``."""

    def __init__(self, head, X, y, scoring):
        self.head, self.X, self.y, self.scoring = head, X, y, scoring
        self.values: list[float] = []
        self.rows: list[np.ndarray] = []

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        X32 = self.X.astype(np.float32)
        same = [(r == X32) | (np.isnan(r) & np.isnan(X32)) for r in dataset_valid.X.numpy()]
        rows = np.array([np.flatnonzero(s.all(axis=1))[0] for s in same])
        self.rows.append(rows)
        self.values.append(self.scoring(self.head, self.X[rows], self.y[rows]))


def _fit_with(head, X, y, scoring_callback, expected_scoring):
    expected = Expected(head, X, y, expected_scoring)
    head.set_params(callbacks=[("sc", scoring_callback), ("expected", expected)]).fit(X, y)
    return expected


def _per_column(metric):
    """``metric`` per column on the observed labels, averaged: how the heads' score treats NaN."""

    def score(head, X, y):
        pred = np.asarray(head.predict(X)).reshape(len(y), -1)
        y = np.asarray(y, dtype=float).reshape(len(y), -1)
        return np.mean(
            [metric(y[~np.isnan(y[:, j]), j], pred[~np.isnan(y[:, j]), j]) for j in range(y.shape[1])]
        )

    return score


# -- scoring callbacks score the head -----------------------------------------------------------
@pytest.mark.parametrize("scoring", ["r2", "neg_mean_absolute_error"])
def test_epoch_scoring_of_a_regressor_scores_its_ratings(scoring):
    X = _X()
    y = 50 + 10 * X[:, 0]  # a rating scale far from the net's standardized outputs
    head = RatingRegressor(**KW)
    expected = _fit_with(head, X, y, EpochScoring(scoring, lower_is_better=False), get_scorer(scoring))
    recorded = head.net_.history[:, scoring]
    np.testing.assert_allclose(recorded, expected.values, rtol=1e-12)
    assert len(recorded) == 3 and len(expected.rows[0]) == 8  # validation_fraction=0.1 of 80 rows
    assert "valid_loss" in head.net_.history[-1] and f"{scoring}_best" in head.net_.history[-1]


def test_two_attributes_with_missing_ratings_are_scored_per_attribute_on_observed_labels():
    X = _X()
    y = np.column_stack([X[:, 0], 5 + 3 * X[:, 1]])
    y[::5, 1] = np.nan
    head = RatingRegressor(**KW)
    expected = _fit_with(head, X, y, EpochScoring("r2", lower_is_better=False), lambda h, X, y: h.score(X, y))
    assert any(np.isnan(y[rows]).any() for rows in expected.rows)
    np.testing.assert_allclose(head.net_.history[:, "r2"], expected.values, rtol=1e-12)

    head = RatingRegressor(**KW)
    mae = _per_column(mean_absolute_error)
    expected = _fit_with(head, X, y, EpochScoring("neg_mean_absolute_error"), lambda h, X, y: -mae(h, X, y))
    np.testing.assert_allclose(head.net_.history[:, "neg_mean_absolute_error"], expected.values, rtol=1e-12)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss", "balanced_accuracy"])
def test_classifier_is_scored_on_its_class_labels_and_probabilities(scoring):
    X = _X()
    y = np.array(["low", "mid", "high"])[_targets(X)["clf"] - 1]  # labels as given, strings
    head = RatingClassifier(**KW)
    expected = _fit_with(head, X, y, EpochScoring(scoring, lower_is_better=False), get_scorer(scoring))
    np.testing.assert_allclose(head.net_.history[:, scoring], expected.values, rtol=1e-12)


def test_classifier_with_two_attributes_and_missing_labels():
    X = _X()
    y = np.column_stack([_targets(X)["clf"], np.digitize(X[:, 1], [0.0]) + 1]).astype(float)
    y[::4, 0] = np.nan
    head = RatingClassifier(**KW)
    expected = _fit_with(
        head, X, y, EpochScoring("accuracy", lower_is_better=False), lambda h, X, y: h.score(X, y)
    )
    np.testing.assert_allclose(head.net_.history[:, "accuracy"], expected.values, rtol=1e-12)


def test_ranker_is_scored_on_its_pair_predictions():
    X = _X()
    y = _targets(X)["rank"]
    head = PairwiseRanker(**KW)
    callbacks = [
        ("acc", EpochScoring("accuracy", lower_is_better=False)),
        ("auc", EpochScoring("roc_auc", lower_is_better=False)),
    ]
    expected_auc = Expected(head, X, y, get_scorer("roc_auc"))
    expected_acc = Expected(head, X, y, lambda h, X, y: accuracy_score(y, h.predict(X)))
    head.set_params(callbacks=[*callbacks, ("e1", expected_acc), ("e2", expected_auc)]).fit(X, y)
    np.testing.assert_allclose(head.net_.history[:, "accuracy"], expected_acc.values, rtol=1e-12)
    np.testing.assert_allclose(head.net_.history[:, "roc_auc"], expected_auc.values, rtol=1e-12)


def test_ranker_with_two_attributes_is_scored_per_attribute():
    X = _X()
    y = np.column_stack([_targets(X)["rank"], (X[:, 1] > X[:, 4]).astype(float)])
    y[::3, 1] = np.nan
    head = PairwiseRanker(**KW)
    expected = _fit_with(
        head, X, y, EpochScoring("accuracy", lower_is_better=False), _per_column(accuracy_score)
    )
    np.testing.assert_allclose(head.net_.history[:, "accuracy"], expected.values, rtol=1e-12)


def test_joint_rating_ranker_is_scored_on_levels_and_preferences():
    rng = np.random.RandomState(0)
    items = rng.normal(size=(40, 6))
    a, b = rng.randint(0, 40, size=(2, 60))
    X, y = join_labels(
        items,
        np.digitize(items[:, 0], [-0.5, 0.5]) + 1,
        np.hstack([items[a], items[b]]),
        (items[a, 0] > items[b, 0]).astype(float),
    )
    head = JointRatingRanker(**KW)
    callbacks = [("acc", EpochScoring("accuracy", lower_is_better=False))]
    expected = Expected(head, X, y, lambda h, X, y: accuracy_score(y, h.predict(X)))
    head.set_params(callbacks=[*callbacks, ("expected", expected)]).fit(X, y)
    np.testing.assert_allclose(head.net_.history[:, "accuracy"], expected.values, rtol=1e-12)


def test_a_callable_scorer_gets_the_head_and_y_as_given():
    X = _X()
    y = np.column_stack([X[:, 0], X[:, 1]])
    y[::5, 1] = np.nan
    seen = []

    def worst_error(estimator, X_valid, y_valid):
        seen.append((type(estimator).__name__, np.shape(y_valid), np.isnan(y_valid).sum()))
        return float(np.nanmax(np.abs(estimator.predict(X_valid) - y_valid)))

    head = RatingRegressor(**KW)
    expected = _fit_with(
        head, X, y, EpochScoring(worst_error), lambda h, X, y: np.nanmax(np.abs(h.predict(X) - y))
    )
    np.testing.assert_allclose(head.net_.history[:, "worst_error"], expected.values, rtol=1e-12)
    assert {(name, shape) for name, shape, _ in seen} == {("RatingRegressor", (8, 2))}
    assert sum(n for *_, n in seen) > 0  # NaN reaches the callable unfiltered


@pytest.mark.parametrize(
    "head, target, scoring, metric",
    [
        (RatingRegressor, "reg", "r2", lambda y, h, X: r2_score(y, h.predict(X))),
        (RatingClassifier, "clf", "accuracy", lambda y, h, X: accuracy_score(y, h.predict(X))),
        (PairwiseRanker, "rank", None, lambda y, h, X: h.score(X, y)),
    ],
)
def test_last_epoch_on_training_rows_equals_scoring_the_fitted_head(head, target, scoring, metric):
    # without early stopping nothing is restored: the fitted head is the last epoch's
    X = _X()
    y = _targets(X)[target]
    est = head(
        **KW, early_stopping=False, callbacks=[("sc", EpochScoring(scoring, on_train=True, name="sc"))]
    )
    est.fit(X, y)
    assert est.net_.history[-1, "sc"] == pytest.approx(metric(y, est, X), rel=1e-12)
    assert "valid_loss" not in est.net_.history[-1]


def test_batch_scoring_scores_each_validation_batch():
    X = _X()
    y = 3 * X[:, 0]
    head = RatingRegressor(**{**KW, "batch_size": 4})
    batches = BatchScoring("neg_mean_absolute_error", name="mae")
    expected = _fit_with(
        head,
        X,
        y,
        batches,
        lambda h, X, y: (
            -np.mean([mean_absolute_error(y[s], h.predict(X[s])) for s in (slice(0, 4), slice(4, 8))])
        ),
    )
    np.testing.assert_allclose(head.net_.history[:, "mae"], expected.values, rtol=1e-12)
    assert head.net_.history[-1, "batches", -1, "mae"] <= 0


def test_scores_drive_skorch_early_stopping_and_stay_inspectable():
    X = _X()
    y = _targets(X)["reg"]
    head = RatingRegressor(
        **{**KW, "max_epochs": 30},
        callbacks=[
            ("sc", EpochScoring("r2", lower_is_better=False)),
            (
                "stop",
                EarlyStopping(
                    monitor="r2", lower_is_better=False, patience=1, threshold=2.0, threshold_mode="abs"
                ),
            ),
        ],
    ).fit(X, y)
    assert len(head.net_.history) == 2  # r2 (<= 1) never gains 2 on the first epoch's: stopped
    scoring = dict(head.net_.callbacks_)["sc"]
    assert scoring.best_score_ == max(head.net_.history[:, "r2"]) and scoring.name_ == "r2"


def test_ensemble_members_are_scored_alone_on_their_own_hold_out():
    X = _X()
    y = _targets(X)["reg"]
    head = RatingRegressor(**KW, n_ensemble=2, callbacks=[("sc", EpochScoring("r2", lower_is_better=False))])
    head.fit(X, y)
    # member 1 is the fit a single head makes with its seed: scored alone, it scores the same
    alone = clone(head).set_params(n_ensemble=1, random_state=int(head.ensemble_seeds_[1])).fit(X, y)
    np.testing.assert_allclose(head.nets_[1].history[:, "r2"], alone.net_.history[:, "r2"], rtol=1e-12)
    assert head.nets_[0].history[:, "r2"] != head.nets_[1].history[:, "r2"]


# -- what cannot be scored is refused, with what to use ----------------------------------------
def test_unscorable_configurations_are_refused_naming_the_alternative():
    X = _X()
    y = _targets(X)
    with pytest.raises(ValueError, match="early_stopping=False .* holds none out.*on_train=True"):
        RatingRegressor(**KW, early_stopping=False, callbacks=[("sc", EpochScoring("r2"))]).fit(X, y["reg"])
    with pytest.raises(ValueError, match=r"BatchScoring on training batches.*EpochScoring\(on_train=True\)"):
        RatingRegressor(**KW, callbacks=[("sc", BatchScoring("r2", on_train=True))]).fit(X, y["reg"])
    with pytest.raises(ValueError, match="scores predict_proba, which RatingRegressor does not have"):
        RatingRegressor(**KW, callbacks=[("sc", EpochScoring("neg_log_loss"))]).fit(X, y["reg"])
    soft = np.clip(y["rank"] * 0.8 + 0.1, 0, 1)
    with pytest.raises(ValueError, match=r"could not score PairwiseRanker.*scoring=None"):
        PairwiseRanker(**KW, callbacks=[("sc", EpochScoring("accuracy"))]).fit(X, soft)


# -- nested parameters ----------------------------------------------------------------------------
def test_nested_callback_parameters_set_get_and_survive_clone():
    scoring = EpochScoring("r2", lower_is_better=True)
    head = RatingRegressor(**KW, callbacks=[("sc", scoring), EarlyStopping(monitor="r2")])
    params = head.get_params()
    assert params["callbacks__sc"] is scoring and params["callbacks__sc__scoring"] == "r2"
    assert params["callbacks__user_callback_1_EarlyStopping__monitor"] == "r2"
    assert "callbacks__sc" not in head.get_params(deep=False)

    head.set_params(
        callbacks__sc__lower_is_better=False, callbacks__user_callback_1_EarlyStopping__patience=2
    )
    assert scoring.lower_is_better is False and head.callbacks[1].patience == 2
    copy = clone(head)
    assert copy.get_params()["callbacks__sc__lower_is_better"] is False
    assert copy.get_params()["callbacks__user_callback_1_EarlyStopping__patience"] == 2
    assert copy.callbacks[0][1] is not scoring

    copy.fit(_X(), _targets(_X())["reg"])
    assert copy.net_.history[-1, "r2_best"] == (
        copy.net_.history[-1, "r2"] == max(copy.net_.history[:, "r2"])
    )


def test_callbacks_replaced_or_removed_by_name_keep_the_other_names():
    first, second = EpochScoring("r2"), EpochScoring("neg_mean_absolute_error")
    head = RatingRegressor(callbacks=[first, second])
    new = EpochScoring("max_error")
    head.set_params(callbacks__user_callback_0_EpochScoring=new)
    assert head.callbacks == [("user_callback_0_EpochScoring", new), ("user_callback_1_EpochScoring", second)]
    head.set_params(callbacks__user_callback_0_EpochScoring=None)
    assert head.callbacks == [("user_callback_1_EpochScoring", second)]
    assert head.get_params()["callbacks__user_callback_1_EpochScoring__scoring"] == "neg_mean_absolute_error"


def test_optimizer_learning_rate_and_weight_decay_are_the_heads_own():
    head = PairwiseRanker(optimizer="sgd").set_params(optimizer__lr=0.05, optimizer__weight_decay=0.2)
    assert (head.lr, head.weight_decay) == (0.05, 0.2)
    fitted = clone(head).set_params(**KW).fit(_X(), _targets(_X())["rank"])
    groups = fitted.net_.optimizer_.param_groups
    assert {g["lr"] for g in groups} == {0.05} and 0.2 in {g["weight_decay"] for g in groups}
    with pytest.raises(ValueError, match="set one parameter twice"):
        PairwiseRanker().set_params(lr=0.1, optimizer__lr=0.2)


@pytest.mark.parametrize(
    "head, key, replacement",
    [
        (RatingRegressor, "optimizer__momentum", "set 'optimizer', 'lr' or 'weight_decay' instead"),
        (RatingRegressor, "module__dropout", "set 'dropout' instead"),
        (
            RatingClassifier,
            "module__n_classes",
            "set 'hidden_layer_sizes', 'activation', 'dropout' or 'batch_norm'",
        ),
        (RatingClassifier, "criterion__loss", "set 'loss' instead"),
        (PairwiseRanker, "criterion__reduction", "its criterion has no parameters to set"),
        (JointRatingRanker, "criterion__n_classes", "set 'pair_weight' instead"),
        (RatingRegressor, "iterator_train__shuffle", "set 'batch_size' instead"),
        (RatingRegressor, "iterator_valid__batch_size", "set 'batch_size' instead"),
        (
            RatingRegressor,
            "callbacks__early_stopping__patience",
            "early_stopping, patience and validation_fraction",
        ),
        (RatingRegressor, "callbacks__print_log__sink", "verbose switches it on"),
        (RatingRegressor, "callbacks__sc__lower_is_better", r"names no callback .* \(named none\)"),
    ],
)
def test_refused_nested_names_name_the_parameter_to_use(head, key, replacement):
    with pytest.raises(ValueError, match=replacement):
        head().set_params(**{key: 1})


def test_grid_search_over_nested_names():
    X = _X()
    y = _targets(X)["reg"]
    head = RatingRegressor(
        **KW,
        callbacks=[
            ("sc", EpochScoring("r2", lower_is_better=False)),
            ("stop", EarlyStopping(monitor="r2", lower_is_better=False, patience=5)),
        ],
    )
    grid = {"optimizer__weight_decay": [0.0, 0.1], "callbacks__stop__patience": [1, 2]}
    search = GridSearchCV(head, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4 and np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.weight_decay == search.best_params_["optimizer__weight_decay"]
    assert best.get_params()["callbacks__stop__patience"] == search.best_params_["callbacks__stop__patience"]
    assert head.callbacks[1][1].patience == 5  # the searched estimator's own callback is untouched
    assert "r2" in best.net_.history[-1]


def test_pipeline_routes_nested_names_to_the_head():
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("head", RatingClassifier(**KW, callbacks=[("sc", EpochScoring("f1_macro"))])),
        ]
    )
    pipe.set_params(head__callbacks__sc__lower_is_better=False, head__optimizer__lr=0.01)
    assert pipe["head"].lr == 0.01 and pipe.get_params()["head__callbacks__sc__lower_is_better"] is False
    X = _X()
    pipe.fit(X, _targets(X)["clf"])
    assert len(pipe["head"].net_.history[:, "f1_macro"]) == 3


def test_lora_estimators_score_their_predictions(tmp_path):
    pytest.importorskip("peft")
    pd = pytest.importorskip("pandas")
    from PIL import Image

    from skpercept.finetune import ContrastiveEmbedder, LoRARatingClassifier

    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        pixels[..., 0] = 40 * i
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    X = pd.DataFrame({"image": paths * 2})
    y = np.array([1, 2, 3] * 4)
    tiny = dict(
        model_name="timm:test_efficientnet", pretrained=None, image_size=32, device="cpu", random_state=0
    )
    clf = LoRARatingClassifier(
        **tiny,
        max_epochs=1,
        early_stopping=False,
        callbacks=[("sc", EpochScoring("accuracy", on_train=True))],
    ).fit(X, y)
    assert clf.history_[-1, "accuracy"] == pytest.approx(clf.score(X, y))
    assert LoRARatingClassifier().set_params(optimizer__weight_decay=0.3).weight_decay == 0.3
    with pytest.raises(ValueError, match="set 'lora_rank' instead"):
        LoRARatingClassifier().set_params(module__lora_rank=4)
    with pytest.raises(ValueError, match="ContrastiveEmbedder makes no predictions to score"):
        ContrastiveEmbedder(**tiny, max_epochs=1, early_stopping=False, callbacks=[EpochScoring("r2")]).fit(
            paths
        )
    assert ContrastiveEmbedder().set_params(criterion__temperature=0.3).temperature == 0.3
