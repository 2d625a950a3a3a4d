"""Full-ranking metrics against a brute-force reference and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectran.eval.metrics import metrics_from_ranks, ndcg, pessimistic_ranks


def brute_force_rank(scores: np.ndarray, target: int) -> int:
    """1 + items strictly above + other items tied with the target, by a Python loop."""
    rank = 1
    for j, s in enumerate(scores):
        if j != target and s >= scores[target]:
            rank += 1
    return rank


def test_ranks_match_brute_force_on_random_scores():
    gen = np.random.default_rng(0)
    scores = gen.integers(0, 6, size=(200, 30)).astype(np.float32)  # many ties on purpose
    targets = gen.integers(0, 30, size=200)
    got = pessimistic_ranks(torch.from_numpy(scores), torch.from_numpy(targets)).numpy()
    want = [brute_force_rank(scores[i], targets[i]) for i in range(200)]
    assert got.tolist() == want


def test_metrics_match_reference_formulas():
    gen = np.random.default_rng(1)
    ranks = gen.integers(1, 40, size=500)
    m = metrics_from_ranks(ranks, [5, 10, 20])
    for k in (5, 10, 20):
        assert m[f"recall@{k}"] == pytest.approx(np.mean(ranks <= k))
        reference = [1 / math.log2(r + 1) if r <= k else 0.0 for r in ranks]
        assert m[f"ndcg@{k}"] == pytest.approx(np.mean(reference))
        assert ndcg(ranks, k).tolist() == pytest.approx(reference)
        assert m[f"mrr@{k}"] == pytest.approx(np.mean([1 / r if r <= k else 0 for r in ranks]))


def _rank_of(scores, target):
    return int(pessimistic_ranks(torch.tensor([scores], dtype=torch.float32), torch.tensor([target]))[0])


def test_rank_one_rank_k_and_k_plus_one():
    k = 3
    assert _rank_of([9.0, 1.0, 2.0, 3.0], 0) == 1
    assert _rank_of([1.0, 9.0, 8.0, 0.5], 0) == k  # two items above
    assert _rank_of([1.0, 9.0, 8.0, 7.0], 0) == k + 1
    m_k = metrics_from_ranks(np.array([k]), [k])
    m_k1 = metrics_from_ranks(np.array([k + 1]), [k])
    assert m_k[f"recall@{k}"] == 1.0 and m_k[f"ndcg@{k}"] == pytest.approx(1 / math.log2(k + 1))
    assert m_k1[f"recall@{k}"] == 0.0 and m_k1[f"ndcg@{k}"] == 0.0 and m_k1[f"mrr@{k}"] == 0.0


def test_ties_straddling_k_count_against_the_target():
    # one item above, target tied with two others: optimistic rank 2, pessimistic rank 4
    scores = [5.0, 9.0, 5.0, 5.0, 1.0]
    assert _rank_of(scores, 0) == 4
    m = metrics_from_ranks(np.array([_rank_of(scores, 0)]), [3, 5])
    assert m["recall@3"] == 0.0 and m["recall@5"] == 1.0


def test_constant_score_model_gets_zero():
    n = 50
    scores = torch.zeros(10, n)
    ranks = pessimistic_ranks(scores, torch.arange(10))
    assert (ranks == n).all()
    m = metrics_from_ranks(ranks, [5, 10, 20])
    assert all(m[f"{name}@{k}"] == 0.0 for name in ("recall", "ndcg", "mrr") for k in (5, 10, 20))


def test_masked_candidates_and_nonfinite_target():
    scores = torch.tensor([[1.0, float("-inf"), 0.5]])
    assert int(pessimistic_ranks(scores, torch.tensor([0]))[0]) == 1
    with pytest.raises(Exception, match="non-finite"):
        pessimistic_ranks(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
