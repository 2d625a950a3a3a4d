"""Shared fixtures: an isolated cache folder and small run settings on the synthetic dataset."""

from __future__ import annotations

import pytest

from spectran.settings import RunSettings, resolve


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own prepared-data / embedding cache."""
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path_factory.mktemp("cache")))


def tiny_settings(**sections) -> RunSettings:
    """Synthetic data, d=16, 1 layer, 2 epochs, no progress bar; ``sections`` override."""
    raw = {
        "data": {"dataset": "synthetic", "max_len": 20},
        "text": {"encoder": "fake"},
        "model": {"dim": 16},
        "train": {"epochs": 2, "progress": False, "batch_size": 64, "threads": 1},
        "eval": {"batch_size": 128},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return resolve(raw)


@pytest.fixture
def tiny():
    return tiny_settings
