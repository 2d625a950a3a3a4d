"""BERT4Rec's masked objective: what gets masked, the inference query, and [MASK] never ranked."""

from __future__ import annotations

import numpy as np
import torch

from conftest import tiny_settings
from spectran.assemble import assemble_run
from spectran.eval.evaluate import rank_targets, user_representations
from spectran.objectives import MaskedObjective

MASK = 31  # N + 1 for N = 30


def random_batch(seed: int, B: int = 64, L: int = 10, N: int = 30):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, L + 1, (B,), generator=g)
    seqs = torch.randint(1, N + 1, (B, L), generator=g)
    seqs[torch.arange(L)[None, :] >= lengths[:, None]] = 0  # right padding
    return seqs, lengths


def test_masking_never_touches_padding_and_targets_are_the_masked_items():
    obj = MaskedObjective(MASK, mask_ratio=0.5, last_ratio=0.3)
    for seed in range(20):
        seqs, lengths = random_batch(seed)
        b = obj.train_batch(torch.arange(len(seqs)), seqs, lengths, torch.Generator().manual_seed(seed))
        width = b.inputs.shape[1]
        seqs = seqs[:, :width]
        pad = seqs == 0
        assert (b.inputs[pad] == 0).all() and (b.targets[pad] == 0).all()
        masked = b.inputs == MASK
        assert (b.targets[masked] == seqs[masked]).all()  # each [MASK] predicts the item it hides
        assert (b.targets[~masked] == 0).all()  # nothing else is a target
        assert (b.inputs[~masked] == seqs[~masked]).all()  # unmasked items are untouched
        assert masked.any(dim=1).all()  # every sequence trains on something


def test_mask_ratio_is_respected_over_real_items():
    obj = MaskedObjective(MASK, mask_ratio=0.3, last_ratio=0.0)
    seqs, lengths = random_batch(0, B=4000, L=20)
    b = obj.train_batch(torch.arange(len(seqs)), seqs, lengths, torch.Generator().manual_seed(0))
    real = seqs[:, :b.inputs.shape[1]] != 0
    rate = float((b.inputs == MASK)[real].float().mean())
    assert abs(rate - 0.3) < 0.02  # (+ a few last-item fallbacks in sequences that drew nothing)


def test_last_ratio_one_masks_exactly_the_last_item():
    obj = MaskedObjective(MASK, mask_ratio=0.5, last_ratio=1.0)
    seqs, lengths = random_batch(1)
    b = obj.train_batch(torch.arange(len(seqs)), seqs, lengths, torch.Generator().manual_seed(1))
    expected = torch.zeros_like(b.inputs, dtype=torch.bool)
    expected[torch.arange(len(seqs)), lengths - 1] = True
    assert torch.equal(b.inputs == MASK, expected)


def test_masking_is_reproducible_from_the_generator():
    obj = MaskedObjective(MASK)
    seqs, lengths = random_batch(2)
    a = obj.train_batch(torch.arange(len(seqs)), seqs, lengths, torch.Generator().manual_seed(7))
    b = obj.train_batch(torch.arange(len(seqs)), seqs, lengths, torch.Generator().manual_seed(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


def test_query_appends_mask_after_the_history_and_keeps_the_latest_items():
    obj = MaskedObjective(MASK)
    seqs = torch.tensor([[4, 5, 6, 0, 0],  # short: [MASK] goes right after it
                         [1, 2, 3, 4, 5]])  # full: the oldest item makes room for [MASK]
    inputs, positions = obj.query(seqs, torch.tensor([3, 5]))
    assert positions.tolist() == [3, 4]
    assert inputs.tolist() == [[4, 5, 6, MASK, 0], [2, 3, 4, 5, MASK]]
    assert seqs.tolist() == [[4, 5, 6, 0, 0], [1, 2, 3, 4, 5]]  # the caller's array is not modified


def test_mask_id_is_never_a_ranking_candidate(tmp_path):
    """Scores cover the N real items only; even a [MASK] embedding that would beat every item
    cannot enter a top-K, and ranks match a brute-force ranking over the N items."""
    exp = assemble_run(tiny_settings(model={"backbone": "bert4rec"}))
    model, N = exp.model, exp.data.num_items
    assert model.mask_id == N + 1
    arrays, targets = exp.eval_arrays("test"), exp.data.targets("test")
    table = model.item_table().detach()
    with torch.no_grad():
        model.eval()
        seqs, lengths = torch.from_numpy(arrays.seqs), torch.from_numpy(arrays.lengths)
        user = user_representations(model, exp.objective, seqs, lengths, table)
        model.mask_embedding.copy_(user.mean(0, keepdim=True) * 1e3)  # would top every list
        user = user_representations(model, exp.objective, seqs, lengths, table)
        scores = model.scores(user, table)
    assert scores.shape == (len(arrays.seqs), N)  # columns are items 1..N: no padding, no [MASK]
    top = scores.topk(10, dim=1).indices + 1  # item ids
    assert int(top.min()) >= 1 and int(top.max()) <= N
    ranks = rank_targets(model, exp.objective, arrays, targets, 128, exp.device, table=table)
    target_scores = scores.gather(1, torch.from_numpy(targets - 1)[:, None])
    brute = 1 + (scores > target_scores).sum(1) + (scores == target_scores).sum(1) - 1
    assert np.array_equal(ranks, brute.numpy()) and ranks.max() <= N
