"""Singular-value spectra of item-embedding matrices: the *dimension collapse* picture.

- :func:`singular_values`: σ of an (N, w) matrix in float64, descending, divided by σ₁.
- :func:`effective_rank`: Roy & Vetterli (2007), exp(H(p)) with p = σ / Σσ (0·log 0 = 0). It is d
  for a d×d identity, 1 for a rank-1 matrix, and invariant to rotations and to scale.
- :func:`stable_rank`: Σσ² / σ₁² (Rudelson & Vershynin 2007).
- :func:`run_spectra`: the learned ``item_embeddings.npy`` of every run, one spectrum per report
  row and dataset: the σ/σ₁ curves of its seeds are averaged elementwise, the ranks are given as
  mean ± sample std over seeds.
- :func:`semantic_spectra`: the same for E, the frozen text embeddings of the runs' items.
- :func:`attention_mass`: for encoders exposing ``spectral_attention() -> (d, r)`` (SpecTran's
  |φ(S)|), the share of attention mass on each spectral component and on the top-d (principal)
  components versus the rest (subordinate).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.collect import RunRecord
from spectran.runfolder import RunFolder

if TYPE_CHECKING:  # the CLI imports this module to register its command; torch loads on use
    from spectran.encoders.base import ItemEncoder


def singular_values(matrix: Any, center: bool = False) -> np.ndarray:
    """Singular values of ``matrix`` (N, w) in float64, descending, normalised by σ₁."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise SpectranError(f"expected a non-empty 2-d matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise SpectranError("matrix has NaN or inf entries; its spectrum is undefined")
    if center:
        m = m - m.mean(axis=0, keepdims=True)
    sigma = np.linalg.svd(m, compute_uv=False)
    if sigma[0] <= 0:
        raise SpectranError("matrix is all zeros; its spectrum is undefined")
    return sigma / sigma[0]


def effective_rank(sigma: np.ndarray) -> float:
    """exp of the Shannon entropy of p = σ / Σσ (Roy & Vetterli 2007)."""
    s = np.asarray(sigma, dtype=np.float64)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def stable_rank(sigma: np.ndarray) -> float:
    """Σσ² / σ₁²."""
    s = np.asarray(sigma, dtype=np.float64)
    return float((s ** 2).sum() / s.max() ** 2)


@dataclass
class Spectrum:
    dataset: str
    row: str  # report row, or "E (<encoder>)"
    sigma: np.ndarray  # (k,) mean over seeds of σ/σ₁
    sigma_std: np.ndarray  # (k,) sample std over seeds (0 for one seed)
    effective_ranks: list[float]  # one per seed
    stable_ranks: list[float]
    shape: tuple[int, int]  # (N, w) of one matrix
    semantic: bool = False  # E rather than a learned table


def _combine(dataset: str, row: str, sigmas: list[np.ndarray], shape: tuple[int, int],
             semantic: bool = False) -> Spectrum:
    stack = np.stack(sigmas)  # (seeds, k)
    std = stack.std(axis=0, ddof=1) if len(sigmas) > 1 else np.zeros(stack.shape[1])
    return Spectrum(dataset, row, stack.mean(axis=0), std, [effective_rank(s) for s in sigmas],
                    [stable_rank(s) for s in sigmas], shape, semantic)


def run_spectra(records: list[RunRecord], center: bool = False) -> list[Spectrum]:
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[(r.dataset, r.row)].append(r)
    out = []
    for (dataset, row), runs in groups.items():
        sigmas, shapes = [], set()
        for r in sorted(runs, key=lambda r: r.seed):
            table = RunFolder(r.folder).read_item_embeddings()
            shapes.add(table.shape)
            sigmas.append(singular_values(table, center))
        if len(shapes) > 1:
            raise SpectranError(f"{dataset}/{row}: seeds have item tables of different shapes {sorted(shapes)}")
        out.append(_combine(dataset, row, sigmas, shapes.pop()))
    return out


def semantic_spectra(records: list[RunRecord], center: bool = False) -> list[Spectrum]:
    """Spectrum of E per dataset, from the text settings of a run that uses E (else any run)."""
    from spectran.data.prepare import prepare
    from spectran.text.api import load_or_encode

    out = []
    for dataset in sorted({r.dataset for r in records}):
        runs = [r for r in records if r.dataset == dataset]
        runs.sort(key=lambda r: r.protocol.get("encoder") is None)  # text-using runs first
        settings = runs[0].settings
        E = load_or_encode(prepare(settings.data), settings.text)  # (N, D)
        n_items = RunFolder(runs[0].folder).read_item_embeddings(mmap=True).shape[0]
        if E.shape[0] != n_items:
            raise SpectranError(f"{dataset}: E has {E.shape[0]} rows but the runs' item tables {n_items}")
        out.append(_combine(dataset, f"E ({settings.text.encoder})", [singular_values(E, center)],
                            tuple(E.shape), semantic=True))
    return out


@dataclass
class AttentionMass:
    dataset: str
    row: str
    mass: np.ndarray  # (r,) share of |attention| on each spectral component (sums to 1), seed mean
    principal_shares: list[float]  # per seed: share on the top-d components
    d: int
    summaries: list[dict[str, float]] = field(default_factory=list)  # per seed: attention_summary()


def attention_mass(encoder: ItemEncoder) -> tuple[np.ndarray, float] | None:
    """(mass per component (r,), share on the top-d) of the encoder's ``spectral_attention()``
    (a (d, r) tensor: SpecTran's φ(S)), or None for an encoder without one."""
    scores = encoder.spectral_attention()
    if scores is None:
        return None
    weights = np.abs(scores.detach().double().cpu().numpy())  # (d, r)
    if weights.ndim != 2:
        raise SpectranError(f"spectral_attention() must return a (d, r) matrix, got shape {weights.shape}")
    d = weights.shape[0]
    mass = weights.sum(axis=0)  # (r,)
    total = float(mass.sum())
    if total == 0.0:  # all attention scores shrunk to zero: no mass anywhere
        return np.zeros_like(mass), float("nan")
    return mass / total, float(mass[:d].sum() / total)


def attention_masses(records: list[RunRecord], method: str = "spectran") -> list[AttentionMass]:
    """Attention mass of every run of ``method`` (SpecTran, or a method whose settings have its
    ``attention``) whose encoder exposes ``spectral_attention``."""
    from spectran.api import load_run

    groups: dict[tuple[str, str], list[tuple[np.ndarray, float, int]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.seed):
        if r.settings.model.method != method or r.settings.method.attention == "none":
            continue  # the ablation without attention has no attention to show
        encoder = load_run(r.folder).model.item_encoder
        result = attention_mass(encoder)
        if result is not None:
            summary = encoder.attention_summary()
            groups[(r.dataset, r.row)].append((*result, r.settings.model.dim, summary))
    out = []
    for (dataset, row), items in groups.items():
        lengths = {len(item[0]) for item in items}
        if len(lengths) > 1:
            raise SpectranError(f"{dataset}/{row}: seeds have different numbers of spectral components")
        out.append(AttentionMass(dataset, row, np.mean([item[0] for item in items], axis=0),
                                 [item[1] for item in items], items[0][2],
                                 [item[3] for item in items if item[3] is not None]))
    return out
