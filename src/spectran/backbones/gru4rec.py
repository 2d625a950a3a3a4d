"""GRU4Rec (Hidasi et al., ICLR 2016), in the form sequential-recommendation papers run it.

Follows RecBole 1.2.1's GRU4Rec, the reference this project measures against: dropout on the
item embeddings, a GRU without biases over the sequence, and a dense layer back to d, read at
every position (position t predicts item t + 1). GRU weights get Xavier-uniform initialisation
as in RecBole.

Padding: sequences are right-padded, and a GRU runs left to right, so the state at a real position
has only seen real items; pads come after and are never read back. No packing is needed (it
would give the same outputs at real positions, slower); ``tests/test_backbones_invariance.py``
checks it. Pad positions produce outputs that nothing uses.

Deviations from the paper: its session-parallel mini-batches, TOP1/BPR ranking losses and
sampled negatives are replaced by this package's training (every position of a sequence in one
pass, full-softmax cross-entropy by default), as in RecBole. Embedding dropout 0.3 and one layer
are RecBole's defaults, not the 0.5 of the Transformer backbones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spectran.backbones.base import Backbone, BackboneSettings, BackboneSpec


@dataclass
class GRU4RecSettings(BackboneSettings):
    layers: int = 1  # stacked GRU layers
    hidden: int = 0  # GRU state width; 0 = d
    dropout: float = 0.3  # on the input item embeddings (RecBole's default)


class GRU4Rec(Backbone):
    def __init__(self, s: GRU4RecSettings, dim: int, max_len: int):
        super().__init__()
        hidden = s.hidden or dim
        self.drop = nn.Dropout(s.dropout)
        self.gru = nn.GRU(dim, hidden, num_layers=s.layers, bias=False, batch_first=True)
        self.dense = nn.Linear(hidden, dim)
        for name, weight in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_uniform_(weight)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d), valid: (B, L); right padding, so the recurrence reaches pads only after
        # every real position has been computed
        out, _ = self.gru(self.drop(x))  # (B, L, hidden)
        return self.dense(out)  # (B, L, d)


SPEC = BackboneSpec("gru4rec", GRU4RecSettings, GRU4Rec)
