"""Data-parallel LoRA training (DDP): the shards of each rank, and 2 CPU processes (gloo) vs one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

pytest.importorskip("peft")

from skpercept._utils import torch_generator
from skpercept.finetune import LoRAPairwiseRanker
from skpercept.finetune._ddp import ShardedBatches, ShardedBlocks, World
from skpercept.finetune._images import ImageBlockSampler, ImageTable

WORKER = Path(__file__).with_name("_ddp_worker.py")

# Dropout, adapter dropout and augmentation draw per rank: off, the fits must agree.
PARAMS = dict(
    model_name="timm:test_efficientnet",
    pretrained=None,
    image_size=32,
    max_epochs=3,
    early_stopping=True,
    validation_fraction=0.3,
    patience=5,
    hidden_layer_sizes=(16,),
    lr=1e-2,
    dropout=0.0,
    lora_dropout=0.0,
    augment=False,
    device="cpu",
    random_state=0,
)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        pixels[..., 0] = 20 * i
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(pixels).save(paths[-1])
    i, j = np.triu_indices(10, 1)
    swap = rng.random(i.size) < 0.5
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    X = pd.DataFrame(
        {
            "image_a": np.asarray(paths)[a],
            "image_b": np.asarray(paths)[b],
            "user_id": np.where(rng.random(i.size) < 0.5, "ann", "bob"),
        }
    )
    # Missing labels make ranks hold unequal label counts: the loss weighting must handle it.
    y = pd.DataFrame({"red": (a > b).astype(float), "other": rng.random(i.size).round()})
    y.loc[::7, "other"] = np.nan
    return X, y


def _world(rank: int) -> World:
    return World(rank=rank, size=2, device="cpu")


def _epochs(loader: DataLoader, n: int = 2) -> list[list[list[int]]]:
    return [[list(batch) for batch in loader] for _ in range(n)]


def test_row_shards_split_the_single_process_batches():
    n, per_rank = 17, 4  # global batches of 8, 8 and 1 row: rank 1 pads the last step
    single = _epochs(
        DataLoader(range(n), batch_size=8, shuffle=True, generator=torch_generator(5), collate_fn=list)
    )
    ranks = []
    for rank in range(2):
        generator = torch_generator(5)
        sampler = ShardedBatches(n, per_rank, _world(rank), generator)
        # The sampler shares the loader's generator, as in fit: the same draws as shuffle=True.
        ranks.append(
            _epochs(DataLoader(range(n + 1), batch_sampler=sampler, generator=generator, collate_fn=list))
        )
        assert len(sampler) == 3
    assert single[0] != single[1]  # reshuffled every epoch
    for epoch, batches in enumerate(single):
        assert [len(r[epoch]) for r in ranks] == [len(batches)] * 2
        for step, batch in enumerate(batches):
            left, right = ranks[0][epoch][step], ranks[1][epoch][step]
            assert [i for i in left + right if i != n] == batch
            assert not set(left) & set(right)
    assert ranks[1][0][-1] == [n]  # the padding row
    # Validation: rows in order; row 5 is the padding of rank 1's empty share of [4].
    assert list(ShardedBatches(5, 2, _world(1))) == [[2, 3], [5]]


def test_image_blocks_go_whole_to_one_rank(pairs):
    X, _ = pairs
    codes = ImageTable(X, ["image_a", "image_b"]).codes
    blocks = list(ImageBlockSampler(codes, 3, shuffle=True, seed=0))
    n = len(codes)
    steps = [
        list(ShardedBlocks(ImageBlockSampler(codes, 3, shuffle=True, seed=0), n, _world(r))) for r in range(2)
    ]
    assert len(steps[0]) == len(steps[1]) == -(-len(blocks) // 2)
    assert steps[0] == blocks[0::2]
    assert [s for s in steps[1] if s != [n]] == blocks[1::2]
    if len(blocks) % 2:
        assert steps[1][-1] == [n]


def test_distributed_fit_needs_a_launcher(pairs, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        LoRAPairwiseRanker(distributed=True, **PARAMS).fit(*pairs)


def test_two_processes_match_one_with_the_doubled_batch(pairs, tmp_path):
    X, y = pairs
    joblib.dump((X, y, {**PARAMS, "batch_size": 4}), tmp_path / "data.joblib")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    workers = subprocess.Popen(
        [*command, str(WORKER), str(tmp_path / "data.joblib"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The single-process reference trains while the workers start.
        single = LoRAPairwiseRanker(batch_size=8, **PARAMS).fit(X, y)
        log, _ = workers.communicate(timeout=300)
    finally:
        if workers.poll() is None:
            # SIGTERM lets torchrun stop its workers (they run in sessions of their own).
            workers.terminate()
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                workers.kill()
    assert workers.returncode == 0, log[-3000:]
    ranks = [joblib.load(tmp_path / f"rank{r}.joblib") for r in range(2)]

    for rank in ranks:
        assert "needs the same X and y on every process; rank(s) [1]" in rank["refused"]
    # Every rank holds the same model and the same history (early stopping decides alike).
    assert ranks[0]["history"] == ranks[1]["history"]
    for key in ("rows", "blocks"):
        for name, tensor in ranks[0][key].items():
            assert torch.equal(tensor, ranks[1][key][name]), name
    assert ranks[0]["blocks_history"] == ranks[1]["blocks_history"]
    assert np.isfinite(ranks[0]["blocks_history"]).all()

    # ... and it is the single-process fit with batch_size 8, up to rounding.
    history = ranks[0]["history"]
    assert [h["train_batch_count"] for h in history] == list(single.history_[:, "train_batch_count"])
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose([h[key] for h in history], single.history_[:, key], rtol=1e-5)
    expected = single._trainable_state()
    for name, tensor in ranks[0]["rows"].items():
        np.testing.assert_allclose(tensor.numpy(), expected[name].numpy(), atol=1e-4, err_msg=name)

    # Saved by rank 0, the model loads and predicts in this (single, non-distributed) process.
    model = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_allclose(model.decision_function(X), single.decision_function(X), rtol=1e-4, atol=1e-4)
