"""Composition: an item encoder x a backbone (one per view) x a tied dot-product head.

Ids: 0 is padding, 1..N are items, N + 1 is ``[MASK]`` (masked backbones only). The item
encoder returns the (N, V * d) table of real items; the padding row (zeros) and the mask row
(learned) are added here, and scores are computed against the N real items only, so padding
and ``[MASK]`` are never ranking candidates. An encoder with V views (LLM-ESR) gets V backbones;
view v uses columns ``v*d:(v+1)*d`` and the user representation is the concatenation, so the
score is the sum of the per-view dot products.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spectran.backbones.base import Backbone
from spectran.encoders.base import ItemEncoder


class SeqRecModel(nn.Module):
    def __init__(self, item_encoder: ItemEncoder, backbones: list[Backbone], num_items: int, dim: int,
                 masked: bool = False):
        super().__init__()
        self.item_encoder = item_encoder
        self.backbones = nn.ModuleList(backbones)
        self.num_items, self.dim = num_items, dim
        self.num_views = item_encoder.num_views
        if len(backbones) != self.num_views:
            raise ValueError(f"{self.num_views} views need {self.num_views} backbones, got {len(backbones)}")
        width = self.num_views * dim
        self.mask_embedding = nn.Parameter(torch.randn(1, width) * 0.02) if masked else None

    @property
    def mask_id(self) -> int:
        return self.num_items + 1

    def item_table(self) -> torch.Tensor:
        """(N, V * d): row i is item i + 1."""
        return self.item_encoder()

    def hidden(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """seqs (B, L) ids -> hidden states (B, L, V * d)."""
        x, valid = self._embed(seqs, table)
        outs = [bb(x[..., v * self.dim:(v + 1) * self.dim], valid) for v, bb in enumerate(self.backbones)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)

    def _embed(self, seqs: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Item embeddings (B, L, V * d) of ids (0: padding, N + 1: [MASK]) and the real positions (B, L)."""
        rows = [table.new_zeros(1, table.shape[1]), table]
        if self.mask_embedding is not None:
            rows.append(self.mask_embedding.to(table.dtype))
        lookup = torch.cat(rows, dim=0)  # (N + 1 [+ 1], V * d)
        # F.embedding, not lookup[seqs]: its CPU backward adds each row's gradients in a fixed order
        # at any thread count, where indexing's (index_put_ accumulate) varies between runs
        return F.embedding(seqs, lookup), seqs != 0

    def hidden_at(self, seqs: torch.Tensor, table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """seqs (B, L) ids, positions (B,) -> the hidden state of row b at ``positions[b]`` (B, V * d):
        ``hidden(seqs, table)[arange(B), positions]`` to float rounding, computing only what those
        positions need where the backbone can (:meth:`Backbone.at`). For queries: the embeddings are
        gathered from ``table`` without the copy of the table that :meth:`hidden` makes."""
        valid = seqs != 0
        x = F.embedding((seqs - 1).clamp(0, len(table) - 1), table)  # (B, L, V * d); padding and [MASK] fixed below
        if self.mask_embedding is not None:
            x = torch.where((seqs == len(table) + 1)[..., None], self.mask_embedding.to(table.dtype), x)
        x = x.masked_fill(~valid[..., None], 0.0)
        outs = [bb.at(x[..., v * self.dim:(v + 1) * self.dim], valid, positions) for v, bb in enumerate(self.backbones)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)

    @staticmethod
    def scores(user: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """user (T, V * d), table (N, V * d) -> scores (T, N); column j is item j + 1."""
        return user @ table.T
