"""Sampled softmax: logQ correction, accidental hits, and training with it end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_settings
from spectran.api import train
from spectran.train.sampled import SampledSoftmax


def _data(T=6, N=20, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, w, generator=g), torch.randint(1, N + 1, (T,), generator=g), torch.randn(N, w, generator=g)


def test_uniform_matches_the_formula():
    hidden, targets, table = _data()
    K, N = 8, len(table)
    loss = SampledSoftmax(K, "uniform")(hidden, targets, table, torch.Generator().manual_seed(3))
    neg = torch.randint(1, N + 1, (K,), generator=torch.Generator().manual_seed(3))  # the same draws
    logq = math.log(K / N)
    pos = (hidden * table[targets - 1]).sum(-1) - logq
    negl = (hidden @ table[neg - 1].T - logq).masked_fill(neg[None] == targets[:, None], float("-inf"))
    ref = F.cross_entropy(torch.cat([pos[:, None], negl], 1), torch.zeros(len(targets), dtype=torch.long))
    assert torch.allclose(loss, ref)


def test_in_batch_logq_uses_in_batch_frequency():
    hidden, _, table = _data()
    targets = torch.tensor([1, 1, 1, 2, 3, 4])  # item 1 three times as frequent
    K = 5
    loss = SampledSoftmax(K, "in_batch")(hidden, targets, table, torch.Generator().manual_seed(4))
    pick = torch.randint(0, 6, (K,), generator=torch.Generator().manual_seed(4))
    neg = targets[pick]
    freq = torch.tensor([3, 3, 3, 1, 1, 1], dtype=torch.float64) / 6
    logq = (K * freq).log().float()
    pos = (hidden * table[targets - 1]).sum(-1) - logq
    negl = (hidden @ table[neg - 1].T - logq[pick]).masked_fill(neg[None] == targets[:, None], float("-inf"))
    ref = F.cross_entropy(torch.cat([pos[:, None], negl], 1), torch.zeros(6, dtype=torch.long))
    assert torch.allclose(loss, ref)


def test_only_accidental_hits_gives_zero_loss():
    hidden, _, table = _data()
    targets = torch.full((6,), 5)
    loss = SampledSoftmax(16, "in_batch")(hidden, targets, table, torch.Generator().manual_seed(0))
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # every negative is the target itself: masked


def test_many_uniform_negatives_approach_full_softmax():
    """The K draws estimate the partition function: as K grows, loss - log(K/N) -> the full CE.

    (Every logit, the positive's included, is reduced by log E[count] as in TF's sampled softmax,
    so the uniform loss is offset by the constant log(K/N), which has no gradient.)
    """
    hidden, targets, table = _data(T=32, N=30)
    full = F.cross_entropy(hidden @ table.T, targets - 1)
    sampled = SampledSoftmax(3000, "uniform")(hidden, targets, table, torch.Generator().manual_seed(0))
    assert float(sampled) - math.log(3000 / 30) == pytest.approx(float(full), rel=0.05)
    few = SampledSoftmax(2, "uniform")(hidden, targets, table, torch.Generator().manual_seed(0))
    assert float(few) - math.log(2 / 30) < float(full)  # Jensen: few draws under-estimate log Z


@pytest.mark.parametrize("negatives", ["uniform", "in_batch"])
def test_training_with_sampled_softmax_learns(tmp_path, negatives):
    m = train(tiny_settings(train={"loss": "sampled", "num_negatives": 32, "negatives": negatives,
                                   "epochs": 3}), tmp_path / negatives)
    assert m["valid"]["ndcg@10"] > 0.1  # random ranking over 120 items gives ~0.04
    with pytest.raises(ValueError):
        SampledSoftmax(0)
