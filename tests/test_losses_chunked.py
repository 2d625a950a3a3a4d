"""The chunked full-softmax cross-entropy equals the plain one (loss and both gradients)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_settings
from spectran.api import train
from spectran.errors import ConfigError
from spectran.train.chunked_ce import chunked_cross_entropy
from spectran.train.losses import FullSoftmaxCE, make_loss


def _inputs(T=37, N=53, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = (torch.randn(T, w, generator=g) * 2).requires_grad_()
    table = torch.randn(N, w, generator=g).requires_grad_()
    targets = torch.randint(0, N, (T,), generator=g)
    return hidden, table, targets


def _plain(hidden, table, targets):
    loss = F.cross_entropy(hidden @ table.T, targets, ignore_index=-1)
    gh, gt = torch.autograd.grad(loss, (hidden, table))
    return loss, gh, gt


def _chunked(hidden, table, targets, chunk):
    loss = chunked_cross_entropy(hidden, table, targets, chunk)
    gh, gt = torch.autograd.grad(loss, (hidden, table))
    return loss, gh, gt


@pytest.mark.parametrize("chunk", [1, 5, 36, 37, 1000])
def test_chunked_equals_plain_in_fp32(chunk):
    hidden, table, targets = _inputs()
    for a, b in zip(_chunked(hidden, table, targets, chunk), _plain(hidden, table, targets), strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_ignored_targets_count_for_nothing():
    hidden, table, targets = _inputs()
    targets[::3] = -1  # padding, as FullSoftmaxCE passes it (item id 0 -> column -1)
    chunked, plain = _chunked(hidden, table, targets, 8), _plain(hidden, table, targets)
    for a, b in zip(chunked, plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (chunked[1][::3] == 0).all()  # no gradient reaches an ignored position
    # through the loss protocol: item ids 1..N, 0 = padding
    ids = torch.where(targets >= 0, targets + 1, torch.zeros_like(targets))
    torch.testing.assert_close(FullSoftmaxCE(chunk=8)(hidden, ids, table), FullSoftmaxCE()(hidden, ids, table),
                               atol=1e-5, rtol=1e-5)


def test_large_logits_do_not_overflow():
    hidden, table, targets = _inputs()
    with torch.no_grad():
        hidden.mul_(40)  # logits in the hundreds: exp would overflow without the max shift
    for a, b in zip(_chunked(hidden, table, targets, 6), _plain(hidden, table, targets), strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_scaled_upstream_gradient_and_no_grad():
    hidden, table, targets = _inputs()
    loss = chunked_cross_entropy(hidden, table, targets, 7) * 3.5
    gh, = torch.autograd.grad(loss, hidden)
    ref, = torch.autograd.grad(F.cross_entropy(hidden @ table.T, targets) * 3.5, hidden)
    torch.testing.assert_close(gh, ref, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        value = chunked_cross_entropy(hidden, table, targets, 7)
    assert not value.requires_grad
    torch.testing.assert_close(value, F.cross_entropy(hidden @ table.T, targets).detach(), atol=1e-5, rtol=1e-5)


def test_under_bf16_autocast_the_loss_is_fp32_and_close_to_plain():
    hidden, table, targets = _inputs(T=64, N=300, w=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked = chunked_cross_entropy(hidden, table, targets, 16)
        plain = F.cross_entropy((hidden @ table.T).float(), targets)
    assert chunked.dtype == torch.float32 and plain.dtype == torch.float32
    torch.testing.assert_close(chunked, plain, atol=1e-3, rtol=1e-3)  # same bf16 GEMM, fp32 softmax
    gh, gt = torch.autograd.grad(chunked, (hidden, table))
    assert gh.dtype == torch.float32 and gt.dtype == torch.float32  # gradients of the fp32 masters
    _, rh, rt = _plain(hidden, table, targets)
    torch.testing.assert_close(gh, rh, atol=2e-2, rtol=5e-2)
    torch.testing.assert_close(gt, rt, atol=2e-2, rtol=5e-2)


def test_bad_chunk_and_make_loss():
    hidden, table, targets = _inputs()
    with pytest.raises(ValueError, match="chunk must be > 0"):
        chunked_cross_entropy(hidden, table, targets, 0)
    assert make_loss("ce", chunk=16).chunk == 16 and make_loss("ce").chunk == 0
    with pytest.raises(ConfigError, match=r"train\.ce_chunk must be >= 0"):
        make_loss("ce", chunk=-1)


def test_training_with_the_chunked_loss_follows_the_plain_run(tmp_path):
    plain = train(tiny_settings(), tmp_path / "plain")
    chunked = train(tiny_settings(train={"ce_chunk": 50}), tmp_path / "chunked")
    log_p = (tmp_path / "plain" / "log.jsonl").read_text().splitlines()
    log_c = (tmp_path / "chunked" / "log.jsonl").read_text().splitlines()
    for a, b in zip(log_p, log_c, strict=True):
        assert abs(json.loads(a)["loss"] - json.loads(b)["loss"]) < 1e-4
    assert abs(plain["test"]["ndcg@10"] - chunked["test"]["ndcg@10"]) < 2e-3
