"""A project started from a personal model (``skpercept label --model``): a rating model asks its
questions from the first click, labellers are added to it (never refitted), one attribute of a
model of several is asked about and ranked from its own output, a model that does not fit
the project is one clear error, and a pairs model whose people act on a hidden layer is noted.

The models are fitted by ``skpercept fit`` with the tiny ``lite0`` (no weights downloaded) on a
few tiny images, once for the module.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from skpercept import cli
from skpercept.cli._models import load_model, use_runtime
from skpercept.heads import RatingClassifier
from skpercept.label import EmbeddingLookup, LabelProject, LiveLearner
from skpercept.personal import UserEncoder
from tests.label.conftest import Site, make_images

pytestmark = pytest.mark.usefixtures("tiny_lite0_for_module")
N_IMAGES = 12


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def _table(root: Path, name: str, rows: list[dict]) -> Path:
    path = root / "tables" / f"{name}.csv"
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_lite0_for_module):
    """Photos and three personal models of ann and bo fitted by the command: ratings of two
    attributes on 1-3 ('warm' by everyone, 'bright' by ann), keep/delete ratings (1-2) and pairs."""
    root = tmp_path_factory.mktemp("given")
    photos = root / "photos"
    make_images(photos, N_IMAGES, size=24)
    image = [f"../photos/im{k:02d}.jpg" for k in range(N_IMAGES)]
    ratings = [
        {"user_id": who, "image": image[k], "warm": 1 + 3 * k // N_IMAGES, "bright": 3 - 3 * k // N_IMAGES}
        for k in range(N_IMAGES)
        for who in ("ann", "bo")
    ]
    for row in ratings[1::2]:
        row["bright"] = None  # bo rated only 'warm'
    keep = [
        {"user_id": who, "image": image[k], "keep": 2 if (k >= 4) == (who == "ann") else 1}
        for k in range(N_IMAGES)
        for who in ("ann", "bo")
    ]
    pairs = [
        {
            "user_id": ("ann", "bo")[k % 2],
            "image_a": image[k],
            "image_b": image[(k + s) % N_IMAGES],
            "warm": 1.0,
        }
        for k in range(N_IMAGES)
        for s in (1, 5)
    ]
    models = {}
    for name, rows in (("ratings", ratings), ("keep", keep), ("pairs", pairs)):
        models[name] = root / f"{name}.skops"
        fit = ["fit", _table(root, name, rows), "--model", models[name], "--epochs", "2"]
        assert run(*fit, "--no-progress", "--cache-dir", root / "cache") == 0
    return SimpleNamespace(root=root, photos=photos, models=models, cache=root / "cache")


def loaded(world, name: str):
    model, info = load_model(world.models[name])
    use_runtime(model, world.cache, False, "cpu")
    return model, info


def test_a_rating_project_asks_a_given_models_questions_from_the_first_click(world, tmp_path):
    model, info = loaded(world, "ratings")
    assert info["attributes"] == ["warm", "bright"] and info["levels"] == [1.0, 2.0, 3.0]
    project = LabelProject(
        world.photos,
        ["bright"],  # the model's second attribute
        kind="rating",
        levels=3,
        model=model,
        workspace=tmp_path / "workspace",
        background=False,
        explore=0.0,
        update_every=2,
    )
    try:
        site = Site(project)
        site.add("cy")
        learner = project.learner
        assert learner.has_model("bright") and learner.outputs == {"bright": (1, 2)}
        assert learner.columns == {"bright": ("image", "user_id")}
        learner._random_question = lambda *_: pytest.fail("a random question with a model given")
        asked = []
        for k in range(6):
            question = site.next("cy")
            assert question["model"] is True and question.get("item_b") is None
            asked.append(question["item_a"])
            assert site.answer("cy", question, 1 + k % 3, f"click-{k:04d}").status_code == 200
        assert len(set(asked)) == 6, "never the same image twice"
        assert learner.last_error is None and learner.updates >= 3
        # cy was added to the given model (add_users), which was never refitted.
        assert learner.models["bright"] is model and not learner.fitted_on
        encoder = model.named_steps["features"].named_transformers_["user"]
        assert "cy" in set(np.concatenate(encoder.categories_))

        ranking = learner.ranking("cy", "bright")
        assert list(ranking.columns) == [
            "item",
            "rank",
            "score",
            "predicted",
            "confidence",
            "p_1",
            "p_2",
            "p_3",
        ]
        assert sorted(ranking["item"]) == project.items
        assert ranking["predicted"].isin([1, 2, 3]).all()
        assert ((ranking["confidence"] > 0) & (ranking["confidence"] <= 1)).all()
        # The ranking is the model's 'bright' output for cy, not its 'warm' one.
        paths = [str(project.folder / item) for item in ranking["item"]]
        proba = model.predict_proba(pd.DataFrame({"image": paths, "user_id": "cy"}))
        np.testing.assert_allclose(ranking[["p_1", "p_2", "p_3"]], proba[1], atol=1e-6)
        assert not np.allclose(proba[0], proba[1])
    finally:
        project.close()


def test_a_given_rating_model_with_other_input_columns(tmp_path):
    """The rating frame takes the given pipeline's column names, whatever they are."""
    folder = tmp_path / "photos"
    items = make_images(folder, 8)
    paths = [str(folder.resolve() / item) for item in items]
    embeddings = np.random.RandomState(0).normal(size=(len(items), 4))
    features = ColumnTransformer(
        [("photo", EmbeddingLookup(paths, embeddings), "photo"), ("who", UserEncoder(), ["who"])]
    )
    head = RatingClassifier(
        classes=[1, 2],
        user_features=[4, 5],
        hidden_layer_sizes=(),
        max_epochs=5,
        device="cpu",
        random_state=0,
    )
    X = pd.DataFrame({"photo": paths * 2, "who": ["ann"] * 8 + ["bo"] * 8})
    y = np.r_[embeddings[:, 0] > 0, embeddings[:, 0] < 0].astype(int) + 1
    model = Pipeline([("features", features), ("head", head)]).fit(X, y)
    project = LabelProject(
        folder, ["keep"], kind="rating", levels=2, model=model, workspace=tmp_path / "ws", background=False
    )
    try:
        learner = project.learner
        assert learner.columns == {"keep": ("photo", "who")}
        site = Site(project)
        site.add("cy")
        for k in range(4):
            assert site.answer("cy", site.next("cy"), 2, f"click-{k:04d}").status_code == 200
        assert learner.last_error is None and learner.updates >= 1
        assert model[-1].n_user_features_ == 3, "cy was added"
        assert set(learner.ranking("cy", "keep")["predicted"]) <= {1, 2}
    finally:
        project.close()


