"""The query forward of serving (``SeqRecModel.hidden_at``, ``Backbone.at``, SASRec's last block
for the asked positions only) against the full forward that evaluation uses, for every backbone."""

from __future__ import annotations

import pytest
import torch

from spectran.backbones.registry import backbone_names, backbone_spec
from spectran.backbones.sasrec import SASRec, SASRecSettings
from spectran.encoders.id_table import IdTable
from spectran.eval.evaluate import user_representations
from spectran.model import SeqRecModel

DIM, MAX_LEN, N = 16, 12, 30


def full_model(name: str, layers: int | None = None) -> tuple[SeqRecModel, object]:
    torch.manual_seed(0)
    spec = backbone_spec(name)
    settings = spec.settings()
    if layers is not None:
        settings.layers = layers
    objective = spec.objective(settings, N)
    model = SeqRecModel(IdTable(N, DIM), [spec.build(settings, DIM, MAX_LEN)], N, DIM, masked=objective.mask_token)
    with torch.no_grad():  # a trained-looking table (the init's 0.02 scale makes every state alike)
        model.item_encoder.weight.normal_()
    return model.eval(), objective


def histories(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seqs = torch.zeros(len(lengths), MAX_LEN, dtype=torch.long)
    for b, n in enumerate(lengths):
        seqs[b, :n] = torch.randint(1, N + 1, (n,), generator=g)
    return seqs, torch.tensor(lengths)


@pytest.mark.parametrize("name", backbone_names())
def test_the_query_forward_equals_the_full_forward(name):
    model, objective = full_model(name)
    table = model.item_table()
    seqs, lengths = histories([5, 1, MAX_LEN, 3, 3, 9])
    with torch.no_grad():
        want = user_representations(model, objective, seqs, lengths, table)
        inputs, positions = objective.query(seqs, lengths)
        got = model.hidden_at(inputs, table, positions)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (name, (got - want).abs().max())


@pytest.mark.parametrize("name", backbone_names())
def test_the_query_forward_reads_added_items_and_the_mask_row(name):
    """A table longer than the trained items (items added for serving): ids past N are table rows,
    and a masked objective's [MASK] moves past them (``Objective.for_table``)."""
    model, objective = full_model(name)
    extra = torch.randn(4, DIM, generator=torch.Generator().manual_seed(5))
    table = torch.cat([model.item_table().detach(), extra])
    objective = objective.for_table(len(table))
    seqs, lengths = histories([4, 7, 2])
    seqs[0, 1], seqs[1, 6] = N + 1, N + 4  # added items in the histories
    with torch.no_grad():
        want = user_representations(model, objective, seqs, lengths, table)
        inputs, positions = objective.query(seqs, lengths)
        got = model.hidden_at(inputs, table, positions)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (name, (got - want).abs().max())


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_sasrec_at_any_position_equals_its_full_forward(layers):
    torch.manual_seed(0)
    bb = SASRec(SASRecSettings(layers=layers), DIM, MAX_LEN).eval()
    x = torch.randn(4, MAX_LEN, DIM)
    valid = torch.arange(MAX_LEN)[None] < torch.tensor([[MAX_LEN], [6], [1], [9]])
    positions = torch.tensor([MAX_LEN - 1, 2, 0, 8])  # the last position, or an earlier one
    with torch.no_grad():
        want = bb(x, valid)[torch.arange(4), positions]
        got = bb.at(x, valid, positions)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
    with torch.no_grad():  # the result does not depend on what fills the padding
        x[~valid] = 100.0
        assert torch.allclose(bb.at(x, valid, positions), got, atol=1e-5)
