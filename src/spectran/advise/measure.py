"""What ``spectran advise`` measures on a dataset and its item embeddings E, before any training.

Four groups, each a dataclass of plain numbers (so :mod:`spectran.advise.rule` is a function of
numbers and a test can hold it to the measured tables):

- :class:`DataShape`: catalog size, users, interactions, training pairs, density;
- :class:`Scale`: the scale and normalisation of E (row norms, per-dimension spread, constant
  columns, the few hidden dimensions that dominate the squared norm: decoder-LLM states have some);
- :class:`Spectrum`: the shape of the centred spectrum (effective rank, the energy of the first
  component and of the top d), the anisotropy (mean cosine of random item pairs), and where the
  collaborative signal sits: each component's rho (``transition_signal``), the noise floor, how many
  of the top d by singular value are noise-like, and what ``position_by=auto`` builds
  (``auto_rule``), exactly as SpecTran computes them at build time;
- :class:`Measurements`: the three, plus the spectrum of the L2-normalised E when E's rows are not
  already unit norm (``text.normalize=true`` would train on that one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spectran.data.prepare import PreparedDataset
from spectran.diagnostics.spectrum import effective_rank
from spectran.encoders.spectral_coords import (
    auto_rule,
    noise_floor,
    scaled_coords,
    select_components,
    signal_share,
    transition_signal,
)
from spectran.encoders.spectran import SpecTranSettings
from spectran.errors import DataError
from spectran.spectral.basis import compute_basis

COSINE_PAIRS = 20000  # random item pairs for the mean cosine (seeded)
DOMINANT = 10.0  # a hidden dimension dominates when its mean square is this many times the median's
CHUNK_ROWS = 65536  # rows of E held in float64 at a time
UNIT_NORM_TOL = 1e-3  # rows whose norms are all within this of 1 are already L2-normalised


@dataclass
class DataShape:
    items: int  # N
    users: int
    interactions: int  # every item of every sequence (training, validation and test)
    pairs: int  # consecutive training pairs: what the collaborative signal is measured on
    density: float  # interactions / (users x items)


@dataclass
class Scale:
    dim: int  # D, the width of E
    row_norm_mean: float
    row_norm_cv: float  # std / mean of the row norms: 0 for L2-normalised rows
    zero_rows: int  # rows of norm 0 (L2 normalisation cannot place them)
    constant_columns: int  # hidden dimensions with (numerically) no variance
    std_ratio: float  # largest over median per-dimension std, over the non-constant dimensions
    dominant_dims: list[int] = field(default_factory=list)  # up to 5, largest first
    dominant_share: float = 0.0  # their share of the total squared norm

    @property
    def unit_norm(self) -> bool:
        return self.zero_rows == 0 and abs(self.row_norm_mean - 1) <= UNIT_NORM_TOL \
            and self.row_norm_cv <= UNIT_NORM_TOL


@dataclass
class Spectrum:
    rank: int  # components of the centred E above numerical zero
    effective_rank: float  # exp(entropy of sigma / sum sigma), Roy & Vetterli
    first_share: float  # sigma_1^2 / sum sigma^2 of the centred E: the first component's energy share
    top_share: float  # energy share of the top k components
    mean_cosine: float  # mean cosine of random pairs of distinct items (uncentred E)
    k: int  # min(d, rank): the components a truncation to d keeps
    noise_floor: float | None  # 3 x the RMS rho of random directions over the training pairs
    noise_like: int | None  # of the top k by sigma, how many have rho below the floor
    above_floor: int | None  # of all components, how many reach the floor
    overlap: int | None  # of the top k by sigma, how many are among the top k by signal
    share: float | None  # signal share of what position_by=informative picks (auto_rule)
    sigma_share: float | None  # signal share of the top k by sigma (what svd_frozen keeps)
    rho_top: float | None  # mean rho of the top k by sigma
    rho_best: float | None  # mean rho of the k components with the most signal
    auto: str | None  # what position_by=auto builds: informative or signal
    seconds: float = 0.0  # time to compute this spectrum and its signal


@dataclass
class Measurements:
    dataset: str
    encoder: str
    d: int  # the SR embedding dimension asked for
    data: DataShape
    scale: Scale
    raw: Spectrum
    normalised: Spectrum | None  # of the L2-normalised rows; None when E's rows are unit norm already


def chunks(E: Any, rows: int = CHUNK_ROWS):
    """(start, float64 block) over row chunks of E, so a large (or memory-mapped) E is never copied whole."""
    for start in range(0, E.shape[0], rows):
        yield start, np.asarray(E[start:start + rows], dtype=np.float64)


def check_finite(E: np.ndarray, where: str) -> None:
    """A DataError naming the first row (and item) with a NaN or inf."""
    for start, block in chunks(E):
        finite = np.isfinite(block)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise DataError(f"{where}: row {start + row} (item {start + row + 1}), column {col} is "
                            f"{block[row, col]}; expected finite numbers only (no NaN/inf)")


def data_shape(ds: PreparedDataset, pairs: np.ndarray) -> DataShape:
    interactions = len(ds.items)
    return DataShape(ds.num_items, ds.num_users, interactions, len(pairs),
                     interactions / max(1, ds.num_users * ds.num_items))


def scale_of(E: np.ndarray) -> Scale:
    N, D = E.shape
    norms = np.empty(N, dtype=np.float64)
    total, power = np.zeros(D), np.zeros(D)  # per hidden dimension: sum, sum of squares
    for start, block in chunks(E):
        norms[start:start + len(block)] = np.linalg.norm(block, axis=1)
        total += block.sum(axis=0)
        power += (block * block).sum(axis=0)
    std = np.sqrt(np.clip(power / N - (total / N) ** 2, 0.0, None))  # (D,)
    varying = std > 1e-9 * max(float(std.max()), 1e-300)
    ratio = float(std[varying].max() / np.median(std[varying])) if varying.any() else 0.0
    median = float(np.median(power))
    dominant = [int(i) for i in np.argsort(power)[::-1][:5] if power[i] > DOMINANT * median > 0]
    mean = float(norms.mean())
    return Scale(int(D), mean, float(norms.std() / mean) if mean > 0 else 0.0, int((norms == 0).sum()),
                 int((~varying).sum()), ratio, dominant,
                 float(power[dominant].sum() / power.sum()) if dominant and power.sum() > 0 else 0.0)


def mean_cosine(E: Any, seed: int = 0) -> float:
    """Mean cosine of :data:`COSINE_PAIRS` random pairs of distinct rows (seeded; 0 for a zero row)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, E.shape[0], COSINE_PAIRS)
    b = (a + rng.integers(1, E.shape[0], COSINE_PAIRS)) % E.shape[0]  # never a itself
    X, Y = np.asarray(E[a], dtype=np.float64), np.asarray(E[b], dtype=np.float64)  # (pairs, D)
    norms = np.linalg.norm(X, axis=1) * np.linalg.norm(Y, axis=1)
    return float(np.where(norms > 0, (X * Y).sum(axis=1) / np.maximum(norms, 1e-300), 0.0).mean())