def test_keep_delete_apply_from_a_given_model(world, tmp_path, capsys):
    common = ["--no-progress", "--cache-dir", world.cache, "--workspace", tmp_path / "workspace"]
    table = _table(
        tmp_path,
        "ann",
        [
            {"user_id": "ann", "image": f"../photos/im{k:02d}.jpg", "keep": 2 if k >= 4 else 1}
            for k in range(6)
        ],
    )
    photos = tmp_path / "photos"
    make_images(photos, N_IMAGES, size=24)
    assert run("label", photos, "--keep-delete", "--import", table, *common) == 0
    out = tmp_path / "results"
    argv = [
        "label",
        photos,
        "--keep-delete",
        "--model",
        world.models["keep"],
        "--apply",
        "ann",
        "--output",
        out,
    ]
    assert run(*argv, *common) == 0
    ranking = pd.read_csv(out / "ann-keep.csv")
    assert {"predicted", "confidence", "keep", "p_1", "p_2"} <= set(ranking.columns)
    assert len(ranking) == N_IMAGES and (ranking["keep"] == (ranking["predicted"] == 2)).all()
    assert "No photo was moved or deleted" in capsys.readouterr().err


@pytest.mark.parametrize(
    "model, options, message",
    [
        (
            "pairs",
            ["--kind", "rating", "--levels", "3", "--attributes", "warm"],
            "it is a pairs model; a rating",
        ),
        ("ratings", ["--attributes", "warm"], "it is a rating model; a pairs project"),
        (
            "ratings",
            ["--kind", "rating", "--levels", "3", "--attributes", "warm,smart"],
            "it has no attribute ['smart']; it has ['warm', 'bright']",
        ),
        (
            "ratings",
            ["--kind", "rating", "--levels", "4", "--attributes", "warm"],
            "it rates on levels 1, 2, 3; this project rates on 4 levels (1, 2, 3, 4)",
        ),
        ("keep", ["--kind", "rating", "--levels", "3", "--attributes", "keep"], "it rates on levels 1, 2;"),
        ("pairs", ["--attributes", "smart"], "it has no attribute ['smart']; it has ['warm']"),
    ],
    ids=["pairs for ratings", "ratings for pairs", "attribute", "levels", "keep levels", "pairs attribute"],
)
def test_a_model_that_does_not_fit_the_project_is_one_error(world, tmp_path, model, options, message, capsys):
    workspace = tmp_path / "workspace"
    argv = ["label", world.photos, *options, "--model", world.models[model], "--apply", "ann"]
    assert run(*argv, "--no-progress", "--workspace", workspace) == 2
    err = capsys.readouterr().err
    assert f"--model {world.models[model]}: {message}" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not workspace.exists(), "refused before the project's database is made"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(users=False, personal=False), "fitted without people"),
        (dict(output="values", levels=None, head="regressor"), "regressor head predicts ratings as numbers"),
    ],
)
def test_check_model_refuses_shared_and_regressor_rating_models(change, message):
    info = {"task": "rating", "users": True, "personal": True, "output": "classes", "levels": [1.0, 2.0]}
    LiveLearner.check_model({**info, "attributes": ["keep"]}, kind="rating", levels=2, attributes=["keep"])
    with pytest.raises(ValueError, match=message):
        LiveLearner.check_model(
            {**info, **change, "attributes": ["keep"]}, kind="rating", levels=2, attributes=["keep"]
        )


