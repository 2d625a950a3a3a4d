"""Alignment losses between two views of the same items or users, reusable by any method.

An item encoder adds one through its ``auxiliary_loss(batch, hidden)`` hook; the training loop
adds the result to the main loss (the same protocol as the main loss: one scalar per step,
averaged over the batch's anchors).

- :func:`cosine_infonce`: RLMRec's contrastive alignment (Ren et al., WWW 2024, eq. 6/8):
  ``-log exp(cos(a_i, b_i)/t) / sum_j exp(cos(a_i, c_j)/t)`` where the candidates ``c`` are
  every row of ``b`` (in-batch negatives) or a given candidate set (RLMRec's code uses the whole
  catalog). It is minimal, not zero, when the two views coincide: with orthonormal rows its
  value is ``log(1 + (M - 1) exp(-1/t))`` and it goes to 0 as t -> 0.
- :func:`cosine_distance`: ``mean(1 - cos(a_i, b_i))``, zero exactly when every pair points the
  same way (the alignment term without negatives).
- :func:`distillation_mse`: LLM-ESR's self-distillation (``nn.MSELoss`` between a user
  representation and a detached teacher).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_infonce(anchors: torch.Tensor, candidates: torch.Tensor, temperature: float,
                   positive_index: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine InfoNCE averaged over the B anchors (B, k) against candidates (M, k).

    The positive of anchor i is candidate ``positive_index[i]``; without ``positive_index``,
    B == M and it is candidate i (the other rows are in-batch negatives).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    a = F.normalize(anchors.float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    if positive_index is None:
        if len(a) != len(c):
            raise ValueError(f"in-batch InfoNCE needs as many candidates as anchors ({len(c)} != {len(a)})")
        positive_index = torch.arange(len(a), device=a.device)
    logits = a @ c.T / temperature  # (B, M)
    return F.cross_entropy(logits, positive_index.to(a.device))


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos(a_i, b_i)) over rows: 0 when aligned, up to 2 when opposite."""
    return (1.0 - F.cosine_similarity(a.float(), b.float(), dim=-1)).mean()


def distillation_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error to a teacher that gets no gradient."""
    return F.mse_loss(student.float(), teacher.detach().float())
