"""Search space files: the base run settings, the ranges of dotted settings, the study settings.

```yaml
base:                                  # ordinary run settings, as in a config file
  data: {dataset: office}
  model: {method: svd_frozen}
space:                                 # dotted setting -> range
  train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
  train.batch_size: {choices: [64, 128, 256]}
  method.scale: {low: 0.1, high: 1.5}
study: {pruner: median}                # optional: TuneSettings
```

A range is ``{low, high}`` (optional ``log: true`` or ``step``) for a number setting, drawn as
an integer when the setting is an integer, or ``{choices: [...]}`` for any setting. Everything is
checked before a trial runs: the base must resolve, every key must name a real setting, a range
must be non-empty and of the setting's type, and the base with each bound or choice must resolve.
Every error is one line naming the file and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spectran.errors import ConfigError
from spectran.settings import RunSettings, apply_override, load_yaml, resolve, set_dotted
from spectran.typed import from_mapping

_TOP = ("base", "space", "study")
_RANGE_KEYS = {"low", "high", "log", "step", "choices"}


@dataclass
class TuneSettings:
    """The ``study`` section: sampler and pruner of the study."""

    seed: int = 0  # seed of the TPE sampler (worker i of a study adds i; a resumed study adds its trial count)
    startup_trials: int = 5  # trials drawn at random before TPE models the results
    pruner: Literal["median", "halving", "threshold", "none"] = "median"
    prune_startup_trials: int = 3  # median: finished trials before any trial is pruned
    prune_warmup_epochs: int = 5  # median: epochs every trial runs; halving: epochs of the first rung
    reduction_factor: int = 3  # halving: 1 / fraction of trials promoted at each rung
    prune_below: float = 0.0  # threshold: prune at the first epoch whose validation metric is below this
    base_trial: bool = True  # the first trial of a new study is the base itself (its value of every key)


@dataclass(frozen=True)
class Range:
    """One dotted setting's range: ``kind`` float or int (low..high) or choice."""

    key: str
    kind: Literal["float", "int", "choice"]
    low: float | int = 0.0
    high: float | int = 0.0
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this range can draw."""
        if self.kind == "choice":
            return any(type(value) is type(c) and value == c for c in self.choices)
        if not _is_number(value) or (self.kind == "int" and not isinstance(value, int)):
            return False
        if not self.low <= value <= self.high:
            return False
        return self.step is None or abs((value - self.low) / self.step - round((value - self.low) / self.step)) < 1e-9

    def suggest(self, trial: Any) -> Any:
        """Draw this setting's value for an ``optuna.Trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)


@dataclass
class TuneSpace:
    path: Path
    base: dict[str, Any]  # raw run settings (as in a config file)
    ranges: list[Range]
    study: TuneSettings

    @property
    def method(self) -> str:
        return resolve(self.base).model.method

    def raw_for(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The base with the dotted ``values`` set (a raw config mapping)."""
        raw = copy.deepcopy(self.base)
        for key, value in values.items():
            set_dotted(raw, key, value, f"{self.path}: space.{key}")
        return raw

    def settings_for(self, values: Mapping[str, Any]) -> RunSettings:
        try:
            return resolve(self.raw_for(values))
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None

    def run_settings(self, values: Mapping[str, Any], threads: int, seed: int | None = None) -> RunSettings:
        """A trial's (or retest's) run settings: the base with ``values``, no progress bar,
        ``threads`` torch threads unless the base sets them, ``seed`` if given."""
        s = self.settings_for(values)
        s.train.progress = False
        if "threads" not in (self.base.get("train") or {}):
            s.train.threads = threads
        if seed is not None:
            s.train.seed = seed
        return s

    def base_values(self) -> tuple[dict[str, Any], str | None]:
        """The base's value of every ranged key, and why they cannot be a trial (None if they can)."""
        settings = resolve(self.base)
        values: dict[str, Any] = {}
        for r in self.ranges:
            _, value = lookup(settings, r.key)
            if not r.contains(value):
                return values, f"space.{r.key}: the base value {value!r} is outside the range"
            values[r.key] = value
        return values, None

    def fingerprint(self) -> str:
        """Canonical JSON of what defines the study (a resumed study must have the same one).
        ``base_trial`` is left out: it acts only when the study is created."""
        study = {k: v for k, v in dataclasses.asdict(self.study).items() if k != "base_trial"}
        return json.dumps({"base": self.base, "space": [dataclasses.asdict(r) for r in self.ranges],
                           "study": study}, sort_keys=True, default=str)