@pytest.mark.parametrize("hidden, noted", [(["8"], True), ([], False)], ids=["hidden layer", "linear"])
def test_a_given_pairs_model_with_a_hidden_layer_is_noted(world, tmp_path, hidden, noted, capsys):
    """Its people act on the hidden layer, which keeps mostly their shared taste: the command says
    so once and how to fit a linear one; a linear model gets no note."""
    rows = [
        {
            "user_id": who,
            "image_a": f"../photos/im{k:02d}.jpg",
            "image_b": f"../photos/im{(k + 3) % N_IMAGES:02d}.jpg",
        }
        for k in range(N_IMAGES)
        for who in ("ann", "bo")
    ]
    for k, row in enumerate(rows):
        row["warm"] = float(k % 3 != 0)
    table = _table(world.root, f"pairs-{len(hidden)}", rows)
    model = tmp_path / "given.skops"
    common = ["--no-progress", "--cache-dir", world.cache]
    assert run("fit", table, "--model", model, "--epochs", "2", "--hidden", *hidden, *common) == 0
    assert load_model(model)[0].steps[-1][1].hidden_layer_sizes_ == tuple(int(n) for n in hidden)
    capsys.readouterr()
    photos = tmp_path / "photos"
    make_images(photos, N_IMAGES, size=24)
    mine = _table(tmp_path, "ann", rows[::2])  # ann's own judgments, imported into the project
    workspace = ["--workspace", tmp_path / "workspace"]
    assert run("label", photos, "--attributes", "warm", "--import", mine, *workspace, *common) == 0
    argv = ["label", photos, "--attributes", "warm", "--model", model, "--apply", "ann"]
    assert run(*argv, "--output", tmp_path / "out", *workspace, *common) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "hidden layer" in line]
    if noted:
        assert len(notes) == 1, notes
        assert "(8 units)" in notes[0] and "--hidden with no sizes" in notes[0]
    else:
        assert notes == []
