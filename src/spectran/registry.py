"""A name -> component registry whose modules are imported only when a name is used.

Each module listed at construction defines a module-level ``SPEC``; optional dependencies of a
component therefore matter only when it is chosen. :meth:`LazyRegistry.register` adds a spec
made anywhere else (a method or backbone defined outside the package), under its ``name``.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, Protocol, TypeVar

from spectran.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


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
