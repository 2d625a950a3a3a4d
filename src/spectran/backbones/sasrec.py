"""SASRec (Kang & McAuley, ICDM 2018): a causal Transformer over item embeddings.

Follows RecBole 1.2.1's SASRec, the reference this project measures against: learned absolute
positions, LayerNorm + dropout on the input, post-LN blocks (attention, GELU feed-forward of
width ``inner``), N(0, 0.02) initialisation. Deviations: attention runs through
``scaled_dot_product_attention`` with a causal mask (padding is on the right, so real positions
never attend to it); position-wise layers run on the real positions only (same result, less
work on padding); the original paper's sqrt(d) embedding scale and pre-LN blocks are not used,
as in RecBole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spectran.backbones.base import BackboneSpec, init_weights


@dataclass
class SASRecSettings:
    layers: int = 2
    heads: int = 2
    inner: int = 256  # feed-forward width
    dropout: float = 0.5  # hidden dropout (sparse Amazon data)
    attn_dropout: float = 0.5
    layer_norm_eps: float = 1e-12


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

    def packed(self, hp: torch.Tensor, valid: torch.Tensor, mask: torch.Tensor | None,
               causal: bool) -> torch.Tensor:
        """Projections on the T real positions only, attention in the padded layout: (T, C) -> (T, C)."""
        B, L = valid.shape
        qkv = hp.new_zeros(B, L, 3 * hp.shape[1])
        qkv[valid] = self.qkv(hp)
        return self.out(self._attend(qkv, mask, causal)[valid])

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

    def packed(self, hp: torch.Tensor, valid: torch.Tensor, mask: torch.Tensor | None,
               causal: bool) -> torch.Tensor:
        """The same block on the packed real positions hp (T, C) of the (B, L) layout ``valid``."""
        hp = self.ln1(hp + self.drop(self.attn.packed(hp, valid, mask, causal)))
        return self.ln2(hp + self.drop(self.ffn(hp)))


class SASRec(nn.Module):
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
        for block in self.blocks:
            hp = block.packed(hp, valid, None, causal=True)
        h = x.new_zeros(x.shape)
        h[valid] = hp
        return h  # (B, L, d), zeros at padding


SPEC = BackboneSpec("sasrec", SASRecSettings, lambda s, dim, max_len: SASRec(s, dim, max_len),
                    objective="causal")
