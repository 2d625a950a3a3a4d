"""The SVD of E from its streamed Gram matrix, cold-start projection, and the basis cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import spectran.spectral.basis as basis_mod
from spectran.errors import DataError
from spectran.spectral.basis import basis_cache_path, compute_basis, load_or_compute_basis_at, project_new_items


def semantic(n: int = 60, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.geomspace(5.0, 0.05, d)  # a decaying spectrum, as text embeddings have
    return (rng.normal(size=(n, d)) * scales + rng.normal(size=d)).astype(np.float32)


def aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b with each column's sign flipped to match a."""
    return b * np.sign((a * b).sum(axis=0))


@pytest.mark.parametrize("center", [True, False])
def test_gram_svd_agrees_with_direct_svd(center):
    E = semantic()
    X = E.astype(np.float64) - (E.mean(axis=0) if center else 0)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    b = compute_basis(E, center=center)
    r = b.rank
    assert r == 24  # N > D: full column rank, centred or not
    np.testing.assert_allclose(b.sigma.numpy(), s[:r], rtol=1e-5)
    np.testing.assert_allclose(b.V.numpy(), aligned(b.V.numpy(), Vt[:r].T), atol=1e-4)
    np.testing.assert_allclose(b.U.numpy(), aligned(b.U.numpy(), U[:, :r]), atol=1e-4)
    np.testing.assert_allclose(b.mean.numpy(), E.mean(axis=0) if center else 0, atol=1e-6)
    recon = b.U.double() @ torch.diag(b.sigma.double()) @ b.V.double().T + b.mean.double()
    np.testing.assert_allclose(recon.numpy(), E, atol=1e-4)
    assert torch.all(b.sigma[:-1] >= b.sigma[1:])


def test_rank_deficient_matrix_drops_null_components():
    E = semantic(n=10, d=24)  # N < D: centred E has rank N - 1
    b = compute_basis(E, center=True)
    assert b.rank == 9
    assert torch.isfinite(b.U).all()
    np.testing.assert_allclose((b.U.T @ b.U).numpy(), np.eye(9), atol=1e-4)


def test_chunked_and_memmap_input_give_the_same_basis(tmp_path):
    E = semantic(n=101)
    path = tmp_path / "E.npy"
    np.save(path, E)
    mm = np.load(path, mmap_mode="r")
    whole = compute_basis(E, chunk_rows=1 << 16)
    chunked = compute_basis(mm, chunk_rows=7)
    for name in ("U", "sigma", "V", "mean"):
        a, c = getattr(whole, name), getattr(chunked, name)
        np.testing.assert_allclose(a.numpy(), c.numpy(), atol=1e-5)


def test_signs_are_deterministic():
    V = compute_basis(semantic()).V.numpy()
    pivot = np.abs(V).argmax(axis=0)
    assert (V[pivot, np.arange(V.shape[1])] > 0).all()


def test_non_finite_rows_are_refused():
    E = semantic()
    E[5, 3] = np.nan
    with pytest.raises(DataError, match="row 5 \\(item 6\\)"):
        compute_basis(E)


def test_projecting_training_rows_gives_their_coordinates():
    E = semantic()
    b = compute_basis(E)
    np.testing.assert_allclose(project_new_items(b, E[:7]).numpy(), b.U[:7].numpy(), atol=1e-5)
    with pytest.raises(DataError, match="expected shape"):
        project_new_items(b, E[:, :5])


def test_cache_is_written_reused_and_refused_when_stale(tmp_path, monkeypatch):
    E = semantic()
    emb = tmp_path / "E.npy"
    first = load_or_compute_basis_at(E, emb, center=True)
    npz = basis_cache_path(emb, True)
    meta = json.loads(npz.with_suffix(".json").read_text())
    assert npz.is_file() and meta["center"] is True and meta["rank"] == first.rank

    calls = []
    real = basis_mod.compute_basis
    monkeypatch.setattr(basis_mod, "compute_basis", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_or_compute_basis_at(E, emb, center=True)
    assert calls == [] and torch.equal(again.U, first.U)  # loaded, not recomputed

    changed = E.copy()
    changed[0, 0] += 1.0
    other = load_or_compute_basis_at(changed, emb, center=True)
    assert calls == [1] and not torch.equal(other.U, first.U)  # another E: recomputed

    raw = load_or_compute_basis_at(changed, emb, center=False)
    assert calls == [1, 1] and basis_cache_path(emb, False).is_file()  # centring is part of the key
    assert not torch.equal(raw.mean, other.mean)

    npz.write_bytes(npz.read_bytes()[:100])  # truncated cache file
    repaired = load_or_compute_basis_at(changed, emb, center=True)
    assert calls == [1, 1, 1] and torch.equal(repaired.U, other.U)
