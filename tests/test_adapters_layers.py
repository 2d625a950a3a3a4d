"""Adapter building blocks (MLP stacks) and the alignment losses: hand-checkable values."""

from __future__ import annotations

import math

import pytest
import torch

from spectran.encoders.adapter_layers import mlp_stack
from spectran.encoders.alignment import cosine_distance, cosine_infonce, distillation_mse
from spectran.errors import ConfigError


def test_mlp_stack_shapes_and_layer_count():
    net = mlp_stack(20, 16, 8, layers=3, act="gelu", dropout=0.1)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 16), (16, 16), (16, 8)]
    assert net(torch.randn(5, 20)).shape == (5, 8)
    assert isinstance(mlp_stack(20, 16, 8, 1, final_act=True)[-1], torch.nn.GELU)
    with pytest.raises(ConfigError):
        mlp_stack(20, 16, 8, layers=0)


def test_cosine_distance_is_zero_when_aligned_and_positive_otherwise():
    a = torch.randn(6, 5)
    assert cosine_distance(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distance(a, 3.0 * a).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert cosine_distance(a, a + torch.randn(6, 5)).item() > 0.01
    assert cosine_distance(a, -a).item() == pytest.approx(2.0, abs=1e-6)


def test_infonce_hand_computed_value_at_coincidence_and_larger_when_misaligned():
    M, t = 5, 0.5
    eye = torch.eye(M)
    # orthonormal rows that coincide: -log(e^{1/t} / (e^{1/t} + (M-1) e^0))
    expected = math.log(1 + (M - 1) * math.exp(-1 / t))
    assert cosine_infonce(eye, eye, t).item() == pytest.approx(expected, rel=1e-4)
    # misaligned (each anchor's positive is another item's direction): -log(1 / (e^{1/t} + M - 1))
    misaligned = cosine_infonce(eye, eye.roll(1, dims=0), t).item()
    assert misaligned == pytest.approx(math.log(math.exp(1 / t) + M - 1), rel=1e-4) and misaligned > expected
    # goes to zero as the temperature goes to zero
    assert cosine_infonce(eye, eye, 0.05).item() < 1e-6


def test_infonce_with_a_candidate_set_matches_the_in_batch_form():
    torch.manual_seed(0)
    cands = torch.randn(9, 4)
    rows = torch.tensor([2, 5, 7])
    anchors = cands[rows] + 0.1 * torch.randn(3, 4)
    full = cosine_infonce(anchors, cands, 0.2, rows)
    logits = torch.nn.functional.normalize(anchors, dim=-1) @ torch.nn.functional.normalize(cands, dim=-1).T / 0.2
    ref = -(logits.log_softmax(-1)[torch.arange(3), rows]).mean()
    assert full.item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError):
        cosine_infonce(anchors, cands, 0.2)  # 3 anchors, 9 candidates, no positive index


def test_distillation_mse_sends_no_gradient_to_the_teacher():
    student = torch.randn(4, 6, requires_grad=True)
    teacher = torch.randn(4, 6, requires_grad=True)
    loss = distillation_mse(student, teacher)
    loss.backward()
    assert teacher.grad is None and student.grad is not None
    assert distillation_mse(teacher, teacher).item() == 0.0
