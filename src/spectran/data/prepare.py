"""Locate a dataset, apply the user filter, and cache compact arrays with a metadata file.

A dataset is ``synthetic``, a path to a dataset folder (anything with a ``/``, or starting with
``.`` or ``~``, or ending in a data-file suffix), or the name of a folder in the data root. The data
root is ``--data-dir`` (``data.data_dir``), then ``$SPECTRAN_DATA``, then the per-user data folder
``$XDG_DATA_HOME/spectran/data`` (``~/.local/share/spectran/data`` when XDG_DATA_HOME is unset).
Prepared arrays go to ``<cache>/<name>-<key>/`` where the
cache is ``data.cache_dir``, then ``$SPECTRAN_CACHE``, then ``~/.cache/spectran``. The metadata
records the source files' checksums: a changed source invalidates the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spectran.data.source import RawDataset, data_file, read_dataset
from spectran.data.synthetic import make_synthetic
from spectran.errors import CacheError, DataError
from spectran.io import atomic_path, sha256_file, write_json
from spectran.settings import DataSettings

FORMAT_VERSION = 2  # 2: exact duplicate interaction rows are dropped (and counted)


@dataclass
class PreparedDataset:
    """Leave-one-out view of the filtered sequences.

    ``items[offsets[u]:offsets[u+1]]`` is user u's full sequence; its last item is the test
    target, the one before it the validation target, the rest is the training part.
    """

    name: str
    num_items: int
    offsets: np.ndarray  # (U + 1,) int64
    items: np.ndarray  # (total,) int64, ids in 1..num_items
    item_records: list[dict[str, Any]]
    meta: dict[str, Any]
    cache_dir: Path
    item_ids: list[str] | None = None  # original ids when the source was a table
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user]:self.offsets[user + 1]]

    def train_part(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user]:self.offsets[user + 1] - 2]

    def targets(self, split: str) -> np.ndarray:
        """(U,) the validation (second to last) or test (last) item of every user."""
        back = {"valid": 2, "test": 1}[split]
        return self.items[self.offsets[1:] - back]

    def train_item_counts(self) -> np.ndarray:
        """(num_items,) how often each item occurs in the training parts."""
        in_train = np.ones(len(self.items), dtype=bool)
        in_train[self.offsets[1:] - 1] = False  # test targets
        in_train[self.offsets[1:] - 2] = False  # validation targets
        return np.bincount(self.items[in_train], minlength=self.num_items + 1)[1:].astype(np.int64)

    def train_transitions(self) -> np.ndarray:
        """(P, 2) consecutive item pairs (0-based: item - 1) inside the training parts.

        A pair never crosses into a validation or test target, hence never crosses users either
        (every user's training part is followed by its two held-out items)."""
        in_train = np.ones(len(self.items), dtype=bool)
        in_train[self.offsets[1:] - 1] = False
        in_train[self.offsets[1:] - 2] = False
        start = np.flatnonzero(in_train[:-1] & in_train[1:])
        return np.stack([self.items[start], self.items[start + 1]], axis=1).astype(np.int64) - 1


def user_data_root() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/spectran/data``, else ``~/.local/share/spectran/data``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "spectran" / "data"


def default_data_root() -> Path:
    """The data root when no ``--data-dir`` is given: ``$SPECTRAN_DATA``, else :func:`user_data_root`."""
    env = os.environ.get("SPECTRAN_DATA")
    return Path(env).expanduser() if env else user_data_root()


def data_root(settings: DataSettings) -> tuple[Path, str]:
    """The data root for staged names and where it came from (for messages)."""
    if settings.data_dir:
        return Path(settings.data_dir).expanduser(), "--data-dir / data.data_dir"
    if os.environ.get("SPECTRAN_DATA"):
        return default_data_root(), "$SPECTRAN_DATA"
    return user_data_root(), "the per-user data folder"


def default_cache_root(settings: DataSettings) -> Path:
    if settings.cache_dir:
        return Path(settings.cache_dir)
    env = os.environ.get("SPECTRAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "spectran"


_FILE_SUFFIXES = (".csv", ".parquet", ".txt", ".jsonl", ".json", ".tsv", ".gz", ".npy", ".npz")
_LAYOUT = "sequences.txt + items.jsonl, or interactions.csv|parquet + items.csv|parquet"


def is_path_like(dataset: str) -> bool:
    """True when ``dataset`` names a path rather than a staged dataset."""
    return ("/" in dataset or os.sep in dataset or dataset.startswith((".", "~"))
            or dataset.lower().endswith(_FILE_SUFFIXES))


def fetch_hint(name: str) -> str:
    """For a dataset the package can download: how to."""
    from spectran.data.catalog import CATALOG

    if name in CATALOG:
        return f"; `spectran data fetch {name}` downloads it"
    return "; `spectran data list` shows the sets that `spectran data fetch NAME` downloads"


def locate(settings: DataSettings) -> Path | None:
    """The dataset folder for ``settings.dataset``, or None for the built-in synthetic set.

    A dataset given as a path is that path, whatever the data root holds; a staged name is looked
    up in the data root only.
    """
    if settings.dataset == "synthetic":
        return None
    if not settings.dataset.strip():
        raise DataError("data.dataset: empty (expected a staged name, a dataset folder or 'synthetic')")
    if is_path_like(settings.dataset):
        path = Path(settings.dataset).expanduser()
        if path.is_dir():
            return path.resolve()
        if path.exists():
            raise DataError(f"{path}: --dataset takes a dataset folder, not a file (expected a folder "
                            f"holding {_LAYOUT})")
        raise DataError(f"{path}: dataset folder not found")
    root, source = data_root(settings)
    here = f"; ./{settings.dataset} is the folder in the working directory" \
        if Path(settings.dataset).is_dir() else ""
    folder = root / settings.dataset
    if not root.is_dir():
        raise DataError(f"{folder}: dataset folder not found (data root {root} from {source} does not exist; "
                        "pass --data-dir, set SPECTRAN_DATA, give the dataset folder as a path, "
                        f"or use --dataset synthetic{here}{fetch_hint(settings.dataset)})")
    if not folder.is_dir():
        staged = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(f"{folder}: dataset folder not found (data root {root} from {source} holds: "
                        f"{', '.join(staged) or 'nothing'}{here}{fetch_hint(settings.dataset)})")
    return folder.resolve()


def prepare(settings: DataSettings, refresh: bool = False) -> PreparedDataset:
    """Read (or load from cache) and filter the dataset named in ``settings``."""
    folder = locate(settings)
    if folder is None:
        return _from_raw(make_synthetic(), settings, default_cache_root(settings) / "synthetic", {})
    sources = {p.name: sha256_file(p) for p in _source_files(folder)}
    # keyed by content, not location: the same data moved elsewhere reuses its cache
    key = hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:12]
    cache = default_cache_root(settings) / f"{folder.name}-{key}"
    meta_path, arrays_path = cache / "prepared.json", cache / "prepared.npz"
    if not refresh and meta_path.is_file() and arrays_path.is_file():
        meta = _read_meta(meta_path)
        if meta.get("sources") == sources and meta.get("min_len") == settings.min_len \
                and meta.get("format") == FORMAT_VERSION:
            return _load(cache, meta)
    raw = read_dataset(folder)
    ds = _from_raw(raw, settings, cache, sources)
    _save(ds)
    return ds


def _source_files(folder: Path) -> list[Path]:
    names = ["sequences.txt", "items.jsonl", "interactions.csv", "interactions.parquet",
             "items.csv", "items.parquet"]
    return [p for p in (data_file(folder, n) for n in names) if p is not None]


def _from_raw(raw: RawDataset, settings: DataSettings, cache: Path,
              sources: dict[str, str]) -> PreparedDataset:
    kept = [s for s in raw.sequences if len(s) >= settings.min_len]
    if not kept:
        raise DataError(f"{raw.name}: no user has at least {settings.min_len} interactions")
    lengths = np.array([len(s) for s in kept], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    meta = {
        "format": FORMAT_VERSION, "name": raw.name, "sources": sources, "min_len": settings.min_len,
        "users_before": len(raw.sequences), "users_after": len(kept),
        "users_dropped": len(raw.sequences) - len(kept),
        "interactions_before": int(sum(len(s) for s in raw.sequences)),
        "interactions_after": int(lengths.sum()), "num_items": raw.num_items,
        "duplicate_rows_dropped": raw.duplicate_rows,
    }
    items = np.concatenate(kept)
    meta["checksum"] = checksum(offsets, items, raw.items)
    return PreparedDataset(raw.name, raw.num_items, offsets, items, raw.items, meta, cache, raw.item_ids)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def checksum(offsets: np.ndarray, items: np.ndarray, records: list[dict[str, Any]]) -> str:
    """sha256 of the prepared arrays and item records: what a run was trained on."""
    blob = json.dumps(records, sort_keys=True).encode()
    return hashlib.sha256(offsets.tobytes() + items.tobytes() + blob).hexdigest()


def _save(ds: PreparedDataset) -> None:
    with atomic_path(ds.cache_dir / "prepared.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, offsets=ds.offsets, items=ds.items)
    write_json(ds.cache_dir / "items.json", {"records": ds.item_records, "item_ids": ds.item_ids})
    write_json(ds.cache_dir / "prepared.json", ds.meta)  # written last: marks the cache complete


def _load(cache: Path, meta: dict[str, Any]) -> PreparedDataset:
    try:
        with np.load(cache / "prepared.npz", allow_pickle=False) as z:
            offsets, items = z["offsets"], z["items"]
        extra = json.loads((cache / "items.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CacheError(f"{cache}: prepared-data cache is corrupt ({exc}); delete the folder "
                         "or run 'spectran prepare --refresh'") from None
    records = extra["records"]
    if checksum(offsets, items, records) != meta.get("checksum"):
        raise CacheError(f"{cache}: prepared-data checksum mismatch; delete the folder or run "
                         "'spectran prepare --refresh'")
    return PreparedDataset(meta["name"], meta["num_items"], offsets, items, records, meta, cache,
                           extra.get("item_ids"))
