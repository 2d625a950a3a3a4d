"""Losses over (user representation, target item) pairs, and the loss protocol.

All losses take ``hidden (T, w)``, ``targets (T,)`` (item ids 1..N) and the item table
``(N, w)``; auxiliary losses of item encoders are added by the training loop.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from spectran.errors import ConfigError
from spectran.train.chunked_ce import chunked_cross_entropy


class Loss(Protocol):
    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                 generator: torch.Generator | None) -> torch.Tensor: ...


class FullSoftmaxCE:
    """Softmax cross-entropy over the full catalog (InfoNCE with every item as a negative).

    ``chunk`` = 0: the plain (T, N) logits matrix; ``chunk`` > 0: the same loss computed
    ``chunk`` targets at a time (:mod:`spectran.train.chunked_ce`). Targets 0 (padding) are ignored.
    The logits and the reduction are fp32 under autocast either way.
    """

    def __init__(self, chunk: int = 0):
        if chunk < 0:
            raise ConfigError(f"train.ce_chunk must be >= 0 (0 = plain logits), got {chunk}")
        self.chunk = chunk

    def __call__(self, hidden, targets, table, generator=None):
        if self.chunk > 0:
            return chunked_cross_entropy(hidden, table, targets - 1, self.chunk)
        logits = hidden @ table.T  # (T, N)
        return F.cross_entropy(logits.float(), targets - 1, ignore_index=-1)


class BinaryCE:
    """Original SASRec loss: BCE on the target and one uniformly drawn negative per position.

    Rows are gathered with F.embedding, whose CPU backward is reproducible at any thread count
    (indexing's backward is not), here and in the sampled softmax."""

    def __call__(self, hidden, targets, table, generator=None):
        neg = torch.randint(1, table.shape[0] + 1, targets.shape, generator=generator).to(targets.device)
        pos_logit = (hidden * F.embedding(targets - 1, table)).sum(-1)
        neg_logit = (hidden * F.embedding(neg - 1, table)).sum(-1)
        return F.softplus(-pos_logit).mean() + F.softplus(neg_logit).mean()


def make_loss(name: str, **kwargs) -> Loss:
    if name == "ce":
        return FullSoftmaxCE(**kwargs)
    if name == "bce":
        return BinaryCE()
    if name == "sampled":
        from spectran.train.sampled import SampledSoftmax

        return SampledSoftmax(**kwargs)
    raise ValueError(f"unknown loss {name!r}")
