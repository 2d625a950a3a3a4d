"""Name -> backbone: one module defining ``SPEC`` and one line here, or :func:`register_backbone`
for a backbone defined elsewhere (docs/extending.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spectran.registry import LazyRegistry

if TYPE_CHECKING:  # the CLI lists the names without importing torch
    from spectran.backbones.base import BackboneSpec

BACKBONES: LazyRegistry[BackboneSpec] = LazyRegistry("backbone", {
    "sasrec": "spectran.backbones.sasrec",
    "bert4rec": "spectran.backbones.bert4rec",
    "hstu": "spectran.backbones.hstu",
    "gru4rec": "spectran.backbones.gru4rec",
})


def backbone_names() -> list[str]:
    return BACKBONES.names()


def backbone_spec(name: str) -> BackboneSpec:
    return BACKBONES.spec(name)


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Make ``spec`` (defined anywhere, e.g. outside this package) a backbone named ``spec.name``."""
    return BACKBONES.register(spec)
