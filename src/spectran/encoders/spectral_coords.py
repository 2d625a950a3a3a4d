"""Spectral coordinates shared by the SVD family and SpecTran (one scaling convention for all).

From the basis E - mu = U diag(sigma) V^T (spectran.spectral.basis):

- ``U_hat = U[:, :r] * c`` with c = sqrt(N) (``scaling="sqrt_n"``: every column has unit mean
  square, i.e. unit variance when E is centred) or c = 1 (``scaling="none"``);
- ``sigma_bar = sigma / sigma_1``; the weighting g(sigma_bar) is sigma_bar (``"sigma"``, PCA-like:
  the top coordinate keeps unit scale and the others shrink with their singular value) or 1
  (``"one"``, whitened);
- the truncated table ``U_hat[:, :d] * g(sigma_bar[:d])``, zero-padded to d columns when the
  rank is below d. ``svd_frozen``, ``pca_init`` and SpecTran without attention all build their
  table with :func:`truncated_table`, so they agree exactly.

:class:`ColdStartProjector` holds what projecting a new item needs (mean, V, 1/sigma, c) as
non-persistent buffers (derived data, rebuilt from the basis, never stored in checkpoints).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from spectran.encoders.base import ItemContext
from spectran.errors import ConfigError

Scaling = Literal["sqrt_n", "none"]
Weighting = Literal["sigma", "one"]


def require_basis(ctx: ItemContext, method: str):
    """The context's SpectralBasis; a ConfigError when the preparation layer did not compute it."""
    if ctx.basis is None:
        raise ConfigError(f"method '{method}' needs the SVD of the semantic embeddings (no basis was prepared)")
    return ctx.basis


def coord_scale(num_items: int, scaling: Scaling) -> float:
    """c in U_hat = U * c."""
    return math.sqrt(num_items) if scaling == "sqrt_n" else 1.0


def scaled_coords(basis, rank_cap: int, scaling: Scaling) -> torch.Tensor:
    """U_hat (N, r): the top-r (``rank_cap`` <= 0: all) left singular vectors times c."""
    r = basis.rank if rank_cap <= 0 else min(rank_cap, basis.rank)
    return basis.U[:, :r].float() * coord_scale(basis.num_items, scaling)  # (N, r)


def normalised_sigma(basis, rank_cap: int = 0) -> torch.Tensor:
    """sigma_bar = sigma / sigma_1, (r,)."""
    r = basis.rank if rank_cap <= 0 else min(rank_cap, basis.rank)
    sigma = basis.sigma[:r].float()
    return sigma / sigma[0]


def weight_profile(sigma_bar: torch.Tensor, weighting: Weighting) -> torch.Tensor:
    """g(sigma_bar): sigma_bar (PCA-like) or ones (whitened)."""
    return sigma_bar.clone() if weighting == "sigma" else torch.ones_like(sigma_bar)


