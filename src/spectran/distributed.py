"""Data-parallel training through PyTorch DDP, launched by ``torchrun`` (or ``accelerate launch``).

The launcher is detected from the environment it sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
as nanoGPT does; without it everything runs as one process and nothing here does any work.

Choices (docs/scaling.md):

- ``train.batch_size`` is the **global** batch: every rank draws the same permutation from the
  (seed, epoch) generator, builds the same global batch and keeps its slice of rows. The loss of
  a rank is its *sum* over targets divided by the global number of targets, times the world size,
  so that DDP's gradient average equals the one-process gradient of the mean over the global batch.
- Evaluation shards users by rank (user ``u`` goes to rank ``u % world``), and all-gathers the
  per-user ranks: every user is scored exactly once and every rank holds the complete array.
- Rank 0 alone writes files (config, logs, checkpoints, metrics); every rank resumes from ``last``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from spectran.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def pick_device(name: str, setting: str = "train.device") -> torch.device:
    """The torch device of a device setting; CUDA asked for where there is none (or not that
    many GPUs) is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting}: expected auto or cpu on this machine (CUDA is not available), "
                              f"got {name!r}", setting=setting)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{setting}: expected a GPU index below {torch.cuda.device_count()}, got {name!r}",
                              setting=setting)
    return device


@contextmanager
def session(device: str) -> Iterator[tuple[DistInfo, torch.device]]:
    """This process's ranks and device, picked once for a whole run: under a launcher it joins the
    group (and leaves it at the end if it joined it here), on GPU with ``cuda:LOCAL_RANK``;
    without one, the device ``train.device`` names."""
    owns_group = launched() and not dist.is_initialized()
    info, rank_device = init_from_env(device)
    try:
        yield info, rank_device if rank_device is not None else pick_device(device)
    finally:
        if info.enabled and owns_group:
            shutdown()


def launched() -> bool:
    """Whether this process was started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0 of a launcher, or a process started without one (readable before joining a group)."""
    return os.environ.get("RANK", "0") == "0"


def init_from_env(device: str) -> tuple[DistInfo, torch.device | None]:
    """Join the process group the launcher describes (gloo on CPU, nccl on GPU).

    Returns the ranks and, on GPU, the device this rank must use (``cuda:LOCAL_RANK``); None
    leaves the device choice to ``train.device``. A no-op without a multi-process launcher.
    """
    if not launched():
        return SINGLE, None
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                    int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(f"train.device={device}: CUDA is not available on rank {info.rank}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
        return info, torch.device("cuda", info.local_rank)
    return info, torch.device("cpu")


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


@contextmanager
def main_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (it fills caches), the other ranks then read what it wrote."""
    if not info.is_main:
        barrier(info)
    yield
    if info.is_main:
        barrier(info)


def local_rows(n: int, info: DistInfo) -> slice | np.ndarray:
    """This rank's share of ``n`` rows: ``rank, rank + world, ...`` (all rows in one process)."""
    return slice(None) if not info.enabled else np.arange(info.rank, n, info.world_size)


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's decision (for time-based stops that ranks could otherwise disagree on)."""
    if not info.enabled:
        return flag
    t = _to_backend(torch.tensor([int(flag)], dtype=torch.int64))
    dist.broadcast(t, src=0)
    return bool(t.item())


def all_sum(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over ranks (epoch loss sums and counts for the log)."""
    if not info.enabled:
        return values
    t = _to_backend(torch.tensor(values, dtype=torch.float64))
    dist.all_reduce(t)
    return t.cpu().tolist()


def gather_rows(local: np.ndarray, n: int, info: DistInfo) -> np.ndarray:
    """Inverse of :func:`local_rows`: all-gather every rank's 1-d int64 values into (n,)."""
    if not info.enabled:
        return local
    size = (n + info.world_size - 1) // info.world_size
    padded = torch.full((size,), -1, dtype=torch.int64)
    padded[:len(local)] = torch.from_numpy(np.asarray(local, dtype=np.int64))
    padded = _to_backend(padded)
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    out = np.empty(n, dtype=np.int64)
    for r, part in enumerate(parts):
        rows = np.arange(r, n, info.world_size)
        out[rows] = part[:len(rows)].cpu().numpy()
    return out


def _to_backend(t: torch.Tensor) -> torch.Tensor:
    """nccl only moves CUDA tensors."""
    if dist.get_backend() == "nccl":
        return t.cuda()
    return t
