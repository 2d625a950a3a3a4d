"""``id``: a plain learnable ID table, the unmodified backbone (no semantic information).

Paper, deviations and measurements: docs/methods/id.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec, init_table


@dataclass
class IdSettings:
    init_std: float = 0.02  # N(0, std) initialisation, as SASRec/RecBole


class IdTable(ItemEncoder):
    def __init__(self, num_items: int, dim: int, init_std: float = 0.02):
        super().__init__()
        self.weight = init_table(num_items, dim, init_std)

    def forward(self) -> torch.Tensor:
        return self.weight


def build(settings: IdSettings, ctx: ItemContext) -> IdTable:
    return IdTable(ctx.num_items, ctx.dim, settings.init_std)


SPEC = MethodSpec("id", IdSettings, build)