def load_space(path: str | Path, overrides: Sequence[str] = ()) -> TuneSpace:
    """Read and validate a search space file, with ``section.key=value`` ``overrides`` of its base
    (``spectran tune --set``); :class:`ConfigError` (one line) on any problem."""
    path = Path(path)
    raw = load_yaml(path)
    if overrides:
        if raw.get("base") is None:
            raw["base"] = {}
        base = raw["base"]
        if not isinstance(base, dict):
            raise ConfigError(f"{path}: base: expected a mapping of run settings")
        for assignment in overrides:
            apply_override(base, assignment)
    return parse_space(raw, path)


def parse_space(raw: Mapping[str, Any], path: Path) -> TuneSpace:
    unknown = sorted(set(raw) - set(_TOP))
    if unknown:
        raise ConfigError(f"{path}: unknown section '{unknown[0]}' (known: {', '.join(_TOP)})")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: base: expected a mapping of run settings")
    try:
        settings = resolve(base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: base: {exc}") from None
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: space: expected a mapping of dotted settings to ranges, e.g. "
                          "train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}")
    study = from_mapping(TuneSettings, raw.get("study"), f"{path}: study")
    if study.startup_trials < 0 or study.prune_startup_trials < 0 or study.prune_warmup_epochs < 0 \
            or study.reduction_factor < 2:
        raise ConfigError(f"{path}: study: trial and epoch counts must be >= 0 and reduction_factor >= 2")
    ranges = [_parse_range(str(key), spec, settings, path) for key, spec in space.items()]
    out = TuneSpace(path, copy.deepcopy(base), ranges, study)
    for r in ranges:  # every bound / choice must make a valid run (types, allowed values)
        for value in (r.choices if r.kind == "choice" else (r.low, r.high)):
            value = int(value) if r.kind == "int" else value
            try:
                resolve(out.raw_for({r.key: value}))
            except ConfigError as exc:
                raise ConfigError(f"{path}: space.{r.key}: value {value!r}: {exc}") from None
    return out


def lookup(settings: RunSettings, key: str) -> tuple[Any, Any]:
    """The declared type and the value of dotted setting ``key`` (ConfigError naming the known
    ones if unknown)."""
    node: Any = settings
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"space.{key}: expected a dotted setting like train.lr")
    tp: Any = None
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            raise ConfigError(f"space.{key}: '{'.'.join(parts[:depth])}' is not a section")
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            where = ".".join(parts[:depth]) or "run settings"
            raise ConfigError(f"space.{key}: unknown setting '{part}' in {where} (known: {', '.join(names)})")
        tp = typing.get_type_hints(type(node))[part]
        node = getattr(node, part)
    return tp, node


def _number_kind(tp: Any) -> str | None:
    """'int' / 'float' for a number setting (``float | None`` counts as float), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        tp = options[0] if len(options) == 1 else None
    return {int: "int", float: "float"}.get(tp)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_range(key: str, spec: Any, settings: RunSettings, path: Path) -> Range:
    where = f"{path}: space.{key}"
    try:
        tp, _ = lookup(settings, key)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected {{low: .., high: ..}} or {{choices: [..]}}, got {spec!r}")
    extra = sorted(set(spec) - _RANGE_KEYS)
    if extra:
        raise ConfigError(f"{where}: unknown range key '{extra[0]}' (known: {', '.join(sorted(_RANGE_KEYS))})")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ConfigError(f"{where}: choices cannot be combined with low/high/log/step")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices: expected a non-empty list")
        if any(isinstance(c, (dict, list)) for c in choices):
            raise ConfigError(f"{where}: choices must be plain values (numbers, strings, true/false, null)")
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise ConfigError(f"{where}: choices repeat a value")
        return Range(key, "choice", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: expected both low and high (or choices)")
    kind = _number_kind(tp)
    if kind is None:
        raise ConfigError(f"{where}: low/high need a number setting; use choices for this one")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not _is_number(low) or not _is_number(high):
        raise ConfigError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise ConfigError(f"{where}: an integer setting needs integer low and high, got {low!r} and {high!r}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log: expected true/false, got {log!r}")
    if not low < high:
        raise ConfigError(f"{where}: empty range (low {low!r} must be below high {high!r})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
    if step is not None:
        if not _is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            raise ConfigError(f"{where}: step must be a positive {'integer' if kind == 'int' else 'number'}")
        if log:
            raise ConfigError(f"{where}: step and log cannot be combined")
    return Range(key, kind, low=low if kind == "int" else float(low), high=high if kind == "int" else float(high),
                 log=log, step=None if step is None else (step if kind == "int" else float(step)))
