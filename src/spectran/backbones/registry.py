"""Name -> backbone. Adding a backbone is one module defining ``SPEC`` and one line here."""

from __future__ import annotations

from spectran.backbones.base import BackboneSpec
from spectran.registry import LazyRegistry

BACKBONES = LazyRegistry("backbone", {
    "sasrec": "spectran.backbones.sasrec",
    "bert4rec": "spectran.backbones.bert4rec",
    "hstu": "spectran.backbones.hstu",
    "gru4rec": "spectran.backbones.gru4rec",
})


def backbone_names(available_only: bool = True) -> list[str]:
    return BACKBONES.names(available_only)


def backbone_spec(name: str) -> BackboneSpec:
    return BACKBONES.spec(name)