def spectrum_of(E: Any, pairs: torch.Tensor, d: int, where: str) -> Spectrum:
    """The centred spectrum of E and where the training pairs' signal sits in it."""
    start = time.perf_counter()
    basis = compute_basis(E, center=True, where=where)
    sigma = basis.sigma.double().numpy()
    energy = sigma ** 2 / (sigma ** 2).sum()
    k = min(d, basis.rank)
    floor = noise_like = above = overlap = share = sigma_share = auto = rho_top = rho_best = None
    if pairs.shape[0] >= 2:
        rho = transition_signal(scaled_coords(basis, 0, "sqrt_n"), pairs)
        floor = noise_floor(pairs, basis.num_items)
        auto, share = auto_rule(rho, k, floor, SpecTranSettings().min_signal_share)
        noise_like = int((rho[:k] < floor).sum())
        above = int((rho >= floor).sum())
        best = select_components(rho, k)
        overlap = len(set(best.tolist()) & set(range(k)))
        sigma_share = signal_share(rho, torch.arange(k), k)
        rho_top, rho_best = float(rho[:k].mean()), float(rho[best].mean())
    return Spectrum(basis.rank, effective_rank(sigma), float(energy[0]), float(energy[:k].sum()), mean_cosine(E),
                    k, floor, noise_like, above, overlap, share, sigma_share, rho_top, rho_best, auto,
                    time.perf_counter() - start)


class RowNormalised:
    """E with every row divided by its norm, as ``text.normalize=true`` writes it (a zero row stays
    zero), computed on each read: a view, so a large (or memory-mapped) E is never copied."""

    def __init__(self, E: np.ndarray):
        self.E = E
        self.shape = E.shape
        self.ndim = 2

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.asarray(self.E[index], dtype=np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def measure(ds: PreparedDataset, E: np.ndarray, d: int, encoder: str = "") -> Measurements:
    """Every measurement the rule reads, of the prepared dataset ``ds`` and its E (N, D)."""
    where = f"{ds.name} / {encoder or 'E'}"
    if E.ndim != 2 or E.shape[0] != ds.num_items or E.shape[1] < 1:
        raise DataError(f"{where}: expected an embedding matrix of shape ({ds.num_items}, D), row i = item i+1, "
                        f"got {E.shape}")
    if ds.num_items < 2:
        raise DataError(f"{where}: {ds.num_items} item(s); a spectrum needs at least 2")
    if d < 1:
        raise DataError(f"{where}: d = {d}; expected an SR embedding dimension >= 1")
    check_finite(E, where)
    pairs_np = ds.train_transitions()
    pairs = torch.from_numpy(pairs_np)
    scale = scale_of(E)
    raw = spectrum_of(E, pairs, d, where)
    normalised = None if scale.unit_norm else spectrum_of(RowNormalised(E), pairs, d, f"{where} (L2-normalised)")
    return Measurements(ds.name, encoder, d, data_shape(ds, pairs_np), scale, raw, normalised)

