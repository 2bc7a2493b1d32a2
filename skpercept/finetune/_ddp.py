"""Data-parallel LoRA training with PyTorch's DistributedDataParallel, one process per device.

A job is started by ``torchrun --nproc_per_node=K script.py`` (or ``accelerate launch``, which
starts the same kind of workers): every process runs the same script on the same data and calls
``fit`` with ``distributed=True``. Here the processes join one process group (NCCL on CUDA,
gloo on the CPU), agree on a seed, and each step every rank trains on its own disjoint share of
one *global* batch of ``batch_size × K`` rows. The loss of each rank is weighted by its share of
the batch's labels before DDP averages the gradients, so the all-reduced gradient is the
gradient of the global batch's loss: a K-process fit follows the single-process fit with
``batch_size × K`` up to floating-point rounding (when dropout and augmentation, which draw
per rank, are off). Validation batches are split the same way and their loss is summed over the
ranks, so early stopping sees the same ``valid_loss`` on every rank and stops them together.

Every rank must run the same number of steps (each step ends in an all-reduce); a rank whose
share of a step is empty gets one unlabelled *padding* row, which contributes no loss and no
gradient.
"""

from __future__ import annotations

import atexit
import hashlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import RandomSampler, Sampler

from skpercept._utils import resolve_device
from skpercept.finetune._images import ImageRows

REAL = "real"  # batch key marking real rows (vs padding); dropped before the module's forward

_LAUNCH_HINT = (
    "distributed=True trains one process per device inside a torch.distributed job: start the "
    "script with `torchrun --nproc_per_node=K script.py` (or `accelerate launch`), or call "
    "torch.distributed.init_process_group yourself before fit."
)


@dataclass
class World:
    """This process's place in the job: rank, number of processes, and its device."""

    rank: int
    size: int
    device: str

    def broadcast(self, value: object) -> object:
        """``value`` as held by rank 0 (a picklable object)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_same_data(self, fingerprint: str) -> None:
        """Raise on every rank alike when the ranks were given different training data."""
        seen: list = [None] * self.size
        dist.all_gather_object(seen, fingerprint)
        if len(set(seen)) > 1:
            differing = [r for r, f in enumerate(seen) if f != seen[0]]
            raise ValueError(
                f"distributed=True needs the same X and y on every process; rank(s) {differing} "
                "hold different rows than rank 0 (each process loads the full data set and the "
                "estimator shards it)."
            )


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def join_world(device: str) -> World:
    """Join the process group of a distributed fit, creating it from torchrun's environment.

    A group created here lives until the process exits: a process group cannot be re-created
    reliably in the same processes, so later fits (and the script's own collectives, such as a
    barrier before saving) use the same one. The device of a rank is its own GPU
    (``cuda:<LOCAL_RANK>``) when ``device`` is ``'auto'`` or ``'cuda'`` and CUDA is visible, the
    CPU otherwise; an indexed ``'cuda:N'`` is kept.
    """
    if not dist.is_available():
        raise RuntimeError("distributed=True needs a PyTorch build with torch.distributed.")
    create = not dist.is_initialized()
    if create and not {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} <= set(os.environ):
        raise RuntimeError(_LAUNCH_HINT)
    resolved = resolve_device(device)
    if resolved == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        resolved = f"cuda:{local % torch.cuda.device_count()}"
    if resolved.startswith("cuda"):
        # NCCL and the 'cuda' device string both address the current device.
        torch.cuda.set_device(torch.device(resolved))
    if create:
        dist.init_process_group(backend="nccl" if resolved.startswith("cuda") else "gloo")
        atexit.register(_leave_group)
    return World(dist.get_rank(), dist.get_world_size(), resolved)


def wrap_module(module: torch.nn.Module, world: World) -> torch.nn.Module:
    """``module`` inside DDP: rank 0's weights are broadcast, gradients are averaged."""
    device = torch.device(world.device)
    # The frozen batch-norm statistics never change after the initial broadcast: no need to
    # send them again before every forward (newer torch renamed the option).
    renamed = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    no_resync = {"forward_sync_buffers" if renamed else "broadcast_buffers": False}
    return DistributedDataParallel(
        module, device_ids=[device] if device.type == "cuda" else None, **no_resync
    )


