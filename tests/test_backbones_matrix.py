"""Every backbone x every implemented item encoder trains one tiny epoch through ``api.train``.

The method list comes from the registry, so methods added later are picked up automatically;
methods that need text use the offline ``fake`` encoder (set in ``tiny_settings``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import tiny_settings
from spectran.api import train
from spectran.assemble import assemble_run
from spectran.backbones.registry import backbone_names
from spectran.data.prepare import prepare
from spectran.encoders.registry import method_names

PAIRS = [(b, m) for b in backbone_names() for m in method_names()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The synthetic dataset prepared once for the whole grid."""
    s = tiny_settings()
    s.data.cache_dir = str(tmp_path_factory.mktemp("prepared"))
    return prepare(s.data)


@pytest.mark.slow  # 40 tiny runs: ~25 s on a shared 2-core CPU
@pytest.mark.parametrize("backbone,method", PAIRS, ids=[f"{b}-{m}" for b, m in PAIRS])
def test_pair_trains_one_epoch_and_ranks_every_user(tmp_path, data, backbone, method):
    s = tiny_settings(model={"backbone": backbone, "method": method},
                      train={"epochs": 1, "batch_size": 128})
    m = train(s, tmp_path / "run", exp=assemble_run(s, data))
    assert m["epochs"] == 1 and m["protocol"]["backbone"] == backbone and m["protocol"]["method"] == method
    assert all(math.isfinite(v) for v in m["test"].values())
    ranks = np.load(tmp_path / "run" / "test_ranks.npy")
    assert len(ranks) == m["protocol"]["users"]
    assert ranks.min() >= 1 and ranks.max() <= m["protocol"]["items"]
