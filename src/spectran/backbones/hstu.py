"""HSTU (Zhai et al., "Actions Speak Louder than Words", ICML 2024): Hierarchical Sequential
Transduction Units, causal.

Per layer, as in the paper (eq. 1-3) and its reference code (``generative-recommenders``,
``SequentialTransductionUnitJagged``)::

    U, V, Q, K = split(SiLU(f1(LayerNorm(x))))
    A          = SiLU(Q K^T + rab^p) / n          (causal; n = max_len, see below)
    x          = x + f2(Dropout(LayerNorm(A V) * U))

``rab^p`` is a learned relative-position bias, one weight per offset j - i (as the reference's
position part), shared by the heads. The input is ``sqrt(d) * item embedding + learned absolute
position``, with dropout, as the reference's input preprocessor.

Deviations:

- No time bias: the staged data has no timestamps (sequences are ordered only), so ``rab`` has
  the position part only. The reference also buckets time differences; positions are not
  bucketed there either.
- ``n`` is the configured maximum length (the reference divides by the padded length, which is
  the fixed maximum there). Using ``max_len`` rather than the batch width keeps the output
  independent of how much padding a batch carries.
- The reference L2-normalises the output and scores with a temperature; this package's head is a
  plain tied dot product, so a final LayerNorm bounds the output scale instead.
- Sizes follow the other backbones (d = 64, 2 layers, 2 heads, so per-head attention and value width 32)
  rather than the paper's larger production settings; dropout 0.5 on the input and before f2, as
  the other backbones on sparse Amazon data (the reference's MovieLens configs use 0.2), no dropout
  on the pointwise attention weights (reference: 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spectran.backbones.base import Backbone, BackboneSettings, BackboneSpec, init_weights
from spectran.errors import expect


@dataclass
class HSTUSettings(BackboneSettings):
    layers: int = 2
    heads: int = 2
    qk_dim: int = 0  # per-head query/key width; 0 = d / heads
    v_dim: int = 0  # per-head value (and gate U) width; 0 = d / heads
    dropout: float = 0.5  # on the input and before the output projection f2
    attn_dropout: float = 0.0  # on the pointwise attention weights (reference: 0)
    layer_norm_eps: float = 1e-6

    def validate(self, dim: int) -> None:
        """Settings that depend on d, checked before anything is built."""
        expect(dim % self.heads == 0 or bool(self.qk_dim and self.v_dim), "backbone.heads",
               f"a divisor of model.dim={dim} (or set backbone.qk_dim and backbone.v_dim)", self.heads)


class RelativePositionBias(nn.Module):
    """rab^p: one learned scalar per relative offset j - i in [-(max_len - 1), max_len - 1]."""

    def __init__(self, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(2 * max_len - 1) * 0.02)

    def forward(self, L: int) -> torch.Tensor:
        pos = torch.arange(L, device=self.weight.device)
        return self.weight[pos[None, :] - pos[:, None] + self.max_len - 1]  # (L, L), [i, j] -> j - i


class HSTULayer(nn.Module):
    def __init__(self, dim: int, heads: int, qk_dim: int, v_dim: int, dropout: float, attn_dropout: float,
                 eps: float, max_len: int):
        super().__init__()
        self.heads, self.qk_dim, self.v_dim, self.max_len = heads, qk_dim, v_dim, max_len
        self.norm_in = nn.LayerNorm(dim, eps=eps)
        self.f1 = nn.Linear(dim, heads * (2 * v_dim + 2 * qk_dim))  # -> U, V, Q, K
        self.norm_attn = nn.LayerNorm(heads * v_dim, eps=eps)
        self.f2 = nn.Linear(heads * v_dim, dim)
        self.rab = RelativePositionBias(max_len)
        self.drop, self.attn_drop = nn.Dropout(dropout), nn.Dropout(attn_dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d); keep: (B, 1, L, L) 1 where query i may use key j (causal, real key)
        B, L, _ = x.shape
        H, dq, dv = self.heads, self.qk_dim, self.v_dim
        u, v, q, k = torch.split(F.silu(self.f1(self.norm_in(x))), [H * dv, H * dv, H * dq, H * dq], dim=-1)
        q = q.view(B, L, H, dq).transpose(1, 2)  # (B, H, L, dq)
        k = k.view(B, L, H, dq).transpose(1, 2)
        v = v.view(B, L, H, dv).transpose(1, 2)  # (B, H, L, dv)
        scores = q @ k.transpose(-1, -2) + self.rab(L)  # (B, H, L, L)
        attn = self.attn_drop(F.silu(scores) / self.max_len * keep)  # pointwise, no softmax
        y = (attn @ v).transpose(1, 2).reshape(B, L, H * dv)  # (B, L, H * dv)
        return x + self.f2(self.drop(self.norm_attn(y) * u))


class HSTU(Backbone):
    def __init__(self, s: HSTUSettings, dim: int, max_len: int):
        super().__init__()
        if dim % s.heads and not (s.qk_dim and s.v_dim):
            raise ValueError(f"dim {dim} is not divisible by heads {s.heads} (or set qk_dim and v_dim)")
        qk_dim, v_dim = s.qk_dim or dim // s.heads, s.v_dim or dim // s.heads
        self.scale = dim ** 0.5
        self.position = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(s.dropout)
        self.layers = nn.ModuleList(
            HSTULayer(dim, s.heads, qk_dim, v_dim, s.dropout, s.attn_dropout, s.layer_norm_eps, max_len)
            for _ in range(s.layers))
        self.norm_out = nn.LayerNorm(dim, eps=s.layer_norm_eps)
        init_weights(self)
        nn.init.normal_(self.position.weight, std=dim ** -0.5)  # reference: sqrt(1 / d)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d) item embeddings, valid: (B, L); padding is on the right
        L = x.shape[1]
        h = self.drop(x * self.scale + self.position.weight[:L]) * valid[..., None]  # pads start at 0
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        keep = (causal & valid[:, None, :])[:, None].to(h.dtype)  # (B, 1, L, L)
        for layer in self.layers:
            h = layer(h, keep)
        return self.norm_out(h)  # (B, L, d)


SPEC = BackboneSpec("hstu", HSTUSettings, HSTU)
