"""``svd_frozen``: frozen truncated SVD coordinates of E, fused with a learnable ID table.

The "SVD truncation" baseline of the SpecTran paper (Cui et al., SIGIR 2026): the item table is
``U_hat[:, :d] * g(sigma_bar[:d])`` with U_hat = U * sqrt(N) and g fixed — sigma_bar (PCA-like, the
default) or 1 (whitened) — frozen, plus an ID table (sum by default). The coordinates are
unit-variance (``scaling``) times ``scale`` (default 0.3), the convention SpecTran uses too, so
SpecTran with its attention term off and g fixed reproduces this table exactly. Why 0.3 (larger
frozen rows make training collapse for an epoch or more): docs/methods/svd_frozen.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec
from spectran.encoders.fusion import Fusion, FusionKind
from spectran.encoders.spectral_coords import (
    ColdStartProjector,
    Scaling,
    Weighting,
    coord_scale,
    normalised_sigma,
    require_basis,
    scaled_coords,
    truncated_table,
    weight_profile,
)


@dataclass
class SvdFrozenSettings:
    weighting: Weighting = "sigma"  # g(sigma_bar) = sigma_bar (PCA-like) or "one" (whitened)
    scaling: Scaling = "sqrt_n"  # U_hat = U * sqrt(N) (unit-variance coordinates) or U ("none")
    scale: float = 0.3  # multiplies the unit-variance coordinates (docs/methods/svd_frozen.md)
    fusion: FusionKind = "sum"  # how the frozen table meets the ID table
    id_std: float = 0.02  # N(0, id_std) initialisation of the ID table
    center: bool = True  # centre E before the SVD


class SvdFrozen(ItemEncoder):
    def __init__(self, table: torch.Tensor, fusion: Fusion, projector: ColdStartProjector,
                 weights: torch.Tensor, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.register_buffer("frozen", table, persistent=False)  # (N, d), derived from E
        self.register_buffer("weights", weights, persistent=False)  # (k,) g(sigma_bar) of the kept columns
        self.fusion = fusion
        self.projector = projector

    def forward(self) -> torch.Tensor:
        return self.fusion(self.frozen)  # (N, d)

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """(M, D) texts' embeddings -> (M, d): projected coordinates, ID part zero."""
        table = truncated_table(self.projector(semantic), self.weights, self.frozen.shape[1])
        return self.fusion.without_ids(table * self.scale)


def build(s: SvdFrozenSettings, ctx: ItemContext) -> SvdFrozen:
    basis = require_basis(ctx, "svd_frozen")
    coords = scaled_coords(basis, ctx.dim, s.scaling)  # (N, k), k = min(d, r)
    weights = weight_profile(normalised_sigma(basis, ctx.dim), s.weighting)
    table = truncated_table(coords, weights, ctx.dim) * s.scale
    module = SvdFrozen(table, Fusion(s.fusion, ctx.num_items, ctx.dim, s.id_std),
                       ColdStartProjector(basis, coords.shape[1], coord_scale(basis.num_items, s.scaling)),
                       weights, s.scale)
    return module


# the best of 16 Optuna trials on office (SASRec, d = 64, MiniLM), 4 significant digits; it beat the
# shared defaults on office (3 seeds) and on beauty (docs/results/what_tuning_changes.md)
RECIPES = {"sasrec": {"train.lr": 0.003832, "train.batch_size": 256, "train.weight_decay": 0.1,
                      "backbone.dropout": 0.4113, "method.scale": 1.318}}

SPEC = MethodSpec("svd_frozen", SvdFrozenSettings, build, needs_text=True, needs_basis=True, recipes=RECIPES)
