"""``pca_init``: an ID table initialised from the semantic embeddings, then trained freely.

LLMInit (Zhang et al., "LLMInit: A Free Lunch from Large Language Models for Selective
Initialization of Recommendation", 2025) initialises the ID embeddings with d dimensions chosen
from the LLM embedding (by variance, uniformly, or at random). SR papers, the SpecTran paper's
baselines among them, re-implement it with the top-d principal coordinates of E. Both are here:
``source="pca"`` (default) takes d spectral components of E — the top-d (``select="variance"``),
d components evenly spaced over the whole spectrum (``"uniform"``) or d random ones (``"random"``,
seeded) — in the same scaled coordinates as ``svd_frozen`` (U * sqrt(N) * g(sigma_bar)), so with
``select="variance"`` the initial table equals ``svd_frozen``'s frozen table; ``source="raw"``
takes d raw dimensions of (centred) E as LLMInit does. Deviation: no ID table is fused (the
initialised table *is* the ID table) and the global ``scale`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec
from spectran.encoders.spectral_coords import (
    Scaling,
    Weighting,
    normalised_sigma,
    require_basis,
    scaled_coords,
    truncated_table,
    weight_profile,
)
from spectran.errors import ConfigError


@dataclass
class PcaInitSettings:
    source: Literal["pca", "raw"] = "pca"  # principal coordinates (SR re-implementations) or raw E dims (LLMInit)
    select: Literal["variance", "uniform", "random"] = "variance"  # which d components / dims
    weighting: Weighting = "sigma"  # g(sigma_bar) for source=pca: sigma_bar (PCA) or "one" (whitened)
    scaling: Scaling = "sqrt_n"  # U_hat = U * sqrt(N) or U ("none"), for source=pca
    scale: float = 0.3  # multiplies the unit-variance coordinates (docs/methods/svd_frozen.md)
    center: bool = True  # centre E (SVD and raw dims)


def select_columns(num: int, dim: int, select: str, seed: int, variance: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``min(dim, num)`` columns out of ``num`` (sorted by decreasing variance when given)."""
    k = min(dim, num)
    if select == "variance":
        return np.arange(k) if variance is None else np.argsort(-variance, kind="stable")[:k]
    if select == "uniform":
        return np.unique(np.linspace(0, num - 1, k).round().astype(np.int64))
    return np.sort(np.random.default_rng(seed).choice(num, size=k, replace=False))


class InitialisedTable(ItemEncoder):
    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(init.clone())  # (N, d)

    def forward(self) -> torch.Tensor:
        return self.weight


def initial_table(s: PcaInitSettings, ctx: ItemContext) -> torch.Tensor:
    """The (N, d) initial ID table."""
    if s.source == "pca":
        basis = require_basis(ctx, "pca_init")
        coords = scaled_coords(basis, 0, s.scaling)  # (N, r), r = all components
        weights = weight_profile(normalised_sigma(basis), s.weighting)
        cols = torch.from_numpy(select_columns(coords.shape[1], ctx.dim, s.select, ctx.seed))
        return truncated_table(coords[:, cols], weights[cols], ctx.dim) * s.scale
    if ctx.semantic is None:
        raise ConfigError("method 'pca_init' with source=raw needs the semantic embeddings")
    E = ctx.semantic.double()
    X = E - E.mean(dim=0) if s.center else E  # (N, D)
    cols = torch.from_numpy(select_columns(X.shape[1], ctx.dim, s.select, ctx.seed, X.var(dim=0).numpy()))
    return truncated_table(X[:, cols].float(), torch.ones(len(cols)), ctx.dim) * s.scale


def build(s: PcaInitSettings, ctx: ItemContext) -> InitialisedTable:
    return InitialisedTable(initial_table(s, ctx))


SPEC = MethodSpec("pca_init", PcaInitSettings, build, needs_text=True, needs_basis=True)
