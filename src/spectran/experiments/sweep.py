"""Sweep files: parse, expand into runs, validate every run before anything starts.

A sweep file has three sections::

    base: {train: {epochs: 200}}          # run-config sections shared by every run
    grid:                                 # cross product of dotted setting -> list of values
      data.dataset: [office, beauty]
      model.backbone: [sasrec]
      train.seed: [0, 1, 2]
    rows:                                 # report rows: label -> overrides (model.method required)
      id: {model.method: id}
      spectran w/o attention: {model.method: spectran, method.attention: none}

A run is ``base ⊕ grid point ⊕ row overrides ⊕ model.label: <row label>``. Without ``rows`` the
grid (or base) must choose ``model.method`` and the method's name is the label. Every run lives in
``DIR/<dataset>/<backbone>/<label-slug>/<other grid keys...>/seed<k>``.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spectran.errors import ConfigError
from spectran.runfolder import RunFolder
from spectran.settings import RunSettings, load_yaml, resolve, set_dotted

_SECTIONS = ("base", "grid", "rows")
_PATH_KEYS = ("data.dataset", "model.backbone", "train.seed", "model.method")  # named by the layout


@dataclass
class SweepSpec:
    base: dict[str, Any]
    grid: dict[str, list[Any]]  # dotted key -> values, in file order
    rows: dict[str, dict[str, Any]]  # label -> dotted overrides, in file order
    source: str = "<sweep>"  # file name used in error messages


@dataclass
class PlannedRun:
    label: str
    point: dict[str, Any]  # the grid point (dotted key -> value)
    settings: RunSettings
    folder: Path


def slug(value: Any) -> str:
    """A readable, path-safe name: 'spectran w/o attention' -> 'spectran-w-o-attention'."""
    text = re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(value).strip()).strip("-.")
    return text or "x"


def get_dotted(mapping: Mapping[str, Any], dotted: str) -> Any:
    node: Any = mapping
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def parse_sweep(raw: Mapping[str, Any], source: str = "<sweep>") -> SweepSpec:
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section '{unknown[0]}' (known: {', '.join(_SECTIONS)})")
    base = raw.get("base") or {}
    grid = raw.get("grid") or {}
    rows = raw.get("rows") or {}
    for name, value in (("base", base), ("grid", grid), ("rows", rows)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: '{name}' must be a mapping, got {type(value).__name__}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid '{key}' must be a non-empty list of values")
    for label, overrides in rows.items():
        if not isinstance(overrides, Mapping) or "model.method" not in overrides:
            raise ConfigError(f"{source}: row '{label}' must be a mapping with model.method")
        if "model.label" in overrides:
            raise ConfigError(f"{source}: row '{label}': the row's name is its label; drop model.label")
    if rows and "model.method" in grid:
        raise ConfigError(f"{source}: model.method is set by the rows; remove it from the grid")
    if not rows and "model.method" not in grid and get_dotted(base, "model.method") is None:
        raise ConfigError(f"{source}: no method chosen (give rows, or model.method in grid or base)")
    return SweepSpec(dict(base), {k: list(v) for k, v in grid.items()},
                     {str(k): dict(v) for k, v in rows.items()}, source)


def load_sweep(path: str | Path) -> SweepSpec:
    return parse_sweep(load_yaml(path), str(path))


def short_names(keys: list[str]) -> dict[str, str]:
    """Short names of dotted keys (folders, row names): the last part, or the full key if that clashes."""
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def run_folder(out: Path, s: RunSettings, label: str, point: Mapping[str, Any]) -> Path:
    extra = [k for k in point if k not in _PATH_KEYS]
    names = short_names(extra)
    parts = [slug(Path(s.data.dataset).name), slug(s.model.backbone), slug(label)]
    parts += [f"{slug(names[k])}-{slug(point[k])}" for k in extra]
    return out.joinpath(*parts, f"seed{s.train.seed}")


def expand(spec: SweepSpec, out: str | Path, threads: int | None = None) -> list[PlannedRun]:
    """Every run of the sweep, validated; a bad setting fails at once naming the row and point.

    ``threads`` fills ``train.threads`` wherever the sweep does not set it.
    """
    out = Path(out)
    rows = spec.rows or {"": {}}
    keys = list(spec.grid)
    runs: list[PlannedRun] = []
    seen: dict[Path, str] = {}
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        for row_label, overrides in rows.items():
            raw = copy.deepcopy(spec.base)
            where = f"{spec.source}: row '{row_label}'" if row_label else spec.source
            for key, value in {**point, **overrides}.items():
                set_dotted(raw, key, value, where)
            label = row_label or str(get_dotted(raw, "model.method") or "id")
            set_dotted(raw, "model.label", label, where)
            set_dotted(raw, "train.progress", False, where)
            if threads is not None and get_dotted(raw, "train.threads") is None:
                set_dotted(raw, "train.threads", int(threads), where)
            try:
                settings = resolve(raw)
            except ConfigError as exc:
                at = ", ".join(f"{k}={v}" for k, v in point.items())
                raise ConfigError(f"{where}{f' at {at}' if at else ''}: {exc}") from None
            folder = run_folder(out, settings, label, point)
            if folder in seen:
                raise ConfigError(f"{where}: runs '{seen[folder]}' and '{label}' map to the same "
                                  f"folder {folder}; give the rows distinct labels")
            seen[folder] = label
            runs.append(PlannedRun(label, point, settings, folder))
    return runs


def _identity(settings: RunSettings) -> str:
    """What a run computes: its settings without the label, with ``model.recipe=none`` where the
    recipe is not in effect (:func:`spectran.recipes.recipe_in_effect`)."""
    from spectran.recipes import recipe_in_effect

    raw = settings.to_dict()
    raw["model"].pop("label", None)
    if not recipe_in_effect(settings):
        raw["model"]["recipe"] = "none"
    return json.dumps(raw, sort_keys=True, default=str)


def repeated_runs(runs: list[PlannedRun]) -> dict[Path, str]:
    """Runs that would compute what an earlier row computes at the same grid point (e.g. a row at
    the shared defaults, ``model.recipe: none``, on a backbone where the method has no recipe):
    run folder -> the label of the row whose run it repeats."""
    first: dict[str, str] = {}
    repeats: dict[Path, str] = {}
    for run in runs:
        key = _identity(run.settings)
        if key in first:
            repeats[run.folder] = first[key]
        else:
            first[key] = run.label
    return repeats


def drop_repeats(runs: list[PlannedRun], repeats: dict[Path, str]) -> tuple[list[PlannedRun], str]:
    """``runs`` without the repeated ones, and a line naming what was left out ("" when nothing)."""
    kept = [r for r in runs if r.folder not in repeats]
    pairs = Counter((r.label, repeats[r.folder]) for r in runs if r.folder in repeats)
    if not pairs:
        return kept, ""
    named = "; ".join(f"'{a}' repeats '{b}' ({n} run{'s' if n > 1 else ''})" for (a, b), n in pairs.items())
    return kept, (f"left out {len(runs) - len(kept)} run(s) that compute what another row computes at the "
                  f"same grid point (the same settings but the label): {named}")


# short names accepted by --filter (sweep and report) and, but for seed, by report's --group-by
SHORT_KEYS = {"backbone": "model.backbone", "dataset": "data.dataset", "method": "model.method",
              "dim": "model.dim", "encoder": "text.encoder", "seed": "train.seed"}


def parse_filter(item: str) -> tuple[str, list[str]]:
    """``key=v1,v2`` -> (dotted key, [v1, v2]) for the --filter options of sweep and report."""
    if "=" not in item:
        raise ConfigError(f"--filter {item!r}: expected key=value[,value...]")
    key, values = item.split("=", 1)
    return SHORT_KEYS.get(key.strip(), key.strip()), [v.strip() for v in values.split(",")]


def value_matches(value: Any, allowed: list[str]) -> bool:
    """Whether a setting's value is one of the --filter strings (booleans as true/false)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text in allowed


