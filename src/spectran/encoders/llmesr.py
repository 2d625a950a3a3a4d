"""``llmesr``: LLM-ESR — a dual-view item encoder with retrieval-augmented self-distillation.

Follows LLM-ESR (Liu et al., "LLM-ESR: Large Language Models Enhancement for Long-tailed
Sequential Recommendation", NeurIPS 2024, and the authors' code):

- semantic view: the frozen E through a 2-layer *linear* adapter D -> D/2 -> d (no activation);
- collaborative view: an ID table initialised with the top-d principal coordinates of E
  (``PCA(d).fit_transform(E)`` = U_d diag(sigma_d) from the cached SVD of the centred E), then
  trained;
- ``forward()`` returns ``(N, 2d) = [semantic | collaborative]``; the model runs one backbone per
  view and concatenates the two user representations, so an item's score is the sum of the
  per-view dot products;
- self-distillation (on by default, ``user_sim_func=kd``, alpha = 0.1 as the authors' scripts):
  the teacher of a user is the mean of the (detached) representations of the 10 users most
  similar to it, and ``alpha * MSE(user, teacher)`` is added to the loss.

Deviations: (1) the authors share one backbone between the two views and scale inputs by sqrt(d);
here each view has its own backbone (model.py) and the backbone's own input scaling. (2) Their
Amazon runs enable a cross-attention between the views (``use_cross_att``); not implemented.
(3) Similar users are retrieved by the cosine of their mean semantic history embedding (the
authors embed an LLM-written user prompt) and, because the item-encoder hook only sees the step's
batch, among the other users *of the batch* rather than among all users; the teacher is the
batch's own representations of those users (the authors run the model on their sequences in
the same step, also detached). (4) Trained with this project's full-softmax loss, not BCE.

Paper, deviations and measurements: docs/methods/llmesr.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from spectran.encoders.adapter_layers import require_semantic
from spectran.encoders.alignment import cosine_distance, distillation_mse
from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec
from spectran.encoders.spectral_coords import require_basis, truncated_table
from spectran.errors import ConfigError
from spectran.objectives import TrainBatch


@dataclass
class LlmesrSettings:
    adapter_hidden: int = 0  # width of the linear adapter's middle layer; 0 = D // 2 (LLM-ESR)
    pca_scale: float = 1.0  # multiplier on the PCA coordinates that initialise the ID view
    distill: bool = True  # retrieval-augmented self-distillation (LLM-ESR's default)
    alpha: float = 0.1  # weight of the distillation loss (LLM-ESR scripts: 0.1)
    similar_users: int = 10  # k users averaged into the teacher (LLM-ESR: 10)
    distill_loss: Literal["mse", "cosine"] = "mse"  # LLM-ESR "kd" = MSE


class LLMESR(ItemEncoder):
    num_views = 2

    def __init__(self, semantic: torch.Tensor, pca_coords: torch.Tensor, pca_mean: torch.Tensor,
                 pca_V: torch.Tensor, dim: int, s: LlmesrSettings):
        super().__init__()
        D = semantic.shape[1]
        hidden = s.adapter_hidden or max(D // 2, 1)
        self.register_buffer("semantic", semantic, persistent=False)  # (N, D), frozen
        self.register_buffer("pca_mean", pca_mean, persistent=False)  # (D,), for new items
        self.register_buffer("pca_V", pca_V, persistent=False)  # (D, d)
        self.adapter = nn.Sequential(nn.Linear(D, hidden), nn.Linear(hidden, dim))
        self.collaborative = nn.Parameter(pca_coords * s.pca_scale)  # (N, d), PCA-initialised
        self.s = s

    def forward(self) -> torch.Tensor:
        return torch.cat([self.adapter(self.semantic), self.collaborative], dim=-1)  # (N, 2d)

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """Cold start: the adapter for the semantic view, the (untrained) PCA coordinates for the
        collaborative view, exactly how a trained item's ID row started."""
        sem = semantic.to(self.semantic.device, self.semantic.dtype)
        collab = (sem - self.pca_mean) @ self.pca_V * self.s.pca_scale
        return torch.cat([self.adapter(sem), collab], dim=-1)  # (M, 2d)

    # -- self-distillation ---------------------------------------------------------------------
    def user_semantics(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, L) item ids -> (B, D) mean semantic embedding of each user's real input items."""
        N = self.semantic.shape[0]
        real = (inputs >= 1) & (inputs <= N)  # padding and [MASK] excluded
        rows = self.semantic[(inputs - 1).clamp(0, N - 1)] * real.unsqueeze(-1)  # (B, L, D)
        return rows.sum(1) / real.sum(1, keepdim=True).clamp_min(1)

    def similar_users(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, k) batch rows of each user's k most similar other users."""
        u = nn.functional.normalize(self.user_semantics(inputs), dim=-1)
        sims = u @ u.T  # (B, B)
        sims.fill_diagonal_(float("-inf"))
        k = min(self.s.similar_users, len(inputs) - 1)
        return sims.topk(k, dim=-1).indices

    def auxiliary_loss(self, batch: TrainBatch, hidden: torch.Tensor) -> torch.Tensor | None:
        if not self.s.distill or self.s.alpha == 0 or len(batch.inputs) < 2:
            return None
        inputs = batch.inputs
        last = ((inputs != 0).sum(dim=1) - 1).clamp_min(0)  # right padding: last real position
        user = hidden[torch.arange(len(inputs), device=hidden.device), last]  # (B, 2d)
        with torch.no_grad():
            teacher = user.detach()[self.similar_users(inputs)].mean(dim=1)  # (B, 2d)
        loss = distillation_mse(user, teacher) if self.s.distill_loss == "mse" else cosine_distance(user, teacher)
        return self.s.alpha * loss


def build(s: LlmesrSettings, ctx: ItemContext) -> LLMESR:
    if s.similar_users < 1 or s.alpha < 0:
        raise ConfigError(f"method: llmesr needs similar_users >= 1 and alpha >= 0, got {s.similar_users}, {s.alpha}")
    E = require_semantic(ctx.semantic, "llmesr")
    basis = require_basis(ctx, "llmesr")  # SVD of the centred E: E - mean = U diag(sigma) V^T
    coords = truncated_table(basis.U.float(), basis.sigma.float(), ctx.dim)  # (N, d) PCA coordinates
    V = truncated_table(basis.V.float(), torch.ones_like(basis.sigma).float(), ctx.dim)  # (D, d)
    return LLMESR(E, coords, basis.mean.float(), V, ctx.dim, s)


SPEC = MethodSpec("llmesr", LlmesrSettings, build, needs_text=True, needs_basis=True)
