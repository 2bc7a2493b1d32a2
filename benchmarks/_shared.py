"""What several OMI benchmarks share: the named feature sets, embedded once into one cache.

The scripts beside this file put their own folder first on ``sys.path`` before importing it, so
they run from any current directory (``python benchmarks/omi.py``, ``python /abs/path/omi.py``,
``python -m benchmarks.omi``).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

from skpercept.embed import make_backbones
from skpercept.recipes import embed_blocks

#: Feature set name -> (backbones, flip averaging).
FEATURE_PLANS = {
    "lite0": (["lite0"], False),
    "lite0 flip": (["lite0"], True),
    "lite2 flip": (["lite2"], True),
    "dlib": (["dlib"], False),
    "landmarks": (["landmarks"], False),
}
#: The feature sets that need the ``[face]`` extra.
FACE_SETS = ("dlib", "landmarks")
#: Feature sets made of others, their blocks side by side.
COMBINED_SETS = {
    "lite0 + lite2 flip": ["lite0 flip", "lite2 flip"],
    "lite0 flip + dlib": ["lite0 flip", "dlib"],
    "lite0 flip + dlib + landmarks": ["lite0 flip", "dlib", "landmarks"],
    "lite2 flip + dlib + landmarks": ["lite2 flip", "dlib", "landmarks"],
    "lite0 + lite2 flip + dlib + landmarks": ["lite0 flip", "lite2 flip", "dlib", "landmarks"],
}


def embed_feature_sets(omi, cache_dir, use_dlib: bool, device: str) -> tuple[dict, dict]:
    """Feature set name -> (Z, block sizes) for every face of ``omi`` (rows as ``omi.means``);
    and the embedding seconds per feature set.

    Sets: those of :data:`FEATURE_PLANS` and :data:`COMBINED_SETS`; the ones that need dlib
    (``'dlib'``, ``'landmarks'``: dlib's 68 landmarks in the eyes' frame) only with ``use_dlib``.
    """
    images = omi.means["image"].to_numpy()
    seconds, blocks = {}, {}
    for name, (backbones, flip) in FEATURE_PLANS.items():
        if name in FACE_SETS and not use_dlib:
            continue
        start = time.perf_counter()
        embedders = make_backbones(backbones, flip=flip, cache_dir=cache_dir, device=device, progress=True)
        blocks[name] = embed_blocks(embedders, images)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"embedded {name}: {seconds[name]} s", flush=True)
    for name, parts in COMBINED_SETS.items():
        if all(part in blocks for part in parts):
            blocks[name] = (
                np.hstack([blocks[part][0] for part in parts]),
                [size for part in parts for size in blocks[part][1]],
            )
    return blocks, seconds


def hardware_line() -> str:
    """CPU, torch threads, CUDA and load: the hardware line every benchmark prints."""
    return (
        f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}; load average {os.getloadavg()[0]:.1f}"
    )
