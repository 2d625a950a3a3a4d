"""The backbone protocol: a sequence encoder over item-embedding sequences.

A backbone is a pure ``nn.Module``: ``forward(x, valid)`` maps item embeddings ``x (B, L, d)``
and the mask of real positions ``valid (B, L)`` (True = item, False = padding; sequences are
right-padded) to hidden states ``(B, L, d)``. It never sees item ids or the item encoder.

``objective`` says how it is trained and queried:

- ``causal``: position t predicts item t + 1; the user representation is the hidden state at
  the last real position (SASRec, HSTU, GRU4Rec).
- ``masked``: masked-item prediction with a ``[MASK]`` token; at inference a ``[MASK]`` is
  appended after the last item and its hidden state is the user representation (BERT4Rec).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import nn

Objective = Literal["causal", "masked"]


class Backbone(Protocol):
    def __call__(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    settings: type
    build: Callable[[Any, int, int], nn.Module]  # (settings, dim, max_len) -> module
    objective: Objective = "causal"


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-free N(0, std) for linear/embedding weights, zeros for biases, LayerNorm = 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
