"""Diagnostics: singular-value spectra, effective rank, attention mass, dimension sensitivity."""
