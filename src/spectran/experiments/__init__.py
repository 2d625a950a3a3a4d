"""Sweeps over run grids, result tables with significance tests (``spectran sweep``, ``spectran report``)."""
