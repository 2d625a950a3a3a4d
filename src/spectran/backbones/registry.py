"""Name -> backbone, typed as the model code sees it: the name table is
:data:`spectran.registry.BACKBONES` (one module defining ``SPEC`` and one line there), or
:func:`register_backbone` for a backbone defined elsewhere (docs/extending.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from spectran.registry import BACKBONES

if TYPE_CHECKING:  # the CLI lists the names without importing torch
    from spectran.backbones.base import BackboneSpec

__all__ = ["BACKBONES", "backbone_names", "backbone_spec", "register_backbone"]


def backbone_names() -> list[str]:
    return BACKBONES.names()


def backbone_spec(name: str) -> BackboneSpec:
    return cast("BackboneSpec", BACKBONES.spec(name))


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Make ``spec`` (defined anywhere, e.g. outside this package) a backbone named ``spec.name``."""
    BACKBONES.register(spec)
    return spec
