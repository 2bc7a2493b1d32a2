"""Sharded embedding on Dask: order, bad images, resuming by content, killed workers, joblib route."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skpercept.embed import ImageLoadError, TimmEmbedder
from skpercept.embed._sharded import ShardedEmbeddings, embed_sharded
from tests._images import TINY_TIMM, photo


def timm_embedder(**params):
    defaults = dict(model_name=TINY_TIMM, pretrained=None, device="cpu", batch_size=4, num_workers=0)
    return TimmEmbedder(**{**defaults, **params})


class CrashOnceEmbedder(TimmEmbedder):
    """Kills its own process (like ``kill -9``) the first time it meets ``crash.png``."""

    def transform(self, X):
        for path in map(Path, X):
            marker = path.with_name("crashed")
            if path.name == "crash.png" and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return super().transform(X)


class FlakyEmbedder(TimmEmbedder):
    """Raises an OSError (a network file system's hiccup) the first time it meets ``flaky.png``."""

    def transform(self, X):
        for path in map(Path, X):
            marker = path.with_name("failed")
            if path.name == "flaky.png" and not marker.exists():
                marker.touch()
                raise OSError(f"transient failure reading {path}")
        return super().transform(X)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # Worker processes, as users run them (a crash must kill a process, not a thread); not the
    # default client, so that client=None runs in this process.
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_ for workers slows torch on the CPU (README); an
    # earlier cluster in this session may have copied it into this process's environment.
    with (
        pytest.MonkeyPatch.context() as patch,
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
    ):
        patch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def write_photos(folder: Path, n: int, names: dict[int, str] | None = None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / (names or {}).get(i, f"img{i:03d}.png")
        Image.fromarray(photo(i)).save(path)
        paths.append(str(path))
    return paths


def test_workers_match_transform_in_order_with_nan_rows_in_place(client, tmp_path):
    paths = write_photos(tmp_path / "img", 23)
    (tmp_path / "img" / "img005.png").write_bytes(b"not an image")
    paths[17] = str(tmp_path / "img" / "missing.png")
    paths[20] = paths[2]  # a repeated image embeds like its first occurrence
    emb = timm_embedder(on_error="nan", cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning):
        expected = timm_embedder(on_error="nan").fit(paths).transform(paths)
    out = embed_sharded(emb, paths, tmp_path / "out", client=client, shard_size=5)

    assert out.shape == (23, 256) and out.n_shards == 5 and out.computed_shards == (0, 1, 2, 3, 4)
    got = np.asarray(out)
    np.testing.assert_array_equal(np.isnan(got).all(axis=1), np.isin(np.arange(23), [5, 17]))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(out[[21, 3, 20]], expected[[21, 3, 20]], atol=1e-5)
    np.testing.assert_allclose(out[7], expected[7], atol=1e-5)
    assert [start for start, _ in out.iter_shards()] == [0, 5, 10, 15, 20]
    assert all(isinstance(shard, np.memmap) for _, shard in out.iter_shards())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["nan_rows"] for s in manifest["shards"]] == [0, 1, 0, 1, 0]
    # Every worker filled the shared content-hash cache: one entry per distinct good image.
    assert len(list((tmp_path / "cache").glob("*/*/*.npy"))) == 20


def test_killed_worker_shard_is_recomputed_nothing_lost_or_twice(client, tmp_path):
    paths = write_photos(tmp_path / "img", 16, names={9: "crash.png"})
    expected = timm_embedder().fit(paths).transform(paths)
    workers_before = set(client.scheduler_info()["workers"])
    out = embed_sharded(
        CrashOnceEmbedder(**timm_embedder().get_params()),
        paths,
        tmp_path / "out",
        client=client,
        shard_size=4,
    )

    assert (tmp_path / "img" / "crashed").exists()  # a worker process really died mid-shard
    assert out.shape == (16, 256) and out.n_shards == 4
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["manifest.json"] + [f"shard-{k:06d}.{ext}" for k in range(4) for ext in ("npy", "json")]
    )
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != workers_before  # the nanny restarted it


def test_retries_rerun_a_shard_whose_task_raised(client, tmp_path):
    paths = write_photos(tmp_path / "img", 6, names={4: "flaky.png"})
    flaky = FlakyEmbedder(**timm_embedder().get_params())
    with pytest.raises(OSError, match="transient failure"):
        embed_sharded(flaky, paths, tmp_path / "out", client=client, shard_size=3)
    (tmp_path / "img" / "failed").unlink()
    out = embed_sharded(flaky, paths, tmp_path / "out", client=client, shard_size=3, retries=1)
    assert (tmp_path / "img" / "failed").exists() and 1 in out.computed_shards
    np.testing.assert_allclose(out[:], timm_embedder().fit(paths).transform(paths), atol=1e-5)


