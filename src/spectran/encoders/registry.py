"""Name -> item encoder. Adding a transformation is one module defining ``SPEC`` and one line here.

Modules are imported lazily, so a method's optional dependencies only matter when it is used.
"""

from __future__ import annotations

import importlib

from spectran.encoders.base import MethodSpec
from spectran.errors import ConfigError

_MODULES: dict[str, str] = {
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
}


def method_names(available_only: bool = True) -> list[str]:
    names = list(_MODULES)
    if available_only:
        names = [n for n in names if importlib.util.find_spec(_MODULES[n]) is not None]
    return names


def method_spec(name: str) -> MethodSpec:
    if name not in _MODULES:
        raise ConfigError(f"unknown method '{name}' (known: {', '.join(_MODULES)})")
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == _MODULES[name]:
            raise ConfigError(f"method '{name}' is not implemented in this version "
                              f"(available: {', '.join(method_names())})") from None
        raise
    spec: MethodSpec = module.SPEC
    return spec
