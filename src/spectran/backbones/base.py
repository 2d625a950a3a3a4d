"""The backbone seam: a sequence encoder over item-embedding sequences, and its registry entry.

A backbone is a :class:`Backbone`, a pure ``nn.Module``: ``forward(x, valid)`` maps item
embeddings ``x (B, L, d)`` and the mask of real positions ``valid (B, L)`` (True = item, False =
padding; sequences are right-padded) to hidden states ``(B, L, d)``; ``at(x, valid, positions)``
gives the hidden state at one position per row (what a query reads). It never sees item ids or
the item encoder.

Its :class:`BackboneSpec` says how it is built and how it is trained and queried:
``objective(settings, num_items)`` returns the :class:`spectran.objectives.Objective`, by default
:func:`causal` (position t predicts item t + 1; the user representation is the hidden state at
the last real position: SASRec, HSTU, GRU4Rec). BERT4Rec's builds a masked-item objective (a
``[MASK]`` token; at inference a ``[MASK]`` is appended after the last item and its hidden state
is the user representation).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spectran.objectives import CausalObjective, Objective


class Backbone(nn.Module, metaclass=ABCMeta):
    """Base of every backbone."""

    @abstractmethod
    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) item embeddings, valid (B, L) -> hidden states (B, L, d)."""

    def at(self, x: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The hidden state of row b at position ``positions[b]`` only: (B, d), equal (to float
        rounding) to ``forward(x, valid)[arange(B), positions]``. This default computes every
        position; a backbone overrides it where it can compute less (SASRec: the last block for
        the B asked positions only)."""
        return self(x, valid)[torch.arange(len(x), device=x.device), positions]


class BackboneSettings:
    """Base of every backbone's settings dataclass: ``validate(dim)`` checks the settings that
    depend on d (e.g. heads dividing d) before anything is built; generic ranges are checked for
    every field by :func:`spectran.settings.check_component`."""

    def validate(self, dim: int) -> None:
        """No setting that depends on d (override where one does)."""


def causal(settings: Any, num_items: int) -> Objective:
    """Next-item prediction at every position (the default objective)."""
    return CausalObjective()


@dataclass(frozen=True)
class BackboneSpec:
    """Registry entry of a backbone."""

    name: str
    settings: type  # typed settings dataclass with the paper's defaults
    build: Callable[[Any, int, int], Backbone]  # (settings, dim, max_len) -> module
    objective: Callable[[Any, int], Objective] = causal  # (settings, num_items N) -> how it is trained

    def __post_init__(self) -> None:
        if not issubclass(self.settings, BackboneSettings):
            raise TypeError(f"backbone '{self.name}': its settings {self.settings.__name__} must derive from "
                            "spectran.backbones.base.BackboneSettings")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-free N(0, std) for linear/embedding weights, zeros for biases, LayerNorm = 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
