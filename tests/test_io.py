"""Writing outputs: groups replaced together, cache entries at once, links and streams kept."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from skpercept._io import atomic_write, replace_together, write_bytes_atomic
from skpercept.embed._cache import EmbeddingCache


def test_a_group_is_replaced_together_or_not_at_all(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.html"
    first.write_text("old a")
    second.write_text("old b")
    with pytest.raises(OSError), replace_together():
        write_bytes_atomic(first, b"new a")
        assert first.read_text() == "old a"  # not yet: the group has not finished
        with atomic_write(second) as file:
            file.write(b"half")
            raise OSError(27, "File too large")
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.html"]
    with replace_together():
        write_bytes_atomic(first, b"new a")
        write_bytes_atomic(second, b"new b")
    assert (first.read_text(), second.read_text()) == ("new a", "new b")


def test_cache_entries_are_written_at_once_inside_a_group(tmp_path):
    """Before: a command that wrapped its whole run in one output group deferred every embedding
    cache entry to the end, so a later step of the same run (the demo's final fit) embedded
    every image again."""
    cache = EmbeddingCache(tmp_path / "cache", {"model": "m"})
    with replace_together():
        write_bytes_atomic(tmp_path / "entry", b"x", together=False)
        assert (tmp_path / "entry").read_bytes() == b"x"
        cache.put("k" * 32, np.ones(3))
        np.testing.assert_array_equal(cache.get("k" * 32), np.ones(3))


def test_new_files_get_the_umask_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "new", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o644
