"""A name -> component registry whose modules are imported only when a name is used.

Each registered module defines a module-level ``SPEC``; optional dependencies of a component
therefore matter only when it is chosen.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from spectran.errors import ConfigError


class LazyRegistry:
    def __init__(self, kind: str, modules: dict[str, str]):
        self.kind, self.modules = kind, modules

    def names(self, available_only: bool = True) -> list[str]:
        names = list(self.modules)
        if available_only:
            names = [n for n in names if importlib.util.find_spec(self.modules[n]) is not None]
        return names

    def spec(self, name: str) -> Any:
        if name not in self.modules:
            raise ConfigError(f"unknown {self.kind} '{name}' (known: {', '.join(self.modules)})")
        try:
            module = importlib.import_module(self.modules[name])
        except ModuleNotFoundError as exc:
            if exc.name == self.modules[name]:
                raise ConfigError(f"{self.kind} '{name}' is not implemented in this version "
                                  f"(available: {', '.join(self.names())})") from None
            raise
        return module.SPEC
