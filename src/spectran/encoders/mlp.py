"""``mlp``: MoRec-style adapter — an MLP on the frozen semantic embeddings, fused with an ID table.

Follows MoRec (Yuan et al., "Where to Go Next for Recommender Systems? ID- vs. Modality-based
Recommender Models Revisited", SIGIR 2023) in its two-stage (frozen text encoder) form: the
item's text embedding E_i goes through a stack of Linear + GELU layers to the SR dimension d,
and the result is the item embedding at the input and in the tied output scoring.

Deviations: MoRec proper uses no ID embedding and fine-tunes the text encoder end to end; here E
is frozen and the adapter output is summed with a learnable ID table by default
(``fusion: sum``; ``fusion: none`` is the pure-modality MoRec). MoRec tunes the depth of the
dense layers; its exact frozen-encoder MLP width is not stated in the paper that we could check,
so the defaults (2 layers, hidden 256) are this project's choice.

Paper, deviations and measurements: docs/methods/mlp.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from spectran.encoders.adapter_layers import Activation, SemanticAdapter, mlp_stack, require_semantic
from spectran.encoders.base import ItemContext, MethodSpec
from spectran.encoders.fusion import Fusion, FusionKind


@dataclass
class MlpSettings:
    layers: int = 2  # Linear layers D -> hidden -> ... -> d
    hidden: int = 256  # width of the hidden layers
    activation: Activation = "gelu"  # between the layers (MoRec: GELU)
    dropout: float = 0.1  # after each hidden activation
    input_dropout: float = 0.0  # dropout on E itself, training only
    fusion: FusionKind = "sum"  # with an ID table: sum | concat | gate | none (pure MoRec)
    id_std: float = 0.02  # N(0, std) initialisation of the ID table


def build(s: MlpSettings, ctx: ItemContext) -> SemanticAdapter:
    E = require_semantic(ctx.semantic, "mlp")
    adapter = mlp_stack(E.shape[1], s.hidden, ctx.dim, s.layers, s.activation, s.dropout)
    return SemanticAdapter(E, adapter, Fusion(s.fusion, ctx.num_items, ctx.dim, s.id_std), s.input_dropout)


SPEC = MethodSpec("mlp", MlpSettings, build, needs_text=True)
