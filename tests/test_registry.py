"""A head and a backbone registered once appear everywhere heads and backbones are chosen.

The command's choices (``fit --head``, ``--backbone``), ``compare``, the presets
(:func:`~skpercept.heads.make_head`, :func:`~skpercept.embed.make_backbones`, the featurizer),
the safe file format and the scikit-learn common checks all read the registries.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import check_estimator

from skpercept import cli
from skpercept._utils import estimator_parameters
from skpercept.embed import (
    TimmEmbedder,
    backbone_names,
    make_backbones,
    parse_backbones,
    register_backbone,
    unregister_backbone,
)
from skpercept.heads import (
    HeadSettings,
    PairwiseRanker,
    head_names,
    make_head,
    register_head,
    registered_estimators,
    unregister_head,
)
from skpercept.persistence import load_safe, save_safe
from skpercept.recipes import make_featurizer
from tests import test_common
from tests._images import TINY_TIMM
from tests.cli._data import QUICK, tinted_images


@estimator_parameters
class ToyPairHead(PairwiseRanker):
    """A pair head of its own class: the ranker, linear and brief unless told otherwise."""

    hidden_layer_sizes: tuple[int, ...] = ()
    max_epochs: int = 5


@estimator_parameters
class ToyEmbedder(TimmEmbedder):
    """The tiny random timm model, as an embedder class of its own."""

    model_name: str = TINY_TIMM
    pretrained: str | os.PathLike | None = None
    device: str = "cpu"
    num_workers: int = 0


def _toy_embedder(model, pretrained, *, flip, device, cache_dir, progress, num_workers):
    return ToyEmbedder(tta=flip, cache_dir=cache_dir, progress=progress, normalize=False)


@pytest.fixture
def registered():
    register_head(
        "toy",
        task="pairs",
        output="pairs",
        estimator=ToyPairHead,
        build=lambda settings: ToyPairHead(device=settings.device, random_state=settings.seed),
        description="a linear pair head for the registry test",
    )
    register_backbone("toybox", _toy_embedder, description="the tiny test model", estimator=ToyEmbedder)
    yield
    unregister_head("toy")
    unregister_backbone("toybox")


def test_the_toy_head_and_backbone_are_in_the_presets(registered):
    assert "toy" in head_names("pairs", command=True) and "toy" in head_names(skpercept_only=True)
    head = make_head("toy", HeadSettings(seed=3, device="cpu"))
    assert type(head) is ToyPairHead and head.random_state == 3 and head.hidden_layer_sizes == ()
    assert "toybox" in backbone_names() and parse_backbones("toybox+lite0") == {"toybox": None, "lite0": None}
    backbones = make_backbones(["toybox"], cache_dir=None)
    assert type(backbones["toybox"]) is ToyEmbedder
    features = make_featurizer(backbones).fit_transform(pd.Series([np.zeros((8, 8, 3), np.uint8)] * 2))
    assert features.shape[0] == 2


def test_the_toy_head_is_stored_by_the_safe_format(registered, tmp_path):
    assert registered_estimators()["ToyPairHead"] is ToyPairHead
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6)), (rng.random(60) > 0.5).astype(float)
    head = make_head("toy", HeadSettings(device="cpu")).fit(X, y)
    save_safe(head, tmp_path / "toy.safetensors")
    loaded = load_safe(tmp_path / "toy.safetensors")
    assert type(loaded) is ToyPairHead
    np.testing.assert_allclose(loaded.predict_proba(X), head.predict_proba(X))
    unregister_head("toy")
    with pytest.raises(ValueError, match="unknown estimator 'ToyPairHead'"):
        load_safe(tmp_path / "toy.safetensors")  # only registered classes are rebuilt


def test_the_toy_head_and_backbone_run_the_common_checks(registered):
    checked = test_common.checked_estimators()
    toys = [est for est in checked if type(est) in (ToyPairHead, ToyEmbedder)]
    assert {type(est) for est in toys} == {ToyPairHead, ToyEmbedder}
    head = next(est for est in toys if type(est) is ToyPairHead)
    # expected failures follow the nearest registered base (PairwiseRanker's, with their reasons)
    check_estimator(head, expected_failed_checks=test_common._expected_failed_checks(head))


def test_the_command_offers_the_toy_head_and_backbone(registered, tmp_path, capsys):
    redness = tinted_images(tmp_path, 10)
    i, j = np.triu_indices(10, 1)
    pd.DataFrame(
        {
            "image_a": [f"im{a}.png" for a in i],
            "image_b": [f"im{b}.png" for b in j],
            "warm": redness[i] > redness[j],
        }
    ).astype({"warm": float}).to_csv(tmp_path / "pairs.csv", index=False)
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    assert "toy" in help_text and "toybox" in help_text
    model = tmp_path / "m.joblib"
    common = ["--backbone", "toybox", "--cache-dir", tmp_path / "cache", *QUICK]
    code = cli.main(
        [str(a) for a in ["fit", tmp_path / "pairs.csv", "--model", model, "--head", "toy", *common]]
    )
    assert code == 0, capsys.readouterr().err
    saved = joblib.load(model)
    assert type(saved[-1]) is ToyPairHead and saved.skpercept_info_["head"] == "toy"
    assert isinstance(saved[0].item_transformer.steps[0][1].transformer_list[0][1], ToyEmbedder)
    # compare: the toy backbone by name, the toy head among the pair heads by default
    argv = [
        "compare",
        tmp_path / "pairs.csv",
        "--backbones",
        "toybox",
        "--folds",
        "2",
        "--cache-dir",
        tmp_path / "cache",
    ]
    assert cli.main([str(a) for a in [*argv, *QUICK]]) == 0
    table = capsys.readouterr().out
    assert "| toybox" in table and "toy " in table and "ranker" in table and "logistic" in table
