"""The SVD of the semantic matrix E, computed once from its D x D Gram matrix and cached next to E.

Optionally centre E (default), then the thin SVD E - mu = U diag(sigma) V^T with
sigma_1 >= sigma_2 >= ... . For catalogs of millions of items the SVD is obtained from the Gram
matrix G = (E - mu)^T (E - mu) (D x D, float64) accumulated over row chunks, so at most one chunk
of E is ever held in float64 (E may be a ``np.memmap``); ``eigh(G)`` gives sigma^2 and V, and
U = (E - mu) V diag(1/sigma) is computed chunk by chunk. Components with sigma below
``rel_tol * sigma_1`` (numerically zero: the rank of centred E is at most min(N - 1, D)) are
dropped so U stays finite. Signs are fixed (the largest-magnitude entry of each column of V is
positive) so the basis is deterministic.

The cache is ``<E>.basis-<centred|raw>.npz`` plus a JSON sidecar holding E's checksum, ``center``
and the npz file's own checksum. A sidecar that does not match E or the npz means the cache is
refused and recomputed (it is derived data), never silently reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spectran.errors import CacheError, DataError
from spectran.io import atomic_path, sha256_file, write_json

BASIS_VERSION = 1


@dataclass
class SpectralBasis:
    """Thin SVD of (centred) E: E - mean = U diag(sigma) V^T, all float32 tensors."""

    U: torch.Tensor  # (N, r) orthonormal columns
    sigma: torch.Tensor  # (r,) descending, > 0
    V: torch.Tensor  # (D, r) orthonormal columns
    mean: torch.Tensor  # (D,) zeros when not centred

    @property
    def rank(self) -> int:
        return int(self.sigma.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.U.shape[0])


def _check_matrix(E: Any, where: str) -> tuple[int, int]:
    if getattr(E, "ndim", None) != 2 or E.shape[0] < 2 or E.shape[1] < 1:
        raise DataError(f"{where}: expected an embedding matrix of shape (N >= 2, D), got "
                        f"{getattr(E, 'shape', type(E).__name__)}")
    return int(E.shape[0]), int(E.shape[1])


def _chunks(E: Any, chunk_rows: int):
    for start in range(0, E.shape[0], chunk_rows):
        yield start, np.asarray(E[start:start + chunk_rows], dtype=np.float64)  # (c, D)


def compute_basis(E: Any, center: bool = True, chunk_rows: int = 65536, rel_tol: float = 1e-6,
                  where: str = "semantic matrix") -> SpectralBasis:
    """SVD of (centred) E (N, D) from its float64 Gram matrix, streamed over row chunks."""
    N, D = _check_matrix(E, where)
    total = np.zeros(D, dtype=np.float64)
    for start, block in _chunks(E, chunk_rows):
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise DataError(f"{where}: row {bad} (item {bad + 1}) is not finite (NaN or inf)")
        total += block.sum(axis=0)
    mean = total / N if center else np.zeros(D, dtype=np.float64)
    gram = np.zeros((D, D), dtype=np.float64)
    for _, block in _chunks(E, chunk_rows):
        block -= mean
        gram += block.T @ block  # (D, D)
    eigval, eigvec = np.linalg.eigh(gram)  # ascending
    order = np.argsort(eigval)[::-1]
    sigma = np.sqrt(np.clip(eigval[order], 0.0, None))
    V = eigvec[:, order]  # (D, D)
    if sigma[0] <= 0:
        raise DataError(f"{where}: all rows are identical{' after centring' if center else ''}; "
                        "no spectrum to decompose")
    keep = sigma > rel_tol * sigma[0]
    sigma, V = sigma[keep], V[:, keep]  # (r,), (D, r)
    pivot = np.abs(V).argmax(axis=0)
    V = V * np.sign(V[pivot, np.arange(V.shape[1])])  # deterministic signs
    U = np.empty((N, len(sigma)), dtype=np.float32)
    for start, block in _chunks(E, chunk_rows):
        U[start:start + len(block)] = (block - mean) @ V / sigma  # (c, r)
    return SpectralBasis(torch.from_numpy(U), torch.from_numpy(sigma.astype(np.float32)),
                         torch.from_numpy(np.ascontiguousarray(V, dtype=np.float32)),
                         torch.from_numpy(mean.astype(np.float32)))


def project_new_items(basis: SpectralBasis, E_new: Any) -> torch.Tensor:
    """Cold start: U-coordinates u = (e - mean) V diag(1/sigma) of new rows, (M, r)."""
    X = torch.as_tensor(np.asarray(E_new), dtype=torch.float64)
    if X.ndim != 2 or X.shape[1] != basis.V.shape[0]:
        raise DataError(f"new item embeddings: expected shape (M, {basis.V.shape[0]}), got {tuple(X.shape)}")
    if not torch.isfinite(X).all():
        raise DataError("new item embeddings: contain NaN or inf")
    coords = (X - basis.mean.double()) @ basis.V.double() / basis.sigma.double()  # (M, r)
    return coords.float()


def matrix_checksum(E: Any, chunk_rows: int = 65536) -> str:
    """sha256 of E's shape and float32 values, streamed over row chunks."""
    digest = hashlib.sha256(f"{tuple(E.shape)}".encode())
    for start in range(0, E.shape[0], chunk_rows):
        digest.update(np.ascontiguousarray(E[start:start + chunk_rows], dtype=np.float32).tobytes())
    return digest.hexdigest()


def basis_cache_path(embedding_file: str | Path, center: bool) -> Path:
    """Where the basis of the embedding file ``embedding_file`` (a .npy) is cached."""
    p = Path(embedding_file)
    return p.with_name(f"{p.stem}.basis-{'centred' if center else 'raw'}.npz")


def _read_cache(path: Path, sidecar: Path, checksum: str, center: bool) -> SpectralBasis | None:
    """The cached basis, or None when absent, stale (other E or centring) or corrupt."""
    if not (path.is_file() and sidecar.is_file()):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    expected = {"version": BASIS_VERSION, "embedding_sha256": checksum, "center": center}
    if any(meta.get(k) != v for k, v in expected.items()) or meta.get("npz_sha256") != sha256_file(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: torch.from_numpy(np.array(z[k], dtype=np.float32)) for k in ("U", "sigma", "V", "mean")}
    if not all(torch.isfinite(a).all() for a in arrays.values()):
        raise CacheError(f"{path}: cached basis has non-finite values although its checksum matches")
    return SpectralBasis(**arrays)


def load_or_compute_basis_at(E: Any, embedding_file: str | Path, center: bool = True,
                             chunk_rows: int = 65536) -> SpectralBasis:
    """The basis of E, cached next to ``embedding_file``; recomputed when the cache does not match."""
    path = basis_cache_path(embedding_file, center)
    sidecar = path.with_suffix(".json")
    checksum = matrix_checksum(E, chunk_rows)
    cached = _read_cache(path, sidecar, checksum, center)
    if cached is not None:
        return cached
    basis = compute_basis(E, center=center, chunk_rows=chunk_rows, where=str(embedding_file))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, U=basis.U.numpy(), sigma=basis.sigma.numpy(), V=basis.V.numpy(),
                 mean=basis.mean.numpy())
    write_json(sidecar, {"version": BASIS_VERSION, "embedding_sha256": checksum, "center": center,
                         "npz_sha256": sha256_file(path), "shape": list(E.shape), "rank": basis.rank})
    return basis

