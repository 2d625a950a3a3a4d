"""Find finished run folders and group them into report rows (shared by report and spectrum).

A finished run is any folder holding ``metrics.json`` and ``config.yaml``; its record holds the
typed settings read from ``config.yaml``. Its row is its ``model.label`` (or method name). Runs
with the same label whose settings differ in anything other than the seed, the dataset, the
grouping key and the settings marked on their field as not distinguishing runs (threads,
progress, device, folders, batch sizes of evaluation/encoding) are different configurations:
their row name carries the differing settings, e.g. ``spectran [dim=32]``, so seeds of one
configuration are never mixed with another's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.sweep import SHORT_KEYS, no_match, parse_filter, short_names, value_matches
from spectran.runfolder import RunFolder, flatten
from spectran.settings import RunSettings, marked

# settings that never make two runs different configurations: the report's own axes (seeds are
# averaged, datasets are columns, labels are rows) and the settings marked so on their field
_BOOKKEEPING = {"train.seed", "data.dataset", "model.label"} | marked("distinguishes", False)
GROUP_ALIASES = {k: v for k, v in SHORT_KEYS.items() if k != "seed"}


@dataclass
class RunRecord:
    folder: Path
    settings: RunSettings  # config.yaml, typed (settings added since the run at their default)
    metrics: dict[str, Any]  # metrics.json
    variant: tuple[tuple[str, Any], ...] = field(default_factory=tuple)  # settings naming the row

    @cached_property
    def flat(self) -> dict[str, Any]:
        """The settings as ``{dotted name: value}``: what --filter, --group-by and the variant
        names compare."""
        return flatten(self.settings.to_dict())

    @property
    def label(self) -> str:
        return self.settings.model.label or self.settings.model.method

    @property
    def dataset(self) -> str:
        return str(self.metrics.get("protocol", {}).get("dataset") or Path(self.settings.data.dataset).name)

    @property
    def seed(self) -> int:
        return self.settings.train.seed

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.metrics.get("protocol", {}))

    @property
    def row(self) -> str:
        if not self.variant:
            return self.label
        return f"{self.label} [{', '.join(f'{k}={v}' for k, v in self.variant)}]"

    def value(self, metric: str, split: str = "test") -> float:
        block = self.metrics.get(split, {})
        if metric not in block:
            raise SpectranError(f"{RunFolder(self.folder).metrics}: no {split} metric '{metric}' "
                                f"(has: {', '.join(sorted(block))})")
        return float(block[metric])

    def ranks(self, split: str = "test") -> np.ndarray:
        return RunFolder(self.folder).read_ranks(split)

    def ranks_path(self, split: str = "test") -> Path:
        return RunFolder(self.folder).ranks(split)

    @cached_property
    def environment(self) -> dict[str, Any]:
        """``env.json`` (empty where the folder has none or it is unreadable JSON)."""
        path = RunFolder(self.folder).env
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            return {}


def _load(folder: Path) -> RunRecord:
    run = RunFolder(folder)
    try:
        # settings added after the run was made take their default: runs from before and after
        # stay one configuration
        return RunRecord(folder, run.read_settings(), run.read_metrics())
    except OSError as exc:
        raise SpectranError(f"{folder}: unreadable run folder ({exc})") from None


def find_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    """Every finished run at or below ``paths``, in sorted folder order."""
    folders: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise SpectranError(f"{p}: no such file or folder")
        candidates = [RunFolder(p)] if RunFolder(p).finished else \
            [RunFolder(m.parent) for m in sorted(p.rglob(RunFolder.METRICS))]
        folders += [f.path for f in candidates if f.config.is_file()]
    folders = list(dict.fromkeys(f.resolve() for f in folders))
    if not folders:
        raise SpectranError(f"no finished runs (folders with {RunFolder.METRICS} and {RunFolder.CONFIG}) under "
                            f"{', '.join(map(str, paths))}")
    return [_load(f) for f in folders]


def unfinished_runs(paths: Iterable[str | Path], filters: Iterable[str] = ()) -> list[tuple[Path, str]]:
    """(folder, state) of every run at or below ``paths`` without ``metrics.json``: folders of
    started runs, and the runs a ``sweep_summary.json`` lists that have not finished. With
    ``filters`` (as :func:`filter_records`), a started run whose ``config.yaml`` does not match is
    left out; a listed run that never started has no settings to match and stays."""
    folders: list[Path] = []
    for p in (Path(x) for x in paths):
        if not p.is_dir():
            continue
        for summary in sorted(p.rglob("sweep_summary.json")):
            entries = json.loads(summary.read_text(encoding="utf-8")).get("runs", [])
            folders += [Path(e["folder"]) for e in entries if isinstance(e, dict) and "folder" in e]
        folders += sorted({f.parent for name in RunFolder.STARTED for f in p.rglob(name)})
    unique = dict.fromkeys(f.resolve() for f in folders if not RunFolder(f).finished)
    filters = list(filters)
    kept = [f for f in sorted(unique) if not filters or not RunFolder(f).config.is_file()
            or filter_records([RunRecord(f, RunFolder(f).read_settings(), {})], filters, strict=False)]
    return [(f, RunFolder(f).describe()) for f in kept]


def filter_records(records: list[RunRecord], filters: Iterable[str], strict: bool = True) -> list[RunRecord]:
    """Keep the runs matching every ``key=v1,v2`` filter (key: ``label``, a dotted setting, or a
    short name such as ``dataset`` or ``seed``); an unknown key is an error, not an empty table,
    and so (``strict``) is a filter that keeps none of the runs, naming the values they have."""
    for item in filters:
        key, allowed = parse_filter(item)
        if key != "label" and records and all(key not in r.flat for r in records):
            raise SpectranError(f"--filter {key}: no such setting in the runs' config.yaml "
                                "(expected label or a dotted setting like train.seed)")
        values = [r.label if key == "label" else r.flat.get(key) for r in records]
        kept = [r for r, v in zip(records, values, strict=True) if value_matches(v, allowed)]
        if strict and records and not kept:
            raise no_match(item, values)
        records = kept
    return records


def group_key(name: str | None) -> str | None:
    return None if name is None else GROUP_ALIASES.get(name, name)


def assign_variants(records: list[RunRecord], group: str | None = None,
                    ignore: Iterable[str] = ()) -> None:
    """Name each record's configuration within its label and its ``group`` (its table: the runs of
    other tables do not make a setting a variant, e.g. a method's recipe on one backbone only)."""
    skip = _BOOKKEEPING | set(ignore) | ({group} if group else set())
    # grouping by a component also groups its own settings section (backbone.*, method.*)
    own = {"model.backbone": "backbone.", "model.method": "method."}.get(group or "")
    by_label: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        by_label[(r.label, str(r.flat.get(group)) if group else "")].append(r)
    for runs in by_label.values():
        def relevant(r: RunRecord) -> dict[str, Any]:
            uses_text = r.protocol.get("encoder", "unknown") is not None
            return {k: v for k, v in r.flat.items()
                    if k not in skip and (uses_text or not k.startswith("text."))
                    and not (own and k.startswith(own))}
        views = [relevant(r) for r in runs]
        keys = sorted({k for v in views for k in v})
        varying = [k for k in keys if len({json.dumps(v.get(k), default=str) for v in views}) > 1]
        names = short_names(varying)
        for r, v in zip(runs, views, strict=True):
            r.variant = tuple((names[k], v.get(k)) for k in varying)


