"""Building blocks shared by the adapter family (MoRec MLP, UniSRec MoE, WhitenRec, RLMRec, LLM-ESR).

- :func:`mlp_stack`: Linear/activation layers mapping the frozen semantic embeddings E to d.

Fits on E (whitening for WhitenRec, PCA for LLM-ESR) are not done here: they come from the
cached SVD of E that the preparation layer hands over (``ItemContext.basis``).
- :class:`SemanticAdapter`: frozen E -> adapter -> (optional) fusion with an ID table, the shape
  shared by ``mlp``, ``moe`` and ``whiten_mlp``, with cold-start embedding of new items.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from spectran.encoders.base import ItemEncoder
from spectran.encoders.fusion import Fusion
from spectran.errors import ConfigError

Activation = Literal["gelu", "relu", "leaky_relu", "none"]


def activation(name: Activation) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU()
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"method.activation: expected gelu, relu, leaky_relu or none, got {name!r}")


def mlp_stack(in_dim: int, hidden: int, out_dim: int, layers: int, act: Activation = "gelu",
              dropout: float = 0.0, final_act: bool = False) -> nn.Sequential:
    """``layers`` Linear maps in_dim -> hidden -> ... -> out_dim with ``act`` between them.

    ``dropout`` is applied after each hidden activation (not on the input, not on the output);
    ``final_act`` also puts the activation after the last Linear (WhitenRec's Linear + GELU).
    """
    if layers < 1:
        raise ConfigError(f"method.layers: expected >= 1, got {layers}")
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods.append(activation(act))
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
    if final_act:
        mods.append(activation(act))
    return nn.Sequential(*mods)


class SemanticAdapter(ItemEncoder):
    """Item table = Fusion(adapter(E)) with E (N, D) frozen (a non-persistent buffer: it is data,
    rebuilt from the embedding cache with the run, so checkpoints stay small).

    ``input_dropout`` drops entries of E before the adapter during training (UniSRec's 0.2).
    """

    def __init__(self, semantic: torch.Tensor, adapter: nn.Module, fusion: Fusion, input_dropout: float = 0.0):
        super().__init__()
        self.register_buffer("semantic", semantic, persistent=False)  # (N, D), frozen
        self.adapter = adapter
        self.fusion = fusion
        self.input_dropout = nn.Dropout(input_dropout)

    def encode(self, semantic: torch.Tensor) -> torch.Tensor:
        """(M, D) semantic rows -> (M, d) adapted rows (before fusion)."""
        return self.adapter(self.input_dropout(semantic))

    def forward(self) -> torch.Tensor:
        return self.fusion(self.encode(self.semantic))  # (N, d)

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """Cold start: a new item has no ID row; its ID part is taken as zero (the ID prior)."""
        return self.fusion.without_ids(self.encode(semantic.to(self.semantic.device, self.semantic.dtype)))


def require_semantic(ctx_semantic: torch.Tensor | None, method: str) -> torch.Tensor:
    if ctx_semantic is None:
        raise ConfigError(f"method '{method}' needs semantic embeddings E (text.encoder), none were given")
    return ctx_semantic.float()
