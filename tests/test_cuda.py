"""The GPU path: chunked cross-entropy, bf16/fp16 training and fp32 ranking on CUDA.

Every test here needs a CUDA device and is skipped (with that reason) without one;
``bench/gpu.sh`` runs this file first on a GPU machine.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_settings
from spectran.api import train, validator
from spectran.assemble import assemble_run
from spectran.train.chunked_ce import chunked_cross_entropy

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _inputs(T=300, N=1000, w=32):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(T, w, generator=g).cuda().requires_grad_()
    table = torch.randn(N, w, generator=g).cuda().requires_grad_()
    return hidden, table, torch.randint(0, N, (T,), generator=g).cuda()


def test_chunked_ce_on_cuda_fp32_equals_plain():
    torch.backends.cuda.matmul.allow_tf32 = False
    hidden, table, targets = _inputs()
    targets[::7] = -1
    a = chunked_cross_entropy(hidden, table, targets, 64)
    b = F.cross_entropy(hidden @ table.T, targets, ignore_index=-1)
    for x, y in zip(torch.autograd.grad(a, (hidden, table)), torch.autograd.grad(b, (hidden, table)), strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_chunked_ce_on_cuda_under_bf16_autocast():
    hidden, table, targets = _inputs()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        a = chunked_cross_entropy(hidden, table, targets, 64)
        b = F.cross_entropy((hidden @ table.T).float(), targets)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-2, rtol=1e-2)
    gh, gt = torch.autograd.grad(a, (hidden, table))
    assert gh.dtype == torch.float32 and gt.dtype == torch.float32


@pytest.mark.parametrize(("precision", "chunk"), [("fp32", 0), ("bf16", 0), ("bf16", 64), ("fp16", 0)])
def test_training_on_cuda(tmp_path, precision, chunk):
    s = tiny_settings(train={"device": "cuda", "precision": precision, "ce_chunk": chunk, "epochs": 2})
    m = train(s, tmp_path / "run")
    assert 0.0 < m["test"]["ndcg@10"] <= 1.0  # finite and learnt something on the synthetic data


def test_cuda_ranks_match_cpu_ranks():
    torch.backends.cuda.matmul.allow_tf32 = False
    exp = assemble_run(tiny_settings())
    cpu = validator(exp, "test")(exp.model)
    exp.model.cuda()
    exp.device = torch.device("cuda")
    gpu = validator(exp, "test")(exp.model)
    assert (cpu == gpu).mean() > 0.99  # identical but for float-rounding ties
