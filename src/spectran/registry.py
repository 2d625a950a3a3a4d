"""The name -> component registries (methods, backbones), whose modules are imported only when a
name is used.

Each module listed here defines a module-level ``SPEC``; optional dependencies of a component
therefore matter only when it is chosen. :meth:`LazyRegistry.register` adds a spec made anywhere
else (a method or backbone defined outside the package), under its ``name``.

The tables sit at the bottom of the package, beside the settings, because the settings type the
``method`` and ``backbone`` sections by the chosen component's settings dataclass: the modules are
named here by string and imported on use, so no import arrow runs from the settings up to the
model code (docs/extending.md, "Layers"). The model-side views with the full spec types are
:mod:`spectran.encoders.registry` and :mod:`spectran.backbones.registry`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from spectran.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


class ComponentSpec(Named, Protocol):
    """What the settings read from a method's or backbone's spec (``MethodSpec``, ``BackboneSpec``)."""

    @property
    def settings(self) -> type: ...  # the typed settings dataclass of its section


class MethodEntry(ComponentSpec, Protocol):
    @property
    def recipes(self) -> Mapping[str, Mapping[str, Any]]: ...  # backbone -> {dotted setting: value}


S = TypeVar("S", bound=Named)


class LazyRegistry(Generic[S]):
    def __init__(self, kind: str, modules: dict[str, str]):
        self.kind = kind
        self._entries: dict[str, str | S] = dict(modules)  # name -> module path defining SPEC, or the spec

    def names(self) -> list[str]:
        return list(self._entries)

    def register(self, spec: S) -> S:
        """Add ``spec`` under ``spec.name``; a name already taken is a ConfigError."""
        if spec.name in self._entries:
            raise ConfigError(f"{self.kind} '{spec.name}' is already registered")
        self._entries[spec.name] = spec
        return spec

    def spec(self, name: str) -> S:
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(f"unknown {self.kind} '{name}' (known: {', '.join(self._entries)})")
        if isinstance(entry, str):
            module: Any = importlib.import_module(entry)
            return module.SPEC
        return entry


METHODS: LazyRegistry[MethodEntry] = LazyRegistry("method", {
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

BACKBONES: LazyRegistry[ComponentSpec] = LazyRegistry("backbone", {
    "sasrec": "spectran.backbones.sasrec",
    "bert4rec": "spectran.backbones.bert4rec",
    "hstu": "spectran.backbones.hstu",
    "gru4rec": "spectran.backbones.gru4rec",
})
