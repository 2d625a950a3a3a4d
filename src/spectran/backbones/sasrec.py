"""SASRec (Kang & McAuley, ICDM 2018): a causal Transformer over item embeddings.

Follows RecBole 1.2.1's SASRec, the reference this project measures against: learned absolute
positions, LayerNorm + dropout on the input, post-LN blocks (attention, GELU feed-forward of
width ``inner``), N(0, 0.02) initialisation. Deviations: attention runs through
``scaled_dot_product_attention`` with a causal mask (padding is on the right, so real positions
never attend to it); position-wise layers run on the real positions only and attention per length
bucket (same result, a fraction of the work on padding); a query (:meth:`SASRec.at`) runs the
last block for the one position it reads; the original paper's sqrt(d) embedding scale and pre-LN
blocks are not used, as in RecBole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spectran.backbones.base import Backbone, BackboneSettings, BackboneSpec, init_weights
from spectran.errors import expect


@dataclass
class SASRecSettings(BackboneSettings):
    layers: int = 2
    heads: int = 2
    inner: int = 256  # feed-forward width
    dropout: float = 0.5  # hidden dropout (sparse Amazon data)
    attn_dropout: float = 0.5
    layer_norm_eps: float = 1e-12

    def validate(self, dim: int) -> None:
        """Settings that depend on d, checked before anything is built."""
        expect(dim % self.heads == 0, "backbone.heads", f"a divisor of model.dim={dim}", self.heads)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, attn_dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        return self.out(self._attend(self.qkv(x), mask, causal))  # (B, L, C)

    def packed(self, hp: torch.Tensor, packing: Packing) -> torch.Tensor:
        """Causal attention over packed real positions (T, C) -> (T, C): projections on the T
        positions only, attention per length bucket padded to the bucket's width."""
        qkv = self.qkv(hp)  # (T, 3C)
        y = qkv.new_zeros(hp.shape)  # the dtype of the attention output (bf16 under autocast)
        for tokens, present in packing.groups:
            block = qkv.new_zeros(*present.shape, qkv.shape[1])  # (n, W, 3C)
            block[present] = qkv[tokens]
            y = y.index_put((tokens,), self._attend(block, None, causal=True)[present])
        return self.out(y)

    def at(self, hp: torch.Tensor, packing: Packing, index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Causal attention for B queries only: row b's query is the packed position ``index[b]``
        (position ``positions[b]`` of its sequence), its keys its sequence's positions up to that
        one. hp (T, C) -> (B, C)."""
        qkv = self.qkv(hp)  # (T, 3C): every position is a key
        B, C = len(index), hp.shape[1]
        pos = torch.arange(int(positions.max()) + 1, device=hp.device)
        present = pos[None] <= positions[:, None]  # (B, W): the keys of each query
        block = qkv.new_zeros(B, len(pos), 3 * C)
        block[present] = qkv[(packing.starts[:, None] + pos[None])[present]]
        _, k, v = block.view(B, len(pos), 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, W, C/H)
        q = qkv[index, :C].view(B, self.heads, 1, C // self.heads)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=present[:, None, None, :],
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(y.reshape(B, C))

    def _attend(self, qkv: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        B, L, C3 = qkv.shape
        C = C3 // 3
        q, k, v = qkv.view(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, L, C/H)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return y.transpose(1, 2).reshape(B, L, C)


class TransformerBlock(nn.Module):
    """Post-LN block: x = LN(x + drop(attn(x))); x = LN(x + drop(ffn(x)))."""

    def __init__(self, dim: int, heads: int, inner: int, dropout: float, attn_dropout: float, eps: float):
        super().__init__()
        self.attn = SelfAttention(dim, heads, attn_dropout)
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.ffn = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Linear(inner, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        x = self.ln1(x + self.drop(self.attn(x, mask, causal)))
        return self.ln2(x + self.drop(self.ffn(x)))

    def packed(self, hp: torch.Tensor, packing: Packing) -> torch.Tensor:
        """The same block, causal, on the packed real positions hp (T, C)."""
        hp = self.ln1(hp + self.drop(self.attn.packed(hp, packing)))
        return self.ln2(hp + self.drop(self.ffn(hp)))


    def at(self, hp: torch.Tensor, packing: Packing, index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The same block for B positions only (packed ``index``; see :meth:`SelfAttention.at`): (B, C)."""
        x = self.ln1(hp[index] + self.drop(self.attn.at(hp, packing, index, positions)))
        return self.ln2(x + self.drop(self.ffn(x)))


class Packing:
    """Where the T real positions of a right-padded batch ``valid`` (B, L) sit in the packed
    (row-major) order, grouped by sequence length into buckets of width 8, 16, 32, ... so that
    attention (and its dropout) costs about sum(len^2) instead of B * L^2 on sparse data."""

    def __init__(self, valid: torch.Tensor):
        lengths = valid.sum(dim=1)  # (B,)
        starts = torch.cumsum(lengths, 0) - lengths  # packed index of each row's first position
        self.starts = starts  # (B,)
        self.groups: list[tuple[torch.Tensor, torch.Tensor]] = []
        low, width, L = 0, 8, valid.shape[1]
        while low < L:
            width = min(width, L)
            rows = ((lengths > low) & (lengths <= width)).nonzero().squeeze(1)
            if rows.numel():
                pos = torch.arange(width, device=valid.device)
                present = pos[None] < lengths[rows, None]  # (n, W)
                tokens = (starts[rows, None] + pos[None])[present]  # (T_bucket,)
                self.groups.append((tokens, present))
            low, width = width, width * 2


class SASRec(Backbone):
    def __init__(self, s: SASRecSettings, dim: int, max_len: int):
        super().__init__()
        self.position = nn.Embedding(max_len + 1, dim)  # +1: room for a BERT4Rec-style [MASK]
        self.ln = nn.LayerNorm(dim, eps=s.layer_norm_eps)
        self.drop = nn.Dropout(s.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, s.heads, s.inner, s.dropout, s.attn_dropout, s.layer_norm_eps)
            for _ in range(s.layers))
        init_weights(self)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d) item embeddings, valid: (B, L); right padding + causal mask => no key mask.
        # Sparse data leaves most of (B, L) as padding, so every position-wise layer runs on the
        # T real positions only (packed); only attention uses the padded layout.
        L = x.shape[1]
        hp = self.drop(self.ln((x + self.position.weight[:L])[valid]))  # (T, d)
        packing = Packing(valid)
        for block in self.blocks:
            hp = block.packed(hp, packing)
        h = x.new_zeros(x.shape)
        h[valid] = hp
        return h  # (B, L, d), zeros at padding

    def at(self, x: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Hidden states at ``positions`` (B,) only, (B, d): the blocks before the last run on every
        real position (as in :meth:`forward`), the last one on the B asked positions (their keys
        are every position before them), a fraction of the last block's work."""
        L = x.shape[1]
        hp = self.drop(self.ln((x + self.position.weight[:L])[valid]))  # (T, d)
        packing = Packing(valid)
        for block in self.blocks[:-1]:
            hp = block.packed(hp, packing)
        return self.blocks[-1].at(hp, packing, packing.starts + positions, positions)


SPEC = BackboneSpec("sasrec", SASRecSettings, SASRec)