def unwrap_module(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (or ``module`` itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def data_fingerprint(rows: ImageRows, sources: list) -> str:
    """Hash of a fit's rows: image and user codes, labels (NaN-aware) and the image paths."""
    digest = hashlib.sha256()
    for codes in (rows.codes, rows.users):
        digest.update(np.ascontiguousarray(codes, dtype=np.int64).tobytes())
    digest.update(np.nan_to_num(np.asarray(rows.y, dtype=np.float64), nan=-1e300).tobytes())
    digest.update("\0".join(str(s) if isinstance(s, (str, os.PathLike)) else "" for s in sources).encode())
    return digest.hexdigest()


def pad_rows(rows: ImageRows) -> ImageRows:
    """``rows`` plus one unlabelled row at the end (index ``len(rows)``), the padding of a rank."""
    y = np.asarray(rows.y, dtype=np.float32)
    blank = np.full((1, *y.shape[1:]), np.nan, dtype=np.float32)
    return ImageRows(
        np.concatenate([rows.codes, rows.codes[:1]]),
        np.concatenate([rows.users, rows.users[:1]]),
        np.concatenate([y, blank]),
    )


def _share(batch: list[int] | np.ndarray, rank: int, size: int, pad: int) -> list[int]:
    part = np.array_split(np.asarray(batch, dtype=np.int64), size)[rank].tolist()
    return part or [pad]


class ShardedBatches(Sampler):
    """Batches of one rank: its contiguous share of each global batch of ``batch_size × size``.

    The global batches are those a single-process DataLoader with ``batch_size × size`` and
    ``shuffle=True, generator=generator`` draws (same permutation, same use of the generator),
    so the K shares of a step are disjoint and together are the single process's batch.
    ``generator=None`` keeps the rows in order (validation).
    """

    def __init__(self, n_rows: int, batch_size: int, world: World, generator=None) -> None:
        self.n_rows = n_rows
        self.global_size = batch_size * world.size
        self.rank, self.size = world.rank, world.size
        self.generator = generator

    def __iter__(self) -> Iterator[list[int]]:
        rows = range(self.n_rows)
        order = list(RandomSampler(rows, generator=self.generator)) if self.generator is not None else rows
        for start in range(0, self.n_rows, self.global_size):
            yield _share(order[start : start + self.global_size], self.rank, self.size, self.n_rows)

    def __len__(self) -> int:
        return -(-self.n_rows // self.global_size)


class ShardedBlocks(Sampler):
    """Image blocks of one rank: whole blocks, ``size`` of them per step, one to each rank.

    ``blocks`` draws the same blocks on every rank (same seed); rank r trains on blocks
    ``r, r + size, …``. A block's pairs never straddle ranks, so a step covers ``size`` blocks
    of ``batch_size`` images, not one block of ``batch_size × size``.
    """

    def __init__(self, blocks: Sampler, n_rows: int, world: World) -> None:
        self.blocks = blocks
        self.n_rows = n_rows
        self.rank, self.size = world.rank, world.size

    def __iter__(self) -> Iterator[list[int]]:
        blocks = list(self.blocks)
        for start in range(0, len(blocks), self.size):
            step = blocks[start : start + self.size]
            yield step[self.rank] if self.rank < len(step) else [self.n_rows]

    def __len__(self) -> int:
        return -(-len(self.blocks) // self.size)


class ShardCollate:
    """``collate`` plus a boolean ``'real'`` entry telling rows from the padding row."""

    def __init__(self, collate, n_rows: int) -> None:
        self.collate = collate
        self.n_rows = n_rows

    def __call__(self, batch: list[int]):
        X, y = self.collate(batch)
        X[REAL] = torch.as_tensor(np.asarray(batch) < self.n_rows)
        return X, y


def global_loss(loss: torch.Tensor, y: torch.Tensor, real: torch.Tensor, world: World):
    """This rank's loss, reweighted so that DDP's average gives the global batch's gradient.

    ``loss`` is the rank's mean over its observed labels (the masked losses of
    :mod:`skpercept.heads.nets`). Weighting it by ``size × n_rank / n_total`` makes the mean over
    ranks equal to the mean over all the step's observed labels. Returns the weighted loss,
    and the global loss and row count of the step (equal on every rank) for the history.
    """
    y = y.reshape(len(y), -1)
    seen = (~torch.isnan(y)).sum().to(device=loss.device, dtype=torch.float64)
    stats = torch.stack(
        [loss.detach().double() * seen, seen, real.sum().to(device=loss.device, dtype=torch.float64)]
    )
    dist.all_reduce(stats)
    total = stats[1].clamp_min(1.0)
    weighted = loss * (seen * world.size / total).to(loss.dtype)
    return weighted, float(stats[0] / total), int(stats[2])


def rank_seed(seed: int, rank: int) -> int:
    """Seed of the dropout and augmentation draws of a rank other than 0 (which keeps ``seed``)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0] >> 1)
