"""``moe``: UniSRec's MoE adapter — a mixture of parametric-whitening experts with a softmax gate.

Follows UniSRec (Hou et al., "Towards Universal Sequence Representation Learning for Recommender
Systems", KDD 2022, §3.1): each expert is a parametric whitening layer
``PW_k(x) = (dropout(x) - b_k) W_k`` with a learnable bias b_k (D,) and W_k (D, d); a gate
``g = softmax(x G + noise)`` (G (D, K), zero-initialised; during training the logits get Gaussian
noise of std softplus(x G_noise) + 0.01, UniSRec's noisy gating) mixes the K experts:
``MoE(x) = sum_k g_k PW_k(x)``. Defaults follow UniSRec: K = 8 experts, dropout 0.2 on E,
N(0, 0.02) expert weights. In UniSRec's transductive setting (text + ID, its best fine-tuned
variant) the MoE output is summed with an ID embedding: ``fusion: sum`` (``none`` is the
inductive, text-only setting).

Deviations: no pre-training stage (UniSRec pre-trains the adapter and the backbone on several
domains with sequence-item and sequence-sequence contrastive losses, then fine-tunes); here the
adapter is trained from scratch on the target data only, as SR comparisons usually re-implement
it. The loss is this project's full softmax, not UniSRec's temperature-scaled cosine softmax.

Paper, deviations and measurements: docs/methods/moe.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spectran.encoders.adapter_layers import SemanticAdapter, require_semantic
from spectran.encoders.base import ItemContext, MethodSpec
from spectran.encoders.fusion import Fusion, FusionKind


@dataclass
class MoeSettings:
    experts: int = 8  # K parametric-whitening experts (UniSRec: 8)
    dropout: float = 0.2  # dropout on E inside each expert (UniSRec: adaptor_dropout_prob 0.2)
    noisy_gating: bool = True  # Gaussian noise on the gate logits during training (UniSRec)
    init_std: float = 0.02  # N(0, std) initialisation of the expert weights
    fusion: FusionKind = "sum"  # transductive UniSRec (text + ID); none = inductive (text only)
    id_std: float = 0.02  # N(0, std) initialisation of the ID table


class ParametricWhitening(nn.Module):
    """UniSRec's PW layer: (dropout(x) - b) W, b (D,) learnable, no output bias."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, init_std: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(in_dim))
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        nn.init.normal_(self.lin.weight, mean=0.0, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.drop(x) - self.bias)  # (M, d)


class MoEAdapter(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, experts: int, dropout: float, noisy_gating: bool,
                 init_std: float):
        super().__init__()
        self.experts = nn.ModuleList(ParametricWhitening(in_dim, out_dim, dropout, init_std)
                                     for _ in range(experts))
        self.gate = nn.Parameter(torch.zeros(in_dim, experts))
        self.gate_noise = nn.Parameter(torch.zeros(in_dim, experts), requires_grad=noisy_gating)  # read if noisy
        self.noisy_gating = noisy_gating

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M, K) mixture weights (rows sum to 1)."""
        logits = x @ self.gate  # (M, K)
        if self.noisy_gating and self.training:
            std = F.softplus(x @ self.gate_noise) + 1e-2
            logits = logits + torch.randn_like(logits) * std
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([e(x) for e in self.experts], dim=-2)  # (M, K, d)
        return (self.gates(x).unsqueeze(-1) * outs).sum(dim=-2)  # (M, d)


def build(s: MoeSettings, ctx: ItemContext) -> SemanticAdapter:
    E = require_semantic(ctx.semantic, "moe")
    adapter = MoEAdapter(E.shape[1], ctx.dim, s.experts, s.dropout, s.noisy_gating, s.init_std)
    return SemanticAdapter(E, adapter, Fusion(s.fusion, ctx.num_items, ctx.dim, s.id_std))


SPEC = MethodSpec("moe", MoeSettings, build, needs_text=True)
