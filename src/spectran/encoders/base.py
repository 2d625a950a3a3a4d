"""The item-encoder seam: the base type every method's item encoder derives from, and its spec.

An :class:`ItemEncoder` is an ``nn.Module`` whose ``forward()`` returns the item-embedding matrix
``(N, num_views * d)`` for the N real items (row i is item i + 1). The model prepends the padding
row and appends backbone-specific special tokens itself, so an encoder never sees them and they
can never be ranking candidates. The same matrix is used at the input of the backbone and in the
tied dot-product scoring head.

The hooks the training loop, the serving layer and the diagnostics call, each with its default
here (override what the method has):

- ``num_views``: V, the number of d-wide views in a row (LLM-ESR: 2); one backbone per view;
- ``auxiliary_loss(batch, hidden)``: a scalar added to the main loss (RLMRec alignment, LLM-ESR
  distillation, ...), or None (the default) for none;
- ``embed_new_items(semantic)``: embeddings ``(M, num_views * d)`` for items that have text
  (semantic rows ``(M, D)``) but no interactions (cold start); the default raises a
  :class:`ConfigError`, for methods that have no path from text to an item row;
- ``spectral_attention()``: a (d, r) attention matrix over spectral components for the
  diagnostics (SpecTran's φ(S)), or None (the default);
- ``attention_summary()``: scalars describing that attention (gate, threshold, ...), or None;
- ``parameters_may_go_unused()``: whether a training step can leave a trainable parameter out of
  the loss (a parameter only an auxiliary loss reads, when that loss skips a batch); under DDP the
  step then looks for such parameters every step (``find_unused_parameters``), which costs an
  extra pass over the graph. False by default: a parameter the forward never reads is created with
  ``requires_grad=False`` instead.

Everything an encoder needs from the data (E, its SVD, item counts) is computed by the
preparation layer and handed over in an :class:`ItemContext`; constructors do no I/O.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spectran.errors import ConfigError
from spectran.objectives import TrainBatch

if TYPE_CHECKING:  # the basis module also holds its cache (I/O); encoders only read the type
    from spectran.spectral.basis import SpectralBasis


@dataclass
class ItemContext:
    num_items: int  # N
    dim: int  # d, the SR embedding dimension
    semantic: torch.Tensor | None  # (N, D) frozen semantic embeddings E, float32
    basis: SpectralBasis | None  # the SVD of E (methods with needs_basis), else None
    train_counts: torch.Tensor  # (N,) training interactions per item
    seed: int = 0
    train_pairs: torch.Tensor | None = None  # (P, 2) consecutive training item pairs, 0-based


class ItemEncoder(nn.Module, metaclass=ABCMeta):
    """Base of every item encoder (see the module docstring for the hooks)."""

    num_views: int = 1

    @abstractmethod
    def forward(self) -> torch.Tensor:
        """(N, num_views * d): row i is item i + 1."""

    def auxiliary_loss(self, batch: TrainBatch, hidden: torch.Tensor) -> torch.Tensor | None:
        """A scalar added to the step's loss (``hidden``: (B, L, num_views * d)), or None."""
        return None

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """(M, D) semantic rows of items never trained on -> (M, num_views * d)."""
        raise ConfigError(f"item encoder {type(self).__name__} has no path from text to an item embedding "
                          "and cannot embed new items; train a text-based method (e.g. spectran) to add items")

    def spectral_attention(self) -> torch.Tensor | None:
        """(d, r) attention over spectral components, or None."""
        return None

    def attention_summary(self) -> dict[str, float] | None:
        """Scalars describing :meth:`spectral_attention`, or None."""
        return None

    def parameters_may_go_unused(self) -> bool:
        """Whether some step's loss may not reach every trainable parameter (see the module docstring)."""
        return False

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser's weight decay leaves alone (e.g. a threshold, where shrinking
        would loosen a constraint rather than tighten it); none by default."""
        return []


def centred(settings: Any) -> bool:
    """The default of :attr:`MethodSpec.center_basis`: the SVD of the centred E."""
    return True


@dataclass(frozen=True)
class MethodSpec:
    """Registry entry of a method (its item encoder)."""

    name: str
    settings: type  # typed settings dataclass with the paper's defaults
    build: Callable[[Any, ItemContext], ItemEncoder]
    needs_text: bool = False  # needs E
    needs_basis: bool = False  # needs the SVD of E
    center_basis: Callable[[Any], bool] = centred  # method settings -> SVD of E - mean (True) or of E
    # backbone name -> {dotted setting: value}: the method's tuned recipe, its defaults on that
    # backbone for every setting a config leaves out (``model.recipe=method``, docs/tuning.md)
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # backbone name -> {dotted setting: value}: what changes in that recipe on a sparse catalog
    # (``settings.for_catalog``; ``model.recipe=dense`` keeps the recipe)
    sparse_recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def init_table(num: int, dim: int, std: float = 0.02) -> nn.Parameter:
    """A learnable (num, dim) table with the backbones' usual N(0, 0.02) initialisation."""
    return nn.Parameter(torch.randn(num, dim) * std)
