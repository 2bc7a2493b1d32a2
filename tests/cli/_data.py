"""Small data for the command's tests: tinted images, a reference-schema folder, tiny backbones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from skpercept import cli

ATTRIBUTES = ("attractive", "smart", "trustworthy")
TINY_TIMM = "test_efficientnet"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}
#: A tiny head trained for two epochs: enough to run every code path in a second.
QUICK = ["--epochs", "2", "--hidden", "8", "--no-progress"]
#: The bad-input zoos: images per table, epochs per fit.
N_IMAGES = 12
EPOCHS = 2


def tinted_images(folder: Path, n: int = 12, seed: int = 0) -> np.ndarray:
    """``im0.png`` ... : 32-px images whose redness (returned, 0..1) drives the made-up attributes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    redness = np.linspace(0, 1, n)
    for i, r in enumerate(redness):
        pixels = rng.integers(0, 60, size=(32, 32, 3)).astype(np.uint8)
        pixels[..., 0] += np.uint8(190 * r)
        Image.fromarray(pixels).save(folder / f"im{i}.png")
    return redness


def reference_folder(root: Path, people=("p1", "p2", "p3"), n_images: int = 10, seed: int = 0) -> Path:
    """A folder in the reference system's Excel schema; comparisons coded 1 = first image chosen.

    Every person rates every image (1-4, from its redness, one person harsher) and compares
    every pair of neighbouring images plus a few more (the redder image wins, one person
    contrary on 'smart').
    """
    root.mkdir(parents=True, exist_ok=True)
    redness = tinted_images(root / "images", n_images, seed)
    rng = np.random.default_rng(seed)
    images = pd.DataFrame(
        {
            "_id": [f"img{i}" for i in range(n_images)],
            "name": [f"face{i}" for i in range(n_images)],
            "data_image_part": [f"images/im{i}.png" for i in range(n_images)],
            "update_date": "2024-01-01",
        }
    )
    a, b = np.triu_indices(n_images, 1)
    flip = np.random.default_rng(seed + 1).random(len(a)) < 0.5  # either image may come first
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    pairs = pd.DataFrame(
        {
            "_id": [f"pair{k}" for k in range(len(a))],
            "im1": [f"face{i}" for i in a],
            "im2": [f"face{j}" for j in b],
            "db1": "db",
            "_id1": [f"img{i}" for i in a],
            "db2": "db",
            "_id2": [f"img{j}" for j in b],
            "name": [f"pair{k}" for k in range(len(a))],
        }
    )
    ratings, comparisons = [], []
    for p, person in enumerate(people):
        for i, r in enumerate(redness):
            level = int(np.clip(1 + int(r * 3.99) - (p == 1 and r > 0.5), 1, 4))
            ratings.append(
                {
                    "user_id": person,
                    "item_id": f"img{i}",
                    "attractive": level,
                    "smart": 5 - level,
                    "trustworthy": level if i % 3 else None,
                }
            )
        for k in rng.choice(len(a), size=min(len(a), 3 * n_images), replace=False):
            first_redder = redness[a[k]] > redness[b[k]]
            value = 1 if first_redder else 2
            contrary = 2 if first_redder else 1
            comparisons.append(
                {
                    "user_id": person,
                    "item_id": f"pair{k}",
                    "attractive": value,
                    "smart": contrary if p == 2 else value,
                    "trustworthy": value,
                }
            )
    for rows, name in ((ratings, "big_label.xlsx"), (comparisons, "big_compare_label.xlsx")):
        frame = pd.DataFrame(rows)
        frame.insert(0, "_id", [f"{name[:5]}{k}" for k in range(len(frame))])
        frame["lang"] = "en"
        frame["insert_time"] = pd.Timestamp("2024-03-01 10:00") + pd.to_timedelta(
            np.arange(len(frame)), "min"
        )
        frame.to_excel(root / name, index=False)
    images.to_excel(root / "big_data.xlsx", index=False)
    pairs.to_excel(root / "big_compares.xlsx", index=False)
    return root


def tiny_timm_checkpoint(path: Path) -> Path:
    """A local weights file for timm's tiny test model (what a user's own weights file is)."""
    import timm
    import torch

    torch.manual_seed(0)
    torch.save(timm.create_model(TINY_TIMM, num_classes=0).state_dict(), path)
    return path


def tiny_clip(folder: Path) -> tuple[Path, Path]:
    """A tiny open_clip JSON config and a local checkpoint of it: ``(config, checkpoint)``."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tiny-clip.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    if "tiny-clip" not in open_clip.list_models():
        open_clip.add_model_config(config)
    torch.manual_seed(0)
    checkpoint = folder / "tiny-clip.pt"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), checkpoint)
    return config, checkpoint


def run_command(*argv, cwd=None) -> subprocess.CompletedProcess:
    """``python -m skpercept.cli ...`` in a fresh process, offline, one thread."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    return subprocess.run(
        [sys.executable, "-m", "skpercept.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


# -- the bad-input zoos -------------------------------------------------------------------------
def ratings_frame(ids=(1, 2, 3)) -> pd.DataFrame:
    """36 ratings on a 1-4 scale driven by each image's redness."""
    redness = np.linspace(0, 1, N_IMAGES)
    return pd.DataFrame(
        [
            {"image": f"im{i}.png", "user_id": user, "warm": 1 + int(r * 3.99), "calm": 4 - int(r * 3.99)}
            for user in ids
            for i, r in enumerate(redness)
        ]
    )


def pairs_frame() -> pd.DataFrame:
    a, b = np.triu_indices(N_IMAGES, 1)
    return pd.DataFrame(
        {"image_a": [f"im{i}.png" for i in a], "image_b": [f"im{j}.png" for j in b], "warm": 1.0}
    )


def zoo_world(root: Path) -> dict:
    """The bad-input zoos' world in ``root``: images, an embedding cache and two fitted models
    (integer and text user ids), fitted with the backbone in use (a tiny one in the tests)."""
    rng = np.random.default_rng(0)
    for i, r in enumerate(np.linspace(0, 1, N_IMAGES)):
        pixels = rng.integers(0, 60, size=(32, 32, 3)).astype(np.uint8)
        pixels[..., 0] += np.uint8(190 * r)
        Image.fromarray(pixels).save(root / f"im{i}.png")
    world = {"root": root, "cache": root / "cache"}
    for kind, ids in (("int", (1, 2, 3)), ("str", ("u1", "u2", "u3"))):
        table = root / f"ratings_{kind}.csv"
        ratings_frame(ids).to_csv(table, index=False)
        model = root / f"model_{kind}.joblib"
        assert cli.main(["fit", str(table), "--model", str(model), *common(world)]) == 0
        world[f"table_{kind}"], world[f"model_{kind}"] = table, model
    return world


def common(world, command: str = "fit") -> list[str]:
    """Options every run gets: the shared cache, no progress bars, few epochs for fit."""
    options = ["--cache-dir", str(world["cache"]), "--no-progress"]
    return options + (["--epochs", str(EPOCHS)] if command == "fit" else [])


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the cache) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "cache" not in p.parts
    }
