"""Spectral tools: the SVD of the semantic matrix (computed once, cached) and cold-start projection."""

from spectran.spectral.basis import SpectralBasis, compute_basis, load_or_compute_basis_at, project_new_items

__all__ = ["SpectralBasis", "compute_basis", "load_or_compute_basis_at", "project_new_items"]
