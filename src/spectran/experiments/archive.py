"""``spectran archive``: keep a grid's results, small enough to commit, after its run folders are gone.

A finished run folder is mostly weights (checkpoints, the learned item table); what a report needs is
small: ``config.yaml``, ``metrics.json``, ``env.json``, ``data.json``, ``log.jsonl`` and the per-user
ranks. :func:`archive_runs` copies exactly those of every finished run below a sweep folder into a
mirror folder (same relative paths), with both splits' ranks in one compressed ``ranks.npz`` (the
smallest unsigned integer type that holds the catalog). An archived folder is a finished run to
``spectran report`` (:meth:`spectran.runfolder.RunFolder.read_ranks` reads ``ranks.npz``), so a
grid that spreads over several machines or sessions keeps its cells in version control and its
report regenerates from them.

The sweep's row order (``sweep_summary.json``'s ``rows``) travels too, merged with the order the
archive already has, so a report of the archive lists its rows as the sweep file does.

Archiving is idempotent: a run already archived with the same ``metrics.json`` is skipped; one
whose metrics changed (trained on after more epochs were allowed) is replaced. The archive refuses
a run whose ranks do not reproduce its ``metrics.json``, so it never keeps a record a report would
reject later. Every file is written atomically, ``metrics.json`` last.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.collect import find_runs, sweep_row_order
from spectran.io import atomic_path, write_json, write_text
from spectran.runfolder import RunFolder

# the small files copied as they are; metrics.json goes last (it marks the archived run finished)
KEPT = (RunFolder.CONFIG, RunFolder.ENV, RunFolder.DATA, RunFolder.LOG_JSONL)


@dataclass(frozen=True)
class Archived:
    source: Path
    target: Path
    status: str  # "new", "updated" or "same"


def rank_dtype(ranks: np.ndarray) -> np.dtype:
    """The smallest unsigned integer type holding every rank (ranks are 1-based and positive)."""
    if ranks.size and (ranks.min() < 1 or not np.issubdtype(ranks.dtype, np.integer)):
        raise SpectranError(f"ranks must be positive integers, got {ranks.dtype} with minimum {ranks.min()}")
    top = int(ranks.max()) if ranks.size else 0
    for dtype in (np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def write_ranks_npz(path: Path, ranks: dict[str, np.ndarray]) -> None:
    """``ranks.npz``: one compressed array per split, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{split: a.astype(rank_dtype(a)) for split, a in ranks.items()})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _checked_ranks(folder: RunFolder, metrics: dict) -> dict[str, np.ndarray]:
    from spectran.eval.metrics import metrics_from_ranks

    ranks = {split: folder.read_ranks(split) for split in RunFolder.SPLITS}
    for split, array in ranks.items():
        recorded = metrics.get(split, {})
        ks = sorted({int(name.partition("@")[2]) for name in recorded if "@" in name})
        again = metrics_from_ranks(array, ks) if ks else {}
        off = [name for name, value in again.items() if name in recorded and abs(value - recorded[name]) > 1e-6]
        if off:
            raise SpectranError(f"{folder.ranks(split)}: the ranks give {off[0]} {again[off[0]]:.6f}, "
                                f"metrics.json says {recorded[off[0]]:.6f}; not archived")
    return ranks


def archive_run(source: Path, target: Path) -> str:
    """Archive one finished run folder ``source`` as ``target``; returns new, updated or same."""
    src, dst = RunFolder(source), RunFolder(target)
    metrics_text = src.metrics.read_text(encoding="utf-8")
    metrics = json.loads(metrics_text)
    if dst.finished:
        if json.loads(dst.metrics.read_text(encoding="utf-8")) == metrics:
            return "same"
        status = "updated"
        dst.unfinish()
    else:
        status = "new"
    ranks = _checked_ranks(src, metrics)
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        if (source / name).is_file():
            with atomic_path(target / name) as tmp:
                shutil.copyfile(source / name, tmp)
    write_ranks_npz(target / RunFolder.ARCHIVED_RANKS, ranks)
    write_text(dst.metrics, metrics_text)
    return status


def archive_runs(source: str | Path, target: str | Path) -> list[Archived]:
    """Archive every finished run at or below ``source`` into ``target`` (same relative paths)."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise SpectranError(f"{source}: not a folder")
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        raise SpectranError(f"{target}: the archive must lie outside the runs it archives ({source})")
    done = []
    for record in find_runs([source]):
        relative = record.folder.resolve().relative_to(source.resolve())
        out = target / relative
        done.append(Archived(record.folder, out, archive_run(record.folder, out)))
    _keep_row_order(source, target)
    return done


def _keep_row_order(source: Path, target: Path) -> None:
    """The archive's row labels: its own order, then the labels of ``source``'s sweep it lacks. Only
    the order is kept (no run list: the archive holds finished runs only)."""
    kept = sweep_row_order([target])
    rows = sweep_row_order([target, source])
    if rows != kept:
        write_json(target / "sweep_summary.json", {"rows": rows, "runs": []})
