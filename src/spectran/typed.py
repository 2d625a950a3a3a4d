"""Typed construction of settings dataclasses from plain mappings: unknown keys and wrong types
are :class:`ConfigError` naming the dotted setting; numbers are read as users write them."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from spectran.errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], raw: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``raw``; unknown keys and wrong types raise ConfigError."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(raw).__name__}", setting=where)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown setting '{unknown[0]}' (known: {', '.join(names)})",
                          setting=f"{where}.{unknown[0]}")
    values = {}
    for key, value in raw.items():
        try:
            values[key] = _coerce(value, hints[key], f"{where}.{key}")
        except ConfigError as exc:
            exc.setting = exc.setting or f"{where}.{key}"
            raise
    return cls(**values)  # type: ignore[call-arg]


_NUMBER = re.compile(r"[+-]?(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?")


def read_number(value: Any) -> int | float | None:
    """The number ``value`` is: a YAML int or float, or numeric text as users write it ('5e-4',
    '1e3', '1_000', which YAML 1.1 reads as strings); None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip().replace("_", "")
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        wanted = [e[len(f"{where}: expected "):].rsplit(", got ", 1)[0] for e in errors
                  if e.startswith(f"{where}: expected ") and ", got " in e]
        if errors and len(wanted) == len(errors):  # one line naming every accepted form
            raise ConfigError(f"{where}: expected {' or '.join(wanted)}, got {value!r}")
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner,) = get_args(tp)[:1] or (Any,)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        number = read_number(value)
        if number is None or (isinstance(number, float) and not (math.isfinite(number) and number.is_integer())):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        number = read_number(value)
        if number is None or not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(number)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {tp!r}")
