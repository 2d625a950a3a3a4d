"""SASRec: padding invariance and causality, through the full model (item table + backbone)."""

from __future__ import annotations

import torch

from spectran.backbones.sasrec import SASRec, SASRecSettings
from spectran.encoders.id_table import IdTable
from spectran.eval.evaluate import user_representations
from spectran.model import SeqRecModel
from spectran.objectives import CausalObjective


def make_model(num_items=30, dim=16, max_len=12):
    torch.manual_seed(0)
    model = SeqRecModel(IdTable(num_items, dim), [SASRec(SASRecSettings(dropout=0.0, attn_dropout=0.0), dim,
                                                         max_len)], num_items, dim)
    return model.eval()


def test_prediction_does_not_depend_on_padding_length():
    model = make_model()
    table = model.item_table()
    seq = [3, 7, 1, 9, 4]
    reps = []
    for width in (5, 8, 12):
        seqs = torch.zeros(1, width, dtype=torch.long)
        seqs[0, :5] = torch.tensor(seq)
        reps.append(user_representations(model, CausalObjective(), seqs, torch.tensor([5]), table))
    assert torch.allclose(reps[0], reps[1], atol=1e-5) and torch.allclose(reps[0], reps[2], atol=1e-5)


def test_batch_mates_of_other_lengths_do_not_change_a_prediction():
    model = make_model()
    table = model.item_table()
    alone = torch.tensor([[3, 7, 1, 0, 0, 0]])
    batch = torch.tensor([[3, 7, 1, 0, 0, 0], [5, 5, 2, 8, 9, 11]])
    a = user_representations(model, CausalObjective(), alone, torch.tensor([3]), table)
    b = user_representations(model, CausalObjective(), batch, torch.tensor([3, 6]), table)
    assert torch.allclose(a[0], b[0], atol=1e-5)


def test_output_at_t_ignores_later_items():
    model = make_model()
    table = model.item_table()
    x = torch.tensor([[3, 7, 1, 9, 4, 2]])
    y = torch.tensor([[3, 7, 1, 20, 21, 22]])  # same prefix, different future
    hx, hy = model.hidden(x, table), model.hidden(y, table)
    assert torch.allclose(hx[:, :3], hy[:, :3], atol=1e-6)
    assert not torch.allclose(hx[:, 3:], hy[:, 3:], atol=1e-3)


def test_packed_blocks_equal_the_padded_computation():
    model = make_model()
    sasrec = model.backbones[0]
    x = torch.randn(3, 12, 16)
    valid = torch.arange(12)[None] < torch.tensor([[12], [4], [1]])
    packed = sasrec(x, valid)
    h = sasrec.ln(x + sasrec.position.weight[:12])
    for block in sasrec.blocks:
        h = block(h, None, causal=True)
    assert torch.allclose(packed[valid], h[valid], atol=1e-5)
    assert (packed[~valid] == 0).all()
