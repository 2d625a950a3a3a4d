"""Name -> backbone. Adding a backbone is one module defining ``SPEC`` and one line here."""

from __future__ import annotations

import importlib

from spectran.backbones.base import BackboneSpec
from spectran.errors import ConfigError

_MODULES: dict[str, str] = {
    "sasrec": "spectran.backbones.sasrec",
    "bert4rec": "spectran.backbones.bert4rec",
    "hstu": "spectran.backbones.hstu",
    "gru4rec": "spectran.backbones.gru4rec",
}


def backbone_names(available_only: bool = True) -> list[str]:
    names = list(_MODULES)
    if available_only:
        names = [n for n in names if importlib.util.find_spec(_MODULES[n]) is not None]
    return names


def backbone_spec(name: str) -> BackboneSpec:
    if name not in _MODULES:
        raise ConfigError(f"unknown backbone '{name}' (known: {', '.join(_MODULES)})")
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == _MODULES[name]:
            raise ConfigError(f"backbone '{name}' is not implemented in this version "
                              f"(available: {', '.join(backbone_names())})") from None
        raise
    spec: BackboneSpec = module.SPEC
    return spec
