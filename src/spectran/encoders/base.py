"""The item-encoder protocol: the seam between a transformation and any backbone.

An item encoder is an ``nn.Module`` whose ``forward()`` returns the item-embedding matrix
``(N, num_views * d)`` for the N real items (row i is item i + 1). The model prepends the padding
row and appends backbone-specific special tokens itself, so an encoder never sees them and they
can never be ranking candidates. The same matrix is used at the input of the backbone and in the
tied dot-product scoring head.

Optional hooks, looked up with ``getattr`` by the training loop and the serving layer:

- ``auxiliary_loss(batch, hidden) -> Tensor | None``: added to the main loss (RLMRec alignment,
  LLM-ESR distillation, ...). ``batch`` is a :class:`spectran.train.objectives.TrainBatch`.
- ``embed_new_items(semantic) -> Tensor``: embeddings ``(M, num_views * d)`` for items that have
  text (semantic rows ``(M, D)``) but no interactions (cold start).

Everything an encoder needs from the data (E, its SVD, item counts) is computed by the
preparation layer and handed over in an :class:`ItemContext`; constructors do no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class ItemContext:
    num_items: int  # N
    dim: int  # d, the SR embedding dimension
    semantic: torch.Tensor | None  # (N, D) frozen semantic embeddings E, float32
    basis: Any  # spectran.spectral.basis.SpectralBasis or None
    train_counts: torch.Tensor  # (N,) training interactions per item
    seed: int = 0
    train_pairs: torch.Tensor | None = None  # (P, 2) consecutive training item pairs, 0-based


@runtime_checkable
class ItemEncoder(Protocol):
    num_views: int

    def __call__(self) -> torch.Tensor: ...


@dataclass(frozen=True)
class MethodSpec:
    """Registry entry of an item encoder."""

    name: str
    settings: type  # typed settings dataclass with the paper's defaults
    build: Callable[[Any, ItemContext], nn.Module]
    family: str = "none"  # none | adapter | svd | spectral
    needs_text: bool = False  # needs E
    needs_basis: bool = False  # needs the SVD of E


def init_table(num: int, dim: int, std: float = 0.02) -> nn.Parameter:
    """A learnable (num, dim) table with the backbones' usual N(0, 0.02) initialisation."""
    return nn.Parameter(torch.randn(num, dim) * std)
