"""Sampled softmax with logQ correction, for catalogs too large for a full softmax.

Follows the sampled softmax of Jean et al. (ACL 2015) with the logQ correction of Bengio &
Senécal (2008) as used for in-batch negatives by Yi et al. (RecSys 2019, "Sampling-bias-corrected
neural modeling"): each row's candidates are its target and K shared negatives; every logit is
reduced by log E[count of that item among the K draws], and a negative that happens to be the
row's own target is removed (accidental hit), as TensorFlow's ``sampled_softmax_loss`` does.

- ``uniform``: K ids drawn uniformly from 1..N, so E = K / N (a constant shift).
- ``in_batch``: K draws among the batch's own targets (positions drawn uniformly), so items are
  drawn in proportion to their in-batch frequency: E = K * count_in_batch / T. Popular items are
  no longer over-penalised. Deviation from Yi et al.: the frequency is counted in the current
  batch instead of streamed over training.

Cost per step: T x K logits instead of T x N.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


class SampledSoftmax:
    def __init__(self, num_negatives: int = 1024, negatives: Literal["uniform", "in_batch"] = "uniform"):
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if negatives not in ("uniform", "in_batch"):
            raise ValueError(f"negatives must be uniform or in_batch, got {negatives!r}")
        self.num_negatives, self.negatives = num_negatives, negatives

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """hidden (T, w), targets (T,) ids 1..N, table (N, w) -> mean loss over the T rows."""
        T, N, K = len(targets), table.shape[0], self.num_negatives
        if self.negatives == "uniform":
            neg = torch.randint(1, N + 1, (K,), generator=generator).to(targets.device)  # (K,)
            log_expected_neg = torch.full((K,), K / N, device=targets.device).log()
            log_expected_pos = torch.full((T,), K / N, device=targets.device).log()
        else:
            pick = torch.randint(0, T, (K,), generator=generator).to(targets.device)
            neg = targets[pick]  # (K,) drawn in proportion to in-batch frequency
            _, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
            expected = K * counts.double() / T  # (U,) per distinct target item
            log_expected_pos = expected.log()[inverse].float()  # (T,)
            log_expected_neg = log_expected_pos[pick]  # (K,)
        pos_logit = (hidden * F.embedding(targets - 1, table)).sum(-1) - log_expected_pos.to(hidden.dtype)  # (T,)
        neg_logit = hidden @ F.embedding(neg - 1, table).T - log_expected_neg.to(hidden.dtype)  # (T, K)
        neg_logit = neg_logit.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
        logits = torch.cat([pos_logit[:, None], neg_logit], dim=1).float()  # (T, 1 + K)
        return F.cross_entropy(logits, torch.zeros(T, dtype=torch.long, device=logits.device))
