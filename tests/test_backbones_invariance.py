"""Every backbone: padding invariance, causality (causal ones), bidirectionality (BERT4Rec).

Checked on the bare backbone with garbage in the padding rows (so a leak would show even though
the model feeds zeros there), and through the full model (item table + backbone + objective query).
"""

from __future__ import annotations

import pytest
import torch

from spectran.backbones.registry import backbone_names, backbone_spec
from spectran.encoders.id_table import IdTable
from spectran.eval.evaluate import user_representations
from spectran.model import SeqRecModel

DIM, MAX_LEN, N = 16, 12, 30
BACKBONES = backbone_names()


def default_objective(name: str):
    spec = backbone_spec(name)
    return spec.objective(spec.settings(), N)


CAUSAL = [b for b in BACKBONES if not default_objective(b).mask_token]


def make_backbone(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = backbone_spec(name)
    return spec.build(spec.settings(), DIM, MAX_LEN).eval()  # eval: dropout off


def padded(x: torch.Tensor, lengths: list[int], width: int, garbage: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (B, l, d) rows to ``width``; pad rows hold random values when ``garbage``."""
    B, _, d = x.shape
    out = torch.randn(B, width, d) * 3 if garbage else torch.zeros(B, width, d)
    valid = torch.zeros(B, width, dtype=torch.bool)
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n]
        valid[b, :n] = True
    return out, valid


def test_all_four_backbones_are_registered():
    assert set(BACKBONES) == {"sasrec", "bert4rec", "hstu", "gru4rec"}


@pytest.mark.parametrize("name", BACKBONES)
def test_real_positions_ignore_padding_length_and_content(name):
    bb = make_backbone(name)
    torch.manual_seed(1)
    lengths = [5, 3, 7]
    x = torch.randn(3, 7, DIM)
    with torch.no_grad():
        ref = bb(*padded(x, lengths, 7, garbage=False))
        for width in (8, MAX_LEN):
            out = bb(*padded(x, lengths, width, garbage=True))
            for b, n in enumerate(lengths):
                assert torch.allclose(out[b, :n], ref[b, :n], atol=1e-5), (name, width, b)


@pytest.mark.parametrize("name", BACKBONES)
def test_a_sequence_does_not_depend_on_its_batch_mates(name):
    bb = make_backbone(name)
    torch.manual_seed(2)
    x = torch.randn(2, 9, DIM)
    with torch.no_grad():
        alone = bb(*padded(x[:1], [4], 4, garbage=False))
        batch = bb(*padded(x, [4, 9], 9, garbage=True))
    assert torch.allclose(alone[0], batch[0, :4], atol=1e-5)


@pytest.mark.parametrize("name", CAUSAL)
def test_output_at_t_ignores_later_items(name):
    bb = make_backbone(name)
    torch.manual_seed(3)
    x = torch.randn(1, 8, DIM)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 4, DIM)  # same prefix of 4, different future
    valid = torch.ones(1, 8, dtype=torch.bool)
    with torch.no_grad():
        hx, hy = bb(x, valid), bb(y, valid)
    assert torch.allclose(hx[:, :4], hy[:, :4], atol=1e-6)
    assert not torch.allclose(hx[:, 4:], hy[:, 4:], atol=1e-3)


def test_bert4rec_is_bidirectional():
    bb = make_backbone("bert4rec")
    torch.manual_seed(4)
    x = torch.randn(1, 8, DIM)
    y = x.clone()
    y[:, 6:] = torch.randn(1, 2, DIM)
    valid = torch.ones(1, 8, dtype=torch.bool)
    with torch.no_grad():
        assert not torch.allclose(bb(x, valid)[:, :6], bb(y, valid)[:, :6], atol=1e-3)


def full_model(name: str) -> tuple[SeqRecModel, object]:
    bb = make_backbone(name)
    objective = default_objective(name)
    model = SeqRecModel(IdTable(N, DIM), [bb], N, DIM, masked=objective.mask_token).eval()
    assert not objective.mask_token or objective.mask_id == model.mask_id
    return model, objective


@pytest.mark.parametrize("name", BACKBONES)
def test_user_representation_does_not_depend_on_padding_length(name):
    model, objective = full_model(name)
    table = model.item_table()
    history = [3, 7, 1, 9, 4]
    reps = []
    for width in (7, 9, MAX_LEN):  # wider than the history (+ [MASK]): nothing is truncated
        seqs = torch.zeros(1, width, dtype=torch.long)
        seqs[0, :5] = torch.tensor(history)
        reps.append(user_representations(model, objective, seqs, torch.tensor([5]), table))
    assert torch.allclose(reps[0], reps[1], atol=1e-5) and torch.allclose(reps[0], reps[2], atol=1e-5)


@pytest.mark.parametrize("name", CAUSAL)
def test_user_representation_is_the_last_real_position(name):
    model, objective = full_model(name)
    table = model.item_table()
    seqs = torch.tensor([[3, 7, 1, 0, 0], [5, 5, 2, 8, 9]])
    user = user_representations(model, objective, seqs, torch.tensor([3, 5]), table)
    hidden = model.hidden(seqs, table)
    assert torch.allclose(user[0], hidden[0, 2]) and torch.allclose(user[1], hidden[1, 4])

