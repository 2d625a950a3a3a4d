"""``whiten_mlp``: WhitenRec — fully whitened semantic embeddings, then an MLP projection.

Follows WhitenRec (Zhang, Zhou, Zeng, Shen, "Is ID Embedding Necessary? Whitening Pre-trained
Text Embeddings for Sequential Recommendation", ICDE 2024): the frozen text embeddings are
whitened over all D dimensions (zero mean, identity covariance), which undoes the anisotropy of
language-model embeddings, and a projection maps them to d. No ID embedding (the paper's point
is that none is needed): ``fusion: none`` by default.

The whitening is derived from the cached SVD of the centred E that the preparation layer hands
over (E - mu = U diag(sigma) V^T, float64): ``pca`` whitening maps e to (e - mu) V diag(c / sigma)
with c = sqrt(N), i.e. the items' coordinates sqrt(N) U (unit mean square per direction); ``zca``
rotates these back with V^T (staying close to E's axes).

``scale`` multiplies the whitened coordinates (isotropic either way); 1 is the paper's plain
whitening. With one projection layer the rows start with an RMS norm of 2.75 on office (0.16 for
an ID table) and validation NDCG@10 dips in epoch 2 before it recovers, the SVD family's cliff;
0.3 removes the dip but moved office test NDCG@10 by less than a standard deviation over 3 seeds
(docs/results/whiten_scale.md). With the default two layers the rows start at 0.86 and there is
no dip at scale 1 (bench/scale_cliff.py --method whiten_mlp --layers 2), so the default stays 1.

Depth of the projection: ``layers: 2`` (Linear, GELU, Linear, GELU; hidden 256) by default, as
the authors' released code for the sibling DWSRec (AAAI 2024) defaults to a two-layer MLP; one
Linear + GELU (``layers: 1``) is the thinnest reading of the paper. Without an ID table every item
row is this map of its text, and one layer is too little: on office (3 seeds,
docs/results/whiten_capacity_office.md) one layer gave test NDCG@10 0.0450, below ``id``
(0.0483), and two layers 0.0549 (p = 7e-13 against one layer); on beauty one layer stopped at a
training loss of 7.89 where ``id`` reaches 6.15, and test NDCG@10 0.0292 against 0.0403 for two
layers (seed 0; sweeps/whiten_capacity.yaml). With two layers, beauty over 3 seeds: test NDCG@10
0.0411 +- 0.0012, level with ``id`` (0.0419, p = 0.49), above it on NDCG@20 and validation. One
layer plus an ID table (``layers: 1, fusion: sum``) beats ``id`` on beauty (0.0435 +- 0.0003,
p = 4e-5) and ties two layers on office; the default stays ID-free, WhitenRec's claim. DWSRec's
MLP uses ReLU and dropout 0.2 between its layers; this keeps WhitenRec's GELU and
``dropout: 0.0`` (the measured setting).

Deviations: WhitenRec+ (the ensemble with relaxed/group whitening) is not implemented. The
choice between ZCA and PCA whitening is immaterial up to the initialisation, since the following
Linear layer absorbs any rotation. Directions with sigma below 1e-6 sigma_1 (numerically zero
variance) are dropped by the basis rather than regularised with an eps, a detail the paper
does not state.
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
