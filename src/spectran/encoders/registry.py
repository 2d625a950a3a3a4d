"""Name -> method (its item encoder), typed as the model code sees it: the name table is
:data:`spectran.registry.METHODS` (one module defining ``SPEC`` and one line there), or
:func:`register_method` for a method defined elsewhere (docs/extending.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from spectran.registry import METHODS

if TYPE_CHECKING:  # the CLI lists the names without importing torch
    from spectran.encoders.base import MethodSpec

__all__ = ["METHODS", "method_names", "method_spec", "register_method"]


def method_names() -> list[str]:
    return METHODS.names()


def method_spec(name: str) -> MethodSpec:
    return cast("MethodSpec", METHODS.spec(name))


def register_method(spec: MethodSpec) -> MethodSpec:
    """Make ``spec`` (defined anywhere, e.g. outside this package) a method named ``spec.name``."""
    METHODS.register(spec)
    return spec
