"""Name -> method (its item encoder): one module defining ``SPEC`` and one line here, or
:func:`register_method` for a method defined elsewhere (docs/extending.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spectran.registry import LazyRegistry

if TYPE_CHECKING:  # the CLI lists the names without importing torch
    from spectran.encoders.base import MethodSpec

METHODS: LazyRegistry[MethodSpec] = LazyRegistry("method", {
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


def method_names() -> list[str]:
    return METHODS.names()


def method_spec(name: str) -> MethodSpec:
    return METHODS.spec(name)


def register_method(spec: MethodSpec) -> MethodSpec:
    """Make ``spec`` (defined anywhere, e.g. outside this package) a method named ``spec.name``."""
    return METHODS.register(spec)
