"""``rlmrec``: RLMRec — an ID table aligned with the semantic embeddings by an auxiliary loss.

Follows RLMRec (Ren et al., "Representation Learning with Large Language Models for
Recommendation", WWW 2024). The recommender's item embeddings are a learnable ID table
(collaborative side); the frozen semantic embeddings E enter only through a mutual-information
alignment term added to the recommendation loss with weight beta:

- ``contrastive`` (RLMRec-Con): an MLP sigma maps E -> d (D -> (D+d)/2 -> d, LeakyReLU, as the
  authors' code) and ``InfoNCE(cos(id_i, sigma(E_i)) / t)`` pulls each item's ID embedding
  towards its own mapped semantic embedding against every other item's (``negatives: all``, as
  the authors' ``cal_infonce_loss``) or the other items of the batch (``negatives: batch``).
- ``generative`` (RLMRec-Gen): an MLP maps the ID embedding up to D (d -> (D+d)/2 -> D) and the
  same cosine InfoNCE asks it to reconstruct the item's own semantic embedding.

Anchors are the distinct items of the step's batch (inputs and targets). Deviations: RLMRec is
built for graph CF with LLM-written user *and* item profiles; here only items are aligned (users
are sequences, with no profile). RLMRec-Gen masks a fraction of the graph's input embeddings
and reconstructs the masked nodes from their propagated (neighbour-informed) representations;
an SR item table has no propagation, so a masked row would carry nothing to reconstruct from,
and the reconstruction is done from every batch item's ID embedding instead. The defaults
beta = 0.1, t = 0.2 are in the range the paper searches; the value tuned per dataset in its
released configs was not checked.

Paper, deviations and measurements: docs/methods/rlmrec.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from spectran.encoders.adapter_layers import mlp_stack, require_semantic
from spectran.encoders.alignment import cosine_infonce
from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec, init_table
from spectran.errors import ConfigError
from spectran.objectives import TrainBatch


@dataclass
class RlmrecSettings:
    variant: Literal["contrastive", "generative"] = "contrastive"  # RLMRec-Con or RLMRec-Gen
    beta: float = 0.1  # weight of the alignment loss
    temperature: float = 0.2  # of the cosine InfoNCE
    negatives: Literal["all", "batch"] = "all"  # candidates: every item, or the batch's items
    id_std: float = 0.02  # N(0, std) initialisation of the ID table


class RLMRec(ItemEncoder):
    def __init__(self, semantic: torch.Tensor, dim: int, s: RlmrecSettings):
        super().__init__()
        N, D = semantic.shape
        self.register_buffer("semantic", semantic, persistent=False)  # (N, D), frozen
        self.weight = init_table(N, dim, s.id_std)  # (N, d): the item embeddings
        hidden = (D + dim) // 2
        if s.variant == "contrastive":
            self.mlp = mlp_stack(D, hidden, dim, 2, "leaky_relu")  # E -> d
        else:
            self.mlp = mlp_stack(dim, hidden, D, 2, "leaky_relu")  # id -> D
        self.variant, self.beta, self.temperature, self.negatives = s.variant, s.beta, s.temperature, s.negatives

    def forward(self) -> torch.Tensor:
        return self.weight  # (N, d)

    def batch_items(self, batch: TrainBatch) -> torch.Tensor:
        """Distinct real items of the batch, as 0-based rows (padding and [MASK] dropped)."""
        ids = torch.cat([batch.inputs.flatten(), batch.targets.flatten()]).unique()
        ids = ids[(ids >= 1) & (ids <= self.weight.shape[0])]
        return ids - 1  # (M,)

    def alignment_loss(self, rows: torch.Tensor) -> torch.Tensor:
        """Unweighted alignment loss of the items ``rows`` (0-based)."""
        if self.variant == "contrastive":
            anchors = self.weight[rows]  # (M, d)
            if self.negatives == "all":
                return cosine_infonce(anchors, self.mlp(self.semantic), self.temperature, rows)
            return cosine_infonce(anchors, self.mlp(self.semantic[rows]), self.temperature)
        recon = self.mlp(self.weight[rows])  # (M, D)
        if self.negatives == "all":
            return cosine_infonce(recon, self.semantic, self.temperature, rows)
        return cosine_infonce(recon, self.semantic[rows], self.temperature)

    def auxiliary_loss(self, batch: TrainBatch, hidden: torch.Tensor) -> torch.Tensor | None:
        if self.beta == 0:
            return None
        rows = self.batch_items(batch)
        if len(rows) < 2:
            return None
        return self.beta * self.alignment_loss(rows)

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """Cold start (contrastive variant): the aligned direction sigma(E_new), scaled to the
        mean norm of the trained ID embeddings."""
        if self.variant != "contrastive":
            raise ConfigError("rlmrec: only the contrastive variant maps text to item embeddings "
                              "(method.variant=generative cannot embed new items)")
        mapped = self.mlp(semantic.to(self.weight.device, self.weight.dtype))  # (M, d)
        scale = self.weight.norm(dim=-1).mean()
        return torch.nn.functional.normalize(mapped, dim=-1) * scale


def build(s: RlmrecSettings, ctx: ItemContext) -> RLMRec:
    if s.temperature <= 0 or s.beta < 0:
        raise ConfigError(f"method: rlmrec needs temperature > 0 and beta >= 0, got {s.temperature}, {s.beta}")
    return RLMRec(require_semantic(ctx.semantic, "rlmrec"), ctx.dim, s)


# the best of 16 Optuna trials on office (SASRec, d = 64, MiniLM), 4 significant digits; it beat the
# shared defaults on office (3 seeds) and on beauty (docs/results/what_tuning_changes.md)
RECIPES = {"sasrec": {"train.lr": 0.001142, "train.batch_size": 128, "train.weight_decay": 0.01,
                      "backbone.dropout": 0.448, "method.beta": 0.9062, "method.temperature": 0.5479}}

SPEC = MethodSpec("rlmrec", RlmrecSettings, build, needs_text=True, recipes=RECIPES)
