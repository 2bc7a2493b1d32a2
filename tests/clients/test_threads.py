"""Seeded fits in threads: the same numbers whatever runs beside them (joblib's threading
backend, a search with ``n_jobs=2``), without holding up the work of other threads."""

from __future__ import annotations

import threading

import numpy as np
import optuna
import pytest
import torch
from joblib import Parallel, delayed
from sklearn.model_selection import cross_val_score

from skpercept._utils import seeded_torch, torch_generator
from skpercept.heads import PairwiseRanker, RatingClassifier, RatingRegressor
from skpercept.heads.nets import Dropout, use_generator
from skpercept.model_selection import PerceptSearchCV
from tests.model_selection._tune_heads import make_data, make_head

optuna.logging.set_verbosity(optuna.logging.WARNING)

# dropout on: the masks are the randomness threads used to share
HEAD = dict(hidden_layer_sizes=(16,), dropout=0.3, max_epochs=6, early_stopping=False, device="cpu")


def _data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6))
    people = np.eye(4)[np.arange(120) % 4]  # four people, one-hot (the pair layout is even)
    return X, {
        # each half of a pair: the item's three features and the person's columns
        "people": np.hstack([X[:, :3], people, X[:, 3:], people]),
        "rank": (X[:, 0] > X[:, 3]).astype(float),
        "clf": np.digitize(X[:, 0], [-0.5, 0.5]) + 1,
        "reg": X[:, 0] + 0.1 * X[:, 1],
    }


def _fit(kind: str, seed: int) -> np.ndarray:
    X, ys = _data()
    if kind == "rank":
        return PairwiseRanker(random_state=seed, **HEAD).fit(X, ys[kind]).predict_proba(X)[:, 1]
    if kind == "personal":
        ranker = PairwiseRanker(random_state=seed, user_features=[3, 4, 5, 6], **HEAD)
        return ranker.fit(ys["people"], ys["rank"]).predict_proba(ys["people"])[:, 1]
    if kind == "clf":
        return RatingClassifier(random_state=seed, **HEAD).fit(X, ys[kind]).predict_proba(X)
    return RatingRegressor(random_state=seed, **HEAD).fit(X, ys[kind]).predict(X)


@pytest.mark.parametrize("kind", ["rank", "clf", "reg", "personal"])
def test_threaded_fits_match_sequential_ones(kind):
    sequential = [_fit(kind, seed) for seed in (0, 1)]
    assert not np.array_equal(sequential[0], sequential[1]), "the seed must matter"
    threaded = Parallel(n_jobs=4, backend="threading")(
        delayed(_fit)(kind, s) for s in (0, 1, 0, 1, 0, 1, 0, 1)
    )
    for i, out in enumerate(threaded):
        np.testing.assert_array_equal(out, sequential[i % 2])


def test_other_threads_drawing_from_torch_do_not_change_a_fit():
    # Another thread draws from (and reseeds) torch's global generator all through the fit.
    expected = _fit("rank", 0)
    stop = threading.Event()

    def noise():
        while not stop.is_set():
            torch.manual_seed(int(torch.randint(0, 1000, ())))
            torch.rand(100)

    thread = threading.Thread(target=noise)
    thread.start()
    try:
        got = [_fit("rank", 0) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    for out in got:
        np.testing.assert_array_equal(out, expected)


def test_fit_neither_reseeds_nor_consumes_the_callers_generator():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    _fit("rank", 0)
    np.testing.assert_array_equal(torch.rand(3), before)


def test_seeded_blocks_take_turns_and_a_fit_trains_outside_its_block():
    # While one thread holds a seeded block, a head's fit in another thread waits only to
    # build its net; a thread that never seeds never waits.
    entered, release = threading.Event(), threading.Event()

    def hold():
        with seeded_torch(0):
            entered.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(30)
    result = {}
    fitter = threading.Thread(target=lambda: result.setdefault("out", _fit("rank", 0)))
    fitter.start()
    fitter.join(0.5)
    assert fitter.is_alive(), "building the net waits for the seeded block"
    assert torch.rand(2).shape == (2,)  # unseeded work goes on
    release.set()
    holder.join()
    fitter.join(60)
    np.testing.assert_array_equal(result["out"], _fit("rank", 0))


def test_dropout_with_a_generator_is_torch_dropout_on_the_same_stream():
    x = torch.randn(32, 40)
    torch.manual_seed(7)
    expected = torch.nn.Dropout(0.25)(x)
    dropout = Dropout(0.25)
    use_generator(dropout, torch_generator(7))
    torch.manual_seed(99)  # the global generator is not what it draws from
    torch.testing.assert_close(dropout(x), expected, rtol=0, atol=0)
    use_generator(dropout, None)
    assert dropout.eval()(x) is x or torch.equal(dropout(x), x)


def test_cross_validation_on_threads_is_reproducible():
    X, y = make_data(n=80)
    head = make_head(dropout=0.3)
    sequential = cross_val_score(head, X, y, cv=4)
    for _ in range(2):
        np.testing.assert_array_equal(cross_val_score(head, X, y, cv=4, n_jobs=2), sequential)


def _search(**params):
    X, y = make_data(n=80)
    space = {
        "lr": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    search = PerceptSearchCV(
        make_head(max_epochs=6), space, cv=3, n_trials=14, random_state=0, refit=False, **params
    )
    return search.fit(X, y)


def _trials(search):
    return [(t.number, t.state.name, t.params, t.value) for t in search.study_.trials]


def test_search_on_two_threads_gives_the_same_trials_every_time():
    # 14 trials: past TPE's 10 random start-up trials, so later proposals read the history.
    first, second = _search(n_jobs=2), _search(n_jobs=2)
    assert _trials(first) == _trials(second)
    assert first.best_params_ == second.best_params_
    assert len({t.params["lr"] for t in first.study_.trials}) == 14
    assert first.n_pruned_ > 0, "pruning decisions are part of what must repeat"


def test_search_on_threads_keeps_the_callers_catch_policy():
    X, y = make_data(n=60)
    space = {"lr": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True)}
    bad = make_head(max_epochs=2, hidden_layer_sizes=(-1,))
    search = PerceptSearchCV(bad, space, cv=2, n_trials=4, n_jobs=2, random_state=0, refit=False)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        search.set_params(catch=()).fit(X, y)
    search = PerceptSearchCV(bad, space, cv=2, n_trials=4, n_jobs=2, random_state=0, refit=False)
    with pytest.raises(RuntimeError, match="no trial .* completed .*4 failed"):
        search.fit(X, y)