def sweep_row_order(paths: Iterable[str | Path]) -> list[str]:
    """Row labels in the order of the sweep file(s) that produced ``paths``, if known."""
    order: list[str] = []
    for p in map(Path, paths):
        summary = p / "sweep_summary.json"
        if summary.is_file():
            try:
                order += json.loads(summary.read_text(encoding="utf-8")).get("rows", [])
            except json.JSONDecodeError as exc:
                raise SpectranError(f"{summary}: not valid JSON ({exc}); delete it or pass --rows") from None
    return list(dict.fromkeys(order))


def order_rows(rows: Iterable[str], labels_of: Mapping[str, str], preferred: list[str],
               ours: str) -> list[str]:
    """Rows ordered by ``preferred`` label order, then alphabetically; ``ours`` last."""
    rank = {label: i for i, label in enumerate(preferred)}

    def key(row: str) -> tuple[int, int, str]:
        label = labels_of[row]
        return (label == ours, rank.get(label, len(rank)), row)
    return sorted(rows, key=key)


T = TypeVar("T")


def shared_seeds(a: list[T], b: list[T], seed: Callable[[T], int]) -> tuple[list[T], list[T], str]:
    """The entries of two rows on the seeds both ran, and a note for the figure compared on them:
    "" where that is every seed of both, " (seeds 0,1)" where it drops some, and all of each with
    " (no shared seed)" where they share none."""
    both = {seed(x) for x in a} & {seed(x) for x in b}
    if not both:
        return a, b, " (no shared seed)"
    a_both, b_both = [x for x in a if seed(x) in both], [x for x in b if seed(x) in both]
    if len(a_both) == len(a) and len(b_both) == len(b):
        return a, b, ""
    named = sorted(both)
    return a_both, b_both, f" (seed{'s' if len(named) > 1 else ''} {','.join(map(str, named))})"