def _value(run: PlannedRun, key: str) -> Any:
    if key == "label":
        return run.label
    value = get_dotted(run.settings.to_dict(), key)
    if value is None and not key.count("."):
        raise ConfigError(f"--filter {key}: expected label or a dotted setting like data.dataset")
    return value


def no_match(item: str, values: list[Any]) -> ConfigError:
    """The error for a --filter that keeps none of the runs, naming the values the runs have."""
    known = sorted({str(v).lower() if isinstance(v, bool) else str(v) for v in values})
    shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
    return ConfigError(f"--filter {item}: matches no run (known values: {shown})")


def apply_filters(runs: list[PlannedRun], filters: list[str]) -> list[PlannedRun]:
    """Keep runs matching every ``key=v1,v2`` filter (key: a dotted setting or ``label``); a filter
    that keeps none of the runs left by the ones before it is an error naming their values."""
    for item in filters:
        key, allowed = parse_filter(item)
        values = [_value(r, key) for r in runs]
        kept = [r for r, v in zip(runs, values, strict=True) if value_matches(v, allowed)]
        if runs and not kept:
            raise no_match(item, values)
        runs = kept
    return runs


def run_state(folder: Path) -> str:
    """``done``, ``running``, ``partial (k epochs)``, ``failed`` or ``pending``
    (:meth:`spectran.runfolder.RunFolder.describe`)."""
    return RunFolder(folder).describe()