def truncated_table(coords: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """coords[:, :k] * weights[:k] with k = min(d, r), zero-padded to (N, d)."""
    k = min(dim, coords.shape[1], weights.shape[0])
    table = coords[:, :k] * weights[:k]  # (N, k)
    if k < dim:
        table = torch.cat([table, table.new_zeros(table.shape[0], dim - k)], dim=1)
    return table  # (N, d)


def transition_signal(coords: torch.Tensor, pairs: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Collaborative signal of each spectral component, (r,): the Pearson correlation of the
    component's coordinate between consecutive training items (a -> b) over all training pairs.

    A component whose coordinate is shared by items that follow each other carries sequential
    signal (rho near 1); a direction of pure noise has rho near 0 (see :func:`noise_floor`),
    whatever its singular value. For a model that scores b given a by a dot product, the first
    gradient step favours component k by its (unnormalised) covariance between a and b, of which
    rho_k is the normalised form. Computed in float64, chunked over pairs."""
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] < 2:
        raise ConfigError(f"transition signal: expected (P >= 2, 2) training pairs, got {tuple(pairs.shape)}")
    r = coords.shape[1]
    sums = torch.zeros(5, r, dtype=torch.float64)  # sum a, sum b, sum a^2, sum b^2, sum ab
    for start in range(0, pairs.shape[0], chunk):
        p = pairs[start:start + chunk]
        a, b = coords[p[:, 0]].double(), coords[p[:, 1]].double()  # (P', r)
        sums += torch.stack([a.sum(0), b.sum(0), (a * a).sum(0), (b * b).sum(0), (a * b).sum(0)])
    n = float(pairs.shape[0])
    mean_a, mean_b = sums[0] / n, sums[1] / n
    cov = sums[4] / n - mean_a * mean_b
    var = (sums[2] / n - mean_a ** 2).clamp_min(1e-30) * (sums[3] / n - mean_b ** 2).clamp_min(1e-30)
    return (cov / var.sqrt()).float()  # (r,)


def select_components(signal: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (k,) of the k components with the largest signal, in ascending order (by sigma)."""
    return torch.sort(torch.topk(signal, min(k, signal.shape[0])).indices).values


def noise_floor(pairs: torch.Tensor, num_items: int, z: float = 3.0, probes: int = 128, seed: int = 0) -> float:
    """The signal a direction of pure noise stays below: z times the RMS of :func:`transition_signal`
    over ``probes`` random Gaussian directions of the items (seeded), measured on these very pairs.

    A closed form such as 1 / sqrt(P) would assume independent pairs; real sequences repeat popular
    items and pairs, which widens the spread of a
    noise direction's rho several-fold. Random probes see exactly that structure."""
    generator = torch.Generator().manual_seed(seed)
    probe = torch.randn(num_items, probes, generator=generator, dtype=torch.float64)  # (N, probes)
    return z * float(transition_signal(probe, pairs).double().pow(2).mean().sqrt())


def informative_components(signal: torch.Tensor, k: int, floor: float) -> torch.Tensor:
    """Indices (k' <= k,) of the top-k components by sigma among those whose signal reaches
    ``floor`` (not noise-like), in ascending order. With no noise-like component among the top k
    this is the top k itself; with fewer than k informative components it is all of them (the
    caller zero-pads, as a truncation to a rank below d does)."""
    return torch.nonzero(signal >= floor).flatten()[:k]


def signal_share(signal: torch.Tensor, index: torch.Tensor, k: int) -> float:
    """The mean signal of the components ``index`` over the mean signal of the k components with
    the most signal (:func:`select_components`): 1 where ``index`` is those, near 0 where it
    carries nothing. 0 for an empty ``index``; 1 where no component has a positive signal (then no
    choice is better than another)."""
    best = float(signal[select_components(signal, k)].mean())
    if best <= 0:
        return 1.0
    return float(signal[index].mean()) / best if index.numel() else 0.0


def auto_rule(signal: torch.Tensor, k: int, floor: float, min_share: float) -> tuple[str, float]:
    """What ``position_by=auto`` resolves to, and the share it decided by: ``"informative"`` while
    :func:`informative_components` carry at least ``min_share`` of the signal of the k components
    with the most signal (:func:`signal_share`), else ``"signal"``."""
    share = signal_share(signal, informative_components(signal, k, floor), k)
    return ("informative" if share >= min_share else "signal"), share


class ColdStartProjector(nn.Module):
    """u_hat = (e - mean) V diag(1/sigma) * c for new items (cold start), (M, D) -> (M, r)."""

    def __init__(self, basis, rank: int, scale: float):
        super().__init__()
        self.register_buffer("mean", basis.mean.float().clone(), persistent=False)  # (D,)
        self.register_buffer("proj", (basis.V[:, :rank] / basis.sigma[:rank]).float() * scale,
                             persistent=False)  # (D, r)

    def forward(self, semantic: torch.Tensor) -> torch.Tensor:
        if semantic.ndim != 2 or semantic.shape[1] != self.proj.shape[0]:
            raise ConfigError(f"new item embeddings: expected shape (M, {self.proj.shape[0]}), "
                              f"got {tuple(semantic.shape)}")
        x = semantic.to(self.proj.device, torch.float64) - self.mean.double()
        return (x @ self.proj.double()).float()  # (M, r)
