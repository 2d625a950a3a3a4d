"""Name -> item encoder. Adding a transformation is one module defining ``SPEC`` and one line here."""

from __future__ import annotations

from spectran.encoders.base import MethodSpec
from spectran.registry import LazyRegistry

METHODS = LazyRegistry("method", {
    "id": "spectran.encoders.id_table",
    "mlp": "spectran.encoders.mlp",
    "moe": "spectran.encoders.moe",
    "whiten_mlp": "spectran.encoders.whiten_mlp",
    "rlmrec": "spectran.encoders.rlmrec",
    "llmesr": "spectran.encoders.llmesr",
    "pca_init": "spectran.encoders.pca_init",
    "svd_frozen": "spectran.encoders.svd_frozen",
    "alphafuse": "spectran.encoders.alphafuse",
    "spectran": "spectran.encoders.spectran",
})


def method_names(available_only: bool = True) -> list[str]:
    return METHODS.names(available_only)


def method_spec(name: str) -> MethodSpec:
    return METHODS.spec(name)
