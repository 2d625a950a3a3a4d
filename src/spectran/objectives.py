"""How a backbone is trained and queried: causal next-item or masked-item.

An :class:`Objective` turns a batch of right-padded training sequences into a
:class:`TrainBatch` whose ``targets`` hold the item to predict at each position (0 = no
target), and turns evaluation inputs into (inputs, positions) where ``positions`` picks the user
representation. Each backbone's ``BackboneSpec.objective`` builds the objective it is trained
with. These types sit below the training loop, the evaluation and the item encoders (whose
``auxiliary_loss`` hook receives the step's :class:`TrainBatch`).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass
class TrainBatch:
    users: torch.Tensor  # (B,) user indices
    inputs: torch.Tensor  # (B, L) item ids, 0 = padding, N + 1 = [MASK]
    targets: torch.Tensor  # (B, L) item id to predict at each position, 0 = none


class Objective(ABC):
    extra_width: int = 0  # training arrays hold max_len + extra_width items
    mask_token: bool = False  # the model appends a learned [MASK] row (id N + 1) after the N items

    @abstractmethod
    def train_batch(self, users: torch.Tensor, seqs: torch.Tensor, lengths: torch.Tensor,
                    generator: torch.Generator) -> TrainBatch: ...

    @abstractmethod
    def query(self, seqs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def for_table(self, rows: int) -> Objective:
        """The objective for an item table of ``rows`` rows (items added after training)."""
        return self


class CausalObjective(Objective):
    """Every position t of the training part predicts item t + 1 (all positions in one pass)."""

    extra_width = 1

    def train_batch(self, users, seqs, lengths, generator):
        width = int(lengths.max())
        seqs = seqs[:, :width]
        return TrainBatch(users, seqs[:, :-1], seqs[:, 1:])

    def query(self, seqs, lengths):
        width = int(lengths.max())
        return seqs[:, :width], lengths - 1


class MaskedObjective(Objective):
    """BERT4Rec: each real item is replaced by [MASK] with probability ``mask_ratio`` and
    predicted; for a fraction ``last_ratio`` of sequences only the last item is masked, which
    matches the inference query (a [MASK] appended after the history). Padding is never masked;
    a sequence that drew no mask trains on its last item. Defaults as ``BERT4RecSettings``.

    ``query`` expects histories padded to the model's max length L (as ``eval_sequences`` makes
    them): a history of L items drops its oldest one to make room for the [MASK], so training
    (at most L items, some masked) and inference (at most L - 1 items + [MASK]) use the same
    positions.
    """

    mask_token = True

    def __init__(self, mask_id: int, mask_ratio: float = 0.6, last_ratio: float = 0.5):
        self.mask_id, self.mask_ratio, self.last_ratio = mask_id, mask_ratio, last_ratio

    def train_batch(self, users, seqs, lengths, generator):
        width = int(lengths.max())
        seqs = seqs[:, :width]
        real = seqs != 0
        draw = torch.rand(seqs.shape, generator=generator) < self.mask_ratio
        last = torch.zeros_like(real)
        last[torch.arange(len(seqs)), lengths - 1] = True
        only_last = (torch.rand(len(seqs), generator=generator) < self.last_ratio)[:, None]
        masked = torch.where(only_last, last, draw) & real
        # a sequence with nothing masked still trains on its last item
        masked |= last & ~masked.any(dim=1, keepdim=True)
        inputs = torch.where(masked, torch.full_like(seqs, self.mask_id), seqs)
        targets = torch.where(masked, seqs, torch.zeros_like(seqs))
        return TrainBatch(users, inputs, targets)

    def for_table(self, rows: int) -> MaskedObjective:
        """The [MASK] row sits after the table, so it moves when items are added."""
        if rows + 1 == self.mask_id:
            return self
        moved = copy.copy(self)
        moved.mask_id = rows + 1
        return moved

    def query(self, seqs, lengths):
        # keep the most recent L - 1 items and put [MASK] right after them
        B, L = seqs.shape
        full = lengths >= L
        shifted = torch.where(full[:, None], torch.roll(seqs, -1, dims=1), seqs)
        lengths = torch.where(full, lengths - 1, lengths)
        shifted[full, L - 1] = 0
        inputs = shifted.clone()
        inputs[torch.arange(B), lengths] = self.mask_id
        width = int(lengths.max()) + 1
        return inputs[:, :width], lengths
