"""Fixed-shape arrays of model inputs, built once per dataset.

Sequences are right-padded with 0 (the padding id): position 0 holds the oldest kept item.
With right padding a causal model's output at a real position never depends on the padding,
and a batch can be trimmed to its longest sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spectran.data.prepare import PreparedDataset


@dataclass
class SequenceArrays:
    """Right-padded sequences (U', L) and their lengths (U',); ``users`` maps rows to users."""

    seqs: np.ndarray
    lengths: np.ndarray
    users: np.ndarray


def _pad(rows: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((len(rows), max_len), dtype=np.int64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[-max_len:]
        out[i, :len(r)] = r
        lengths[i] = len(r)
    return out, lengths


def training_sequences(ds: PreparedDataset, width: int) -> SequenceArrays:
    """Each user's training part, its most recent ``width`` items.

    Only the training part is used: validation and test items never become training targets.
    Users whose training part has a single item give no (input, target) pair and are left out.
    """
    rows, users = [], []
    for u in range(ds.num_users):
        part = ds.train_part(u)
        if len(part) >= 2:
            rows.append(part)
            users.append(u)
    seqs, lengths = _pad(rows, width)
    return SequenceArrays(seqs, lengths, np.array(users, dtype=np.int64))


def eval_sequences(ds: PreparedDataset, split: str, max_len: int) -> SequenceArrays:
    """Inputs for ranking the ``split`` target: the training part (valid) or training part +
    validation item (test), most recent ``max_len`` items."""
    back = {"valid": 2, "test": 1}[split]
    rows = [ds.items[ds.offsets[u]:ds.offsets[u + 1] - back] for u in range(ds.num_users)]
    seqs, lengths = _pad(rows, max_len)
    return SequenceArrays(seqs, lengths, np.arange(ds.num_users, dtype=np.int64))


def history_items(ds: PreparedDataset, split: str) -> list[np.ndarray]:
    """Every item the user interacted with before the ``split`` target (for history exclusion)."""
    back = {"valid": 2, "test": 1}[split]
    return [ds.items[ds.offsets[u]:ds.offsets[u + 1] - back] for u in range(ds.num_users)]


def iterate_batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over ``range(n)``, shuffled by ``generator`` (None: in order)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def trim(seqs: torch.Tensor, lengths: torch.Tensor, extra: int = 0) -> torch.Tensor:
    """Drop trailing all-padding columns (keeping ``extra`` spare columns)."""
    width = int(lengths.max()) + extra
    return seqs[:, :min(width, seqs.shape[1])]
