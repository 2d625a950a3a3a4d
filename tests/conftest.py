"""Shared fixtures: an isolated cache and data root, the real staged data on request, and small
run settings on the synthetic dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spectran.settings import RunSettings, resolve

# captured before any test runs: the autouse fixture below hides it from every test
REAL_DATA = os.environ.get("SPECTRAN_DATA") or None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own prepared-data / embedding cache and an empty data root: no test sees
    the developer's $SPECTRAN_DATA or per-user data folder unless it asks for ``real_data``."""
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("SPECTRAN_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """The staged datasets' root from the $SPECTRAN_DATA the session started with (set for the
    test and its subprocesses); the test is skipped, with the reason shown, when it is unset."""
    if REAL_DATA is None:
        pytest.skip("needs the staged datasets: SPECTRAN_DATA is not set")
    root = Path(REAL_DATA)
    if not root.is_dir():
        pytest.skip(f"needs the staged datasets: SPECTRAN_DATA={REAL_DATA} is not a folder")
    monkeypatch.setenv("SPECTRAN_DATA", str(root))
    return root


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
