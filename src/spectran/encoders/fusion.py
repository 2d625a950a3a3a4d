"""Fusing a semantic item table with a learnable ID table (sum, concat+linear, gate)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

FusionKind = Literal["sum", "concat", "gate", "none"]


class Fusion(nn.Module):
    """Combine ``semantic`` (N, d) with an ID table (N, d).

    - ``sum``: semantic + id (the default across the SVD family and SpecTran)
    - ``concat``: Linear(2d -> d) on [semantic, id]
    - ``gate``: g * semantic + (1 - g) * id with g = sigmoid(Linear([semantic, id])) per item/dim
    - ``none``: semantic only (no ID table)
    """

    def __init__(self, kind: FusionKind, num_items: int, dim: int, id_std: float = 0.02):
        super().__init__()
        self.kind = kind
        self.id_table = nn.Parameter(torch.randn(num_items, dim) * id_std) if kind != "none" else None
        if kind in ("concat", "gate"):
            self.proj = nn.Linear(2 * dim, dim)
        self.register_buffer("id_keep", None, persistent=False)  # (N, 1) 0/1, see zero_ids

    def zero_ids(self, unseen: torch.Tensor) -> None:
        """Hold the ID rows of the ``unseen`` items (bool (N,)) at zero, in training and inference:
        an item without training interactions is represented by its semantic part alone (its ID
        row would only ever be pushed down as a negative). Derived from the data, not checkpointed."""
        self.id_keep = (~unseen).to(self.id_table.dtype)[:, None].to(self.id_table.device)

    def ids(self) -> torch.Tensor:
        return self.id_table if self.id_keep is None else self.id_table * self.id_keep

    def forward(self, semantic: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Fused rows (M, d) of ``semantic`` (M, d) with ``ids`` (M, d); default: the ID table."""
        if self.kind == "none":
            return semantic
        ids = self.ids() if ids is None else ids
        if self.kind == "sum":
            return semantic + ids
        both = torch.cat([semantic, ids], dim=-1)
        if self.kind == "concat":
            return self.proj(both)
        gate = torch.sigmoid(self.proj(both))
        return gate * semantic + (1 - gate) * ids

    def without_ids(self, semantic: torch.Tensor) -> torch.Tensor:
        """Fused rows (M, d) of items that have no ID row (new items, cold start): ID part = 0."""
        return self(semantic, torch.zeros_like(semantic))
