"""The run folder: the name of every file a run writes, its state, and its files read back typed.

A run folder holds ``config.yaml`` (the resolved settings), ``env.json`` (library versions, git
commit), ``data.json`` (the checksum of the prepared data it was trained on, and its source files'
checksums), ``log.csv``/``log.jsonl`` (per epoch), ``checkpoints/{last,best}.pt`` (weights and the
settings they were trained with), ``valid_ranks.npy``/``test_ranks.npy`` (per-user pessimistic
ranks, row = user), ``item_embeddings.npy`` (the learned (N, w) item table of the best
checkpoint) and ``metrics.json``, written last. An archived run (``spectran archive``) keeps only
the small files and both splits' ranks in ``ranks.npz``. A sweep adds ``sweep_config.yaml`` (a worker's
input), ``sweep.log`` (a worker's output) and, for a run that failed, ``error.txt``;
``train.tensorboard`` adds ``tensorboard/``; :mod:`spectran.runlock` keeps its lock file there.
Serving adds ``new_items.safetensors`` (items added after training) and ``export/`` (the default
folder of ``spectran export``).

Its state (:class:`RunState`): *finished* when ``metrics.json`` exists, else *running* while a
live process holds the lock, else *failed* when ``error.txt`` exists, else *planned* (never
started, or interrupted: training it again resumes from ``checkpoints/last.pt``).

Two settings mappings describe the same run when they agree on every setting other than the
ones marked on their field as not distinguishing runs or as the training budget
(:func:`spectran.settings.marked`): a run resumes, and a checkpoint loads, only under the same run.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from spectran.errors import ConfigError, SpectranError
from spectran.io import write_json, write_npy, write_text
from spectran.runlock import is_locked
from spectran.settings import RunSettings, load_yaml, marked, resolve, to_yaml, with_defaults

# settings a run may change between its start and its resume (or a checkpoint and its run)
RESUMABLE = marked("distinguishes", False) | marked("budget", True)


class RunState(enum.Enum):
    PLANNED = "planned"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{dotted name: value}``; list and mapping values as sorted JSON text."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
    return out


def differing_setting(stored: Mapping[str, Any], settings: RunSettings) -> tuple[str, Any, Any] | None:
    """(dotted name, stored value, value in ``settings``) of the first setting outside
    :data:`RESUMABLE` on which ``stored`` (settings as written by an earlier version: missing
    settings take their default) and ``settings`` differ; None when they describe the same run."""
    old, new = flatten(with_defaults(stored)), flatten(settings.to_dict())
    for key in sorted(set(old) | set(new), key=_shown_first):
        if key not in RESUMABLE and old.get(key) != new.get(key):
            return key, old.get(key), new.get(key)
    return None


def not_converged(metrics: Mapping[str, Any], patience: int) -> str | None:
    """Why a finished run's figures are provisional, or None: a run converged when it stopped
    because validation did not improve for ``patience`` epochs; one whose best epoch is its last,
    or that stopped at its epoch cap or time limit before that, may still be climbing; one whose
    best epoch is its first never learned (or stopped on a plateau before it began to)."""
    epochs, best = metrics.get("epochs"), metrics.get("best_epoch")
    if not (isinstance(epochs, int) and isinstance(best, int)):
        return None
    if best == 1 and epochs > 1:
        return (f"validation never rose above its first epoch (stopped at {epochs}): a collapse, or a stop on an "
                "initial plateau that train.min_epochs would train past")
    if epochs - best >= patience:
        return None
    if best == epochs:
        return f"best epoch is the last one trained ({best})"
    return f"stopped at epoch {epochs}, {epochs - best} after its best ({best}), before patience {patience} ran out"


# the settings a user gives by flag come first, then the fixed sections, then the component
# sections, whose values follow from the chosen method and backbone (and their recipes)
FIRST = ("model.method", "model.backbone", "data.dataset", "text.encoder", "model.dim", "train.seed")
SECTION_ORDER = ("model", "data", "text", "train", "eval", "backbone", "method")


def _shown_first(key: str) -> tuple[int, int, str]:
    """Sort key of a dotted setting: the first difference named is the one the user most likely made."""
    section = key.split(".", 1)[0]
    return (FIRST.index(key) if key in FIRST else len(FIRST),
            SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER), key)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder ``path`` (which need not exist yet)."""

    path: Path

    CONFIG: ClassVar[str] = "config.yaml"
    SWEEP_CONFIG: ClassVar[str] = "sweep_config.yaml"
    ENV: ClassVar[str] = "env.json"
    DATA: ClassVar[str] = "data.json"
    LOG_CSV: ClassVar[str] = "log.csv"
    LOG_JSONL: ClassVar[str] = "log.jsonl"
    METRICS: ClassVar[str] = "metrics.json"
    ERROR: ClassVar[str] = "error.txt"
    SWEEP_LOG: ClassVar[str] = "sweep.log"
    ITEM_EMBEDDINGS: ClassVar[str] = "item_embeddings.npy"
    ARCHIVED_RANKS: ClassVar[str] = "ranks.npz"  # both splits' ranks in an archived run (spectran archive)
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    TENSORBOARD: ClassVar[str] = "tensorboard"
    NEW_ITEMS: ClassVar[str] = "new_items.safetensors"
    EXPORT: ClassVar[str] = "export"
    CHECKPOINT_NAMES: ClassVar[tuple[str, ...]] = ("last", "best")
    SPLITS: ClassVar[tuple[str, ...]] = ("valid", "test")
    # a folder holding one of these is a run that was started (or planned by a sweep)
    STARTED: ClassVar[tuple[str, ...]] = (CONFIG, SWEEP_CONFIG, LOG_JSONL, ERROR)

    def __init__(self, path: str | os.PathLike[str]):
        object.__setattr__(self, "path", Path(path))

    # -- paths ---------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def sweep_config(self) -> Path:
        return self.path / self.SWEEP_CONFIG

    @property
    def env(self) -> Path:
        return self.path / self.ENV

    @property
    def data(self) -> Path:
        return self.path / self.DATA

    @property
    def log_csv(self) -> Path:
        return self.path / self.LOG_CSV

    @property
    def log_jsonl(self) -> Path:
        return self.path / self.LOG_JSONL

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def error(self) -> Path:
        return self.path / self.ERROR

    @property
    def sweep_log(self) -> Path:
        return self.path / self.SWEEP_LOG

    @property
    def item_embeddings(self) -> Path:
        return self.path / self.ITEM_EMBEDDINGS

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def new_items(self) -> Path:
        return self.path / self.NEW_ITEMS

    @property
    def export(self) -> Path:
        return self.path / self.EXPORT

    def checkpoint(self, name: str) -> Path:
        """``checkpoints/<name>.pt``: ``last`` (resumes training) or ``best`` (the evaluated weights)."""
        if name not in self.CHECKPOINT_NAMES:
            raise SpectranError(f"checkpoint {name!r}: expected one of {', '.join(self.CHECKPOINT_NAMES)}")
        return self.path / self.CHECKPOINTS / f"{name}.pt"

    def ranks(self, split: str) -> Path:
        """``<split>_ranks.npy``: the per-user ranks of ``valid`` or ``test``."""
        if split not in self.SPLITS:
            raise SpectranError(f"split {split!r}: expected one of {', '.join(self.SPLITS)}")
        return self.path / f"{split}_ranks.npy"

    # -- state ---------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.metrics.is_file()

    @property
    def state(self) -> RunState:
        if self.finished:
            return RunState.FINISHED
        if is_locked(self.path):
            return RunState.RUNNING
        return RunState.FAILED if self.error.is_file() else RunState.PLANNED

    def epochs_logged(self) -> int | None:
        """Epochs in ``log.jsonl`` (None when there is no log: no epoch ended yet)."""
        if not self.log_jsonl.is_file():
            return None
        return sum(1 for line in self.log_jsonl.read_text(encoding="utf-8").splitlines() if line.strip())

    def seconds_logged(self) -> float | None:
        """Training and validation seconds summed over the epochs in ``log.jsonl`` (the run's
        wall time less start-up and the test evaluation; a resumed run's parts added up), or None
        when no epoch is logged."""
        if not self.log_jsonl.is_file():
            return None
        rows = [json.loads(line) for line in self.log_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
        by_epoch = {r.get("epoch"): r for r in rows}  # an epoch logged twice (a resume) counts once
        if not by_epoch:
            return None
        return float(sum(r.get("train_seconds", 0.0) + r.get("valid_seconds", 0.0) for r in by_epoch.values()))

    def describe(self) -> str:
        """The state as a sweep lists it: ``done``, ``running``, ``partial (k epochs)`` (an
        interrupted run, or a failed one that trained k epochs), ``failed`` or ``pending``."""
        state = self.state
        if state is RunState.FINISHED:
            return "done"
        if state is RunState.RUNNING:
            return "running"
        epochs = self.epochs_logged()
        if epochs is not None:
            return f"partial ({epochs} epochs)"
        return "failed" if state is RunState.FAILED else "pending"

    # -- reading -------------------------------------------------------------------------------
    def raw_config(self) -> dict[str, Any]:
        """``config.yaml`` as written ({} when the run has none yet)."""
        return load_yaml(self.config) if self.config.is_file() else {}

    def read_settings(self) -> RunSettings:
        """``config.yaml`` as typed settings (settings added since the run take their default)."""
        if not self.config.is_file():
            raise SpectranError(f"{self.path}: not a run folder (no {self.CONFIG})")
        raw = self.raw_config()  # its errors name the file already
        try:
            return resolve(raw)
        except ConfigError as exc:
            raise ConfigError(f"{self.config}: {exc}", setting=exc.setting) from None

    def read_metrics(self) -> dict[str, Any]:
        try:
            metrics = json.loads(self.metrics.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpectranError(f"{self.metrics}: not found (the run has not finished)") from None
        except json.JSONDecodeError as exc:
            raise SpectranError(f"{self.metrics}: not valid JSON ({exc})") from None
        if not isinstance(metrics, dict):
            raise SpectranError(f"{self.metrics}: expected a JSON object")
        return metrics

    def read_ranks(self, split: str) -> np.ndarray:
        """The per-user ranks of ``split``: ``<split>_ranks.npy``, or in an archived run ``ranks.npz``."""
        path = self.ranks(split)
        if path.is_file():
            return np.load(path, allow_pickle=False)
        archived = self.path / self.ARCHIVED_RANKS
        if archived.is_file():
            with np.load(archived, allow_pickle=False) as z:
                if split in z.files:
                    return z[split].astype(np.int64)
        raise SpectranError(f"{path}: per-user ranks missing (needed for the significance test)")

    def read_item_embeddings(self, mmap: bool = False) -> np.ndarray:
        """The learned (N, w) item table (memory-mapped when ``mmap``)."""
        if not self.item_embeddings.is_file():
            raise SpectranError(f"{self.item_embeddings}: learned item embeddings missing")
        return np.load(self.item_embeddings, mmap_mode="r" if mmap else None, allow_pickle=False)

    def different_settings(self, settings: RunSettings) -> tuple[str, Any, Any] | None:
        """The first setting on which ``config.yaml`` and ``settings`` describe different runs
        (:func:`differing_setting`; None when there is no config.yaml yet)."""
        return differing_setting(self.raw_config(), settings) if self.config.is_file() else None

    # -- writing (atomic) ----------------------------------------------------------------------
    def write_settings(self, settings: RunSettings) -> None:
        write_text(self.config, to_yaml(settings))

    def write_sweep_config(self, settings: RunSettings) -> Path:
        write_text(self.sweep_config, to_yaml(settings))
        return self.sweep_config

    def write_env(self, info: Mapping[str, Any]) -> None:
        write_json(self.env, dict(info))

    def write_results(self, ranks: Mapping[str, np.ndarray], item_table: np.ndarray,
                      metrics: Mapping[str, Any]) -> None:
        """Per-split ranks, the item table, then ``metrics.json`` (last: marks the run finished)."""
        for split, array in ranks.items():
            write_npy(self.ranks(split), array)
        write_npy(self.item_embeddings, item_table)
        write_json(self.metrics, dict(metrics))

    def unfinish(self) -> None:
        """Drop ``metrics.json``: a run that trains on is unfinished until it is written again."""
        self.metrics.unlink(missing_ok=True)

    def write_error(self, text: str) -> None:
        write_text(self.error, text if text.endswith("\n") else text + "\n")

    def clear_error(self) -> None:
        self.error.unlink(missing_ok=True)
