"""The persistent embedding cache: content keys, model keys, atomic writes under kill -9."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skpercept.embed import TimmEmbedder
from tests._images import TINY_TIMM, photo

REPO = Path(__file__).resolve().parents[2]


def make_images(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        Image.fromarray(photo(100 + i)).save(folder / f"img{i}.png")
        paths.append(str(folder / f"img{i}.png"))
    return paths


def embedder(cache_dir, **params):
    defaults = dict(
        model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=2, num_workers=2, cache_dir=cache_dir
    )
    return TimmEmbedder(**{**defaults, **params})


@pytest.fixture
def forward_count(monkeypatch):
    count = []
    original = TimmEmbedder._forward
    monkeypatch.setattr(
        TimmEmbedder, "_forward", lambda self, m, b: count.append(len(b)) or original(self, m, b)
    )
    return count


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*/*/*.npy"))


def test_hit_on_renamed_file_miss_on_changed_file(tmp_path, forward_count):
    paths = make_images(tmp_path / "images", 4)
    cache = tmp_path / "cache"
    expected = embedder(None).fit(paths).transform(paths)
    forward_count.clear()
    first = embedder(cache).fit(paths).transform(paths)
    np.testing.assert_allclose(first, expected, atol=1e-6)
    assert sum(forward_count) == 4 and len(entries(cache)) == 4

    renamed = [str(tmp_path / "images" / f"renamed{i}.png") for i in range(4)]
    for old, new in zip(paths, renamed):
        shutil.move(old, new)
    forward_count.clear()
    again = embedder(cache).fit(renamed).transform(renamed)
    assert sum(forward_count) == 0
    np.testing.assert_array_equal(again, first)

    Image.fromarray(photo(999)).save(renamed[2])
    forward_count.clear()
    changed = embedder(cache).fit(renamed).transform(renamed)
    assert sum(forward_count) == 1
    np.testing.assert_array_equal(changed[[0, 1, 3]], first[[0, 1, 3]])
    assert not np.allclose(changed[2], first[2])


def test_model_and_preprocessing_are_part_of_the_key(tmp_path, forward_count):
    paths = make_images(tmp_path / "images", 2)
    cache = tmp_path / "cache"
    embedder(cache).fit(paths).transform(paths)
    for params in (dict(tta=True), dict(random_state=1), dict(model_name="test_resnet")):
        forward_count.clear()
        embedder(cache, **params).fit(paths).transform(paths)
        assert sum(forward_count) >= 2, params
    # normalize is applied after the cache, so it shares entries.
    forward_count.clear()
    raw = embedder(cache, normalize=False).fit(paths).transform(paths)
    assert sum(forward_count) == 0
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True),
        embedder(cache).fit(paths).transform(paths),
        atol=1e-6,
    )


def test_in_memory_images_are_cached_by_content(tmp_path, forward_count):
    cache = tmp_path / "cache"
    image = photo(5)
    first = embedder(cache).fit([image]).transform([image])
    forward_count.clear()
    second = embedder(cache).fit([image]).transform([image.copy()])
    assert sum(forward_count) == 0
    np.testing.assert_array_equal(first, second)


def test_damaged_entry_is_a_miss(tmp_path, forward_count):
    paths = make_images(tmp_path / "images", 2)
    cache = tmp_path / "cache"
    first = embedder(cache).fit(paths).transform(paths)
    entries(cache)[0].write_bytes(b"garbage")
    forward_count.clear()
    # recomputed alone, not in a batch of two: the same values up to float32 rounding
    np.testing.assert_allclose(embedder(cache).fit(paths).transform(paths), first, atol=1e-6)
    assert sum(forward_count) == 1


_CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from skpercept.embed import TimmEmbedder
original = TimmEmbedder._forward
def slow(self, model, batch):
    out = original(self, model, batch)
    time.sleep(0.2)  # keeps the run going long enough to be killed mid-way
    return out
TimmEmbedder._forward = slow
paths = {paths!r}
TimmEmbedder(model_name={model!r}, pretrained=None, device="cpu", batch_size=1, num_workers=2,
             cache_dir={cache!r}).fit(paths).transform(paths)
"""


def test_kill_9_mid_run_leaves_a_valid_cache_and_rerun_computes_only_missing(tmp_path, forward_count):
    n = 16
    paths = make_images(tmp_path / "images", n)
    cache = tmp_path / "cache"
    script = _CHILD.format(repo=str(REPO), paths=paths, model=TINY_TIMM, cache=str(cache))
    child = subprocess.Popen(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline = time.monotonic() + 120
    while len(entries(cache)) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, stderr.decode()[-3000:]

    written = entries(cache)
    assert 3 <= len(written) < n
    for entry in written:  # every entry present is complete
        assert np.load(entry).shape == (256,)
    forward_count.clear()
    rerun = embedder(cache).fit(paths).transform(paths)
    assert sum(forward_count) == n - len(written)
    np.testing.assert_allclose(rerun, embedder(None).fit(paths).transform(paths), atol=1e-6)
    assert len(entries(cache)) == n
