"""Sweeps over run grids, result tables with significance tests (SPEC §12: sweep, report)."""
