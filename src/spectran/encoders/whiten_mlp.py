"""``whiten_mlp``: WhitenRec — fully whitened semantic embeddings, then an MLP projection.

Follows WhitenRec (Zhang, Zhou, Zeng, Shen, "Is ID Embedding Necessary? Whitening Pre-trained
Text Embeddings for Sequential Recommendation", ICDE 2024): the frozen text embeddings are
whitened over all D dimensions (zero mean, identity covariance) and a projection maps them to d.
No ID embedding (the paper's point is that none is needed): ``fusion: none`` by default.

The whitening is derived from the cached SVD of the centred E that the preparation layer hands
over (E - mu = U diag(sigma) V^T, float64): ``pca`` whitening maps e to (e - mu) V diag(c / sigma)
with c = sqrt(N), i.e. the items' coordinates sqrt(N) U (unit mean square per direction); ``zca``
rotates these back with V^T. ``scale`` multiplies the whitened coordinates (1: the paper's plain
whitening). The projection is ``layers`` Linear + GELU layers (default 2, hidden 256).
Deviations from the paper and the measurements behind the defaults (depth, scale, dropout):
docs/methods/whiten_mlp.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from spectran.encoders.adapter_layers import Activation, SemanticAdapter, mlp_stack, require_semantic
from spectran.encoders.base import ItemContext, MethodSpec
from spectran.encoders.fusion import Fusion, FusionKind
from spectran.encoders.spectral_coords import coord_scale, require_basis


@dataclass
class WhitenMlpSettings:
    whitening: Literal["zca", "pca"] = "zca"  # full whitening of all (non-degenerate) dimensions
    layers: int = 2  # Linear layers after whitening (1 = one Linear + GELU; see the module docstring)
    hidden: int = 256  # width of hidden layers when layers > 1
    activation: Activation = "gelu"  # also after the last Linear (WhitenRec's projection)
    dropout: float = 0.0  # after hidden activations
    input_dropout: float = 0.1  # dropout on the whitened E, training only
    scale: float = 1.0  # whitened coordinates times this (1 = unit variance, as WhitenRec; see whiten_scale.md)
    fusion: FusionKind = "none"  # WhitenRec uses no ID table; sum|concat|gate add one
    id_std: float = 0.02  # N(0, std) initialisation of the ID table (when fused)


class Whiten(nn.Module):
    """x -> (x - mean) @ W with fixed (fitted) mean (D,) and W (D, D) or (D, r)."""

    def __init__(self, mean: torch.Tensor, W: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean, persistent=False)  # refitted from E with the run
        self.register_buffer("W", W, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.W  # (M, D)


class WhitenedAdapter(SemanticAdapter):
    """The ``semantic`` buffer holds the whitened E (a fixed linear map of a frozen matrix, so it
    is applied once here rather than at every step); new items are whitened on the way in."""

    def __init__(self, semantic: torch.Tensor, whiten: Whiten, adapter: nn.Module, fusion: Fusion,
                 input_dropout: float):
        with torch.no_grad():
            whitened = whiten(semantic)  # (N, D)
        super().__init__(whitened, adapter, fusion, input_dropout)
        self.whiten = whiten

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        return super().embed_new_items(self.whiten(semantic.to(self.semantic.device, self.semantic.dtype)))


def build(s: WhitenMlpSettings, ctx: ItemContext) -> WhitenedAdapter:
    E = require_semantic(ctx.semantic, "whiten_mlp")
    basis = require_basis(ctx, "whiten_mlp")
    W = basis.V.float() / basis.sigma.float() * (coord_scale(basis.num_items, "sqrt_n") * s.scale)  # (D, r)
    if s.whitening == "zca":
        W = W @ basis.V.float().T  # (D, D)
    head = mlp_stack(W.shape[1], s.hidden, ctx.dim, s.layers, s.activation, s.dropout, final_act=True)
    fusion = Fusion(s.fusion, ctx.num_items, ctx.dim, s.id_std)
    return WhitenedAdapter(E, Whiten(basis.mean.float(), W), head, fusion, s.input_dropout)


SPEC = MethodSpec("whiten_mlp", WhitenMlpSettings, build, needs_text=True, needs_basis=True)
