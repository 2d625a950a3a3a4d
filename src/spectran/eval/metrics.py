"""Full-ranking metrics with pessimistic ties.

rank = 1 + #{items scored strictly higher than the target} + #{other items scored equal to it}.
A model that gives every item the same score therefore ranks every target last.
"""

from __future__ import annotations

import numpy as np
import torch

from spectran.errors import SpectranError


def pessimistic_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores (B, N) over candidates, targets (B,) column index of the target -> ranks (B,) >= 1.

    Masked-out candidates must carry ``-inf``; the target's own score must be finite.
    """
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    if not torch.isfinite(target_scores).all():
        raise SpectranError("non-finite score for an evaluation target (the model produced NaN/inf)")
    # 1 + #higher + #(other items equal) = #(items >= the target's score), the target included:
    # one comparison pass over the (B, N) scores instead of two
    return (scores >= target_scores).sum(dim=1)


def metrics_from_ranks(ranks: np.ndarray | torch.Tensor, ks: list[int]) -> dict[str, float]:
    """Recall@K (= HR@K), NDCG@K and MRR@K averaged over users, plus the mean rank."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    if r.numel() == 0:
        raise SpectranError("no users to evaluate")
    out: dict[str, float] = {}
    for k in ks:
        hit = r <= k
        out[f"recall@{k}"] = float(hit.double().mean())
        out[f"ndcg@{k}"] = float(ndcg(r, k).mean())
        out[f"mrr@{k}"] = float(torch.where(hit, 1.0 / r, torch.zeros_like(r)).mean())
    out["mean_rank"] = float(r.mean())
    return out


def ndcg(ranks: np.ndarray | torch.Tensor, k: int) -> torch.Tensor:
    """(U,) float64 NDCG@k of each user's single target at pessimistic rank ``ranks`` (U,):
    1 / log2(rank + 1) within the top k, else 0."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    return torch.where(r <= k, 1.0 / torch.log2(r + 1.0), torch.zeros_like(r))
