"""``alphafuse``: frozen whitened semantic coordinates, ID embeddings in their null space.

Follows AlphaFuse (Hu et al., "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in
Null Space of Language Embeddings", SIGIR 2025): E is centred and decomposed by SVD, the top-d
components are whitened (unit variance each: U * sqrt(N), g = 1) and frozen; the last
``null_dim`` of those d coordinates — the lowest-variance, "null-space" ones — carry a learnable
ID embedding, added to the frozen values (``mode="add"``) or replacing them (``"cover"``).
Deviations: AlphaFuse whitens with the covariance (a factor sqrt(N - 1) instead of sqrt(N)) and
can choose the null space by a singular-value threshold; here it is always the last ``null_dim``
of the d kept components. The global ``scale`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec
from spectran.encoders.spectral_coords import (
    ColdStartProjector,
    Scaling,
    coord_scale,
    require_basis,
    scaled_coords,
    truncated_table,
)
from spectran.errors import ConfigError


@dataclass
class AlphaFuseSettings:
    null_dim: int = 0  # ID coordinates: the last null_dim of the d whitened ones; 0 = d // 2 (paper: 64 of 128)
    mode: Literal["add", "cover"] = "add"  # ID added to the frozen null coordinates, or replacing them
    id_init: Literal["normal", "zeros"] = "normal"  # initial ID embeddings (AlphaFuse uses both)
    id_std: float = 0.02  # std of the normal initialisation
    scaling: Scaling = "sqrt_n"  # U_hat = U * sqrt(N) (whitened, unit variance) or U ("none")
    scale: float = 0.1  # extra factor on the whitened coordinates (docs/methods/alphafuse.md)
    center: bool = True  # centre E before the SVD


class AlphaFuse(ItemEncoder):
    def __init__(self, frozen: torch.Tensor, null_dim: int, s: AlphaFuseSettings, projector: ColdStartProjector):
        super().__init__()
        self.s, self.null_dim = s, null_dim
        self.register_buffer("frozen", frozen, persistent=False)  # (N, d), derived from E
        init = torch.randn(frozen.shape[0], null_dim) * s.id_std if s.id_init == "normal" \
            else torch.zeros(frozen.shape[0], null_dim)
        self.id_table = nn.Parameter(init)  # (N, null_dim)
        self.projector = projector

    def _combine(self, frozen: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        keep = frozen.shape[1] - self.null_dim
        null = frozen[:, keep:] + ids if self.s.mode == "add" else ids
        return torch.cat([frozen[:, :keep], null], dim=1)  # (N, d)

    def forward(self) -> torch.Tensor:
        return self._combine(self.frozen, self.id_table)

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M, d): whitened projected coordinates, ID part zero."""
        coords = self.projector(semantic)
        frozen = truncated_table(coords, torch.ones(coords.shape[1], device=coords.device),
                                 self.frozen.shape[1]) * self.s.scale
        return self._combine(frozen, frozen.new_zeros(frozen.shape[0], self.null_dim))


def build(s: AlphaFuseSettings, ctx: ItemContext) -> AlphaFuse:
    null_dim = s.null_dim or max(ctx.dim // 2, 1)
    if not 0 < null_dim <= ctx.dim:
        raise ConfigError(f"method.null_dim must be in 1..{ctx.dim} (model.dim), got {s.null_dim}")
    basis = require_basis(ctx, "alphafuse")
    coords = scaled_coords(basis, ctx.dim, s.scaling)  # (N, k)
    frozen = truncated_table(coords, torch.ones(coords.shape[1]), ctx.dim) * s.scale
    projector = ColdStartProjector(basis, coords.shape[1], coord_scale(basis.num_items, s.scaling))
    return AlphaFuse(frozen, null_dim, s, projector)


SPEC = MethodSpec("alphafuse", AlphaFuseSettings, build, needs_text=True, needs_basis=True)
