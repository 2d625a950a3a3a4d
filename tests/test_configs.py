"""The ready configs: one per standard dataset, each loads and validates (nothing is read or trained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spectran.data.catalog import CATALOG
from spectran.settings import from_sources

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STANDARD = ["office", "beauty", "toys", "clothing", "ml-100k"]


def test_every_standard_dataset_has_a_config_that_names_it():
    assert all(name in CATALOG and CATALOG[name].verified for name in STANDARD)
    for name in STANDARD:
        s = from_sources(str(CONFIGS / f"{name}.yaml"), {}, [])
        assert s.data.dataset == name
        text = (CONFIGS / f"{name}.yaml").read_text(encoding="utf-8")
        assert f"spectran data fetch {name}" in text and f"--config configs/{name}.yaml" in text


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_each_config_loads_and_validates(path):
    s = from_sources(str(path), {}, [])
    s.validate()
    assert s.model.dim >= 1 and s.train.epochs >= 1