def test_joblib_dask_backend_runs_gridsearch_over_an_embedder_pipeline(client):
    images = [photo(i) for i in range(12)]
    y = np.linspace(0.0, 1.0, 12)
    search = GridSearchCV(
        Pipeline([("embed", timm_embedder()), ("ridge", Ridge())]),
        {"ridge__alpha": [0.01, 100.0]},
        cv=2,
        n_jobs=-1,
    )
    from distributed import get_task_stream

    with client.as_current(), joblib.parallel_config(backend="dask"), get_task_stream() as tasks:
        search.fit(images, y)
    local = GridSearchCV(search.estimator, search.param_grid, cv=2, n_jobs=1).fit(images, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], rtol=1e-5
    )
    assert search.best_params_ == local.best_params_
    # The 4 fits ran as tasks on the cluster's worker processes.
    assert tasks.data and {task["worker"] for task in tasks.data} <= set(client.scheduler_info()["workers"])


def test_rerun_skips_shards_whose_inputs_are_unchanged_by_content(tmp_path):
    paths = write_photos(tmp_path / "img", 10)
    emb = timm_embedder()
    first = embed_sharded(emb, paths, tmp_path / "out", shard_size=4)  # no client: in this process
    assert first.computed_shards == (0, 1, 2) and first.reused_shards == ()
    before = np.asarray(first)

    again = embed_sharded(emb.set_params(batch_size=2), paths, tmp_path / "out", shard_size=4)
    assert again.computed_shards == () and again.reused_shards == (0, 1, 2)

    Image.fromarray(photo(99)).save(paths[5])  # same name, new content
    (tmp_path / "out" / "shard-000002.npy").write_bytes(b"damaged")
    resumed = embed_sharded(emb, paths, tmp_path / "out", shard_size=4)
    assert resumed.computed_shards == (1, 2) and resumed.reused_shards == (0,)
    after = np.asarray(resumed)
    np.testing.assert_allclose(after[5], emb.fit(paths).transform([paths[5]])[0], atol=1e-5)
    assert not np.allclose(after[5], before[5], atol=1e-3)
    np.testing.assert_array_equal(np.delete(after, 5, axis=0), np.delete(before, 5, axis=0))

    changed = embed_sharded(emb.set_params(tta=True), paths, tmp_path / "out", shard_size=4)
    assert changed.computed_shards == (0, 1, 2)
    shorter = embed_sharded(emb, paths[:3], tmp_path / "out", shard_size=4)
    assert shorter.n_shards == 1 and not (tmp_path / "out" / "shard-000001.npy").exists()


def test_dataframe_of_two_image_columns(tmp_path):
    paths = write_photos(tmp_path / "img", 5)
    frame = pd.DataFrame({"left": paths, "right": paths[::-1]})
    emb = timm_embedder()
    out = embed_sharded(emb, frame, tmp_path / "out", shard_size=2)
    np.testing.assert_allclose(out[:], emb.fit(frame).transform(frame), atol=1e-5)
    np.testing.assert_allclose(out[1:4, 256:], emb.transform(frame)[1:4, 256:], atol=1e-5)


def test_bad_image_under_raise_names_the_row_of_the_whole_input(client, tmp_path):
    paths = write_photos(tmp_path / "img", 9)
    Path(paths[7]).write_bytes(b"corrupt")
    for where in (None, client):
        with pytest.raises(ImageLoadError, match=r"img007\.png.*\(row 7\)"):
            embed_sharded(timm_embedder(), paths, tmp_path / "out", client=where, shard_size=3)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_invalid_arguments_and_unfinished_folders(tmp_path):
    with pytest.raises(ValueError, match="random_state"):
        embed_sharded(timm_embedder(random_state=None), [photo(0)], tmp_path)
    with pytest.raises(ValueError, match="shard_size"):
        embed_sharded(timm_embedder(), [photo(0)], tmp_path, shard_size=0)
    with pytest.raises(ValueError, match="empty"):
        embed_sharded(timm_embedder(), [], tmp_path)
    with pytest.raises(FileNotFoundError, match="not finished"):
        ShardedEmbeddings(tmp_path)
    embed_sharded(timm_embedder(), [photo(i) for i in range(3)], tmp_path, shard_size=2)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][1:]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="once each"):
        ShardedEmbeddings(tmp_path)
