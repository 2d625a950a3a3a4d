"""Read interaction data into per-user item sequences plus item records.

Two layouts are accepted:

- the canonical folder: ``sequences.txt`` (``user item item ...`` per line, ids from 1, time
  order) and ``items.jsonl`` (one object per item with ``item`` and ``text``);
- a table folder: ``interactions.csv|.parquet`` (columns user, item, timestamp) and
  ``items.csv|.parquet`` (columns item, text, ...). Ids may be any strings; they are mapped to
  1..N (items in the order of the item table, users in order of first appearance) and the maps
  are kept with the prepared data.

Every malformed row is a :class:`DataError` naming the file, the row and what was expected.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spectran.errors import DataError


@dataclass
class RawDataset:
    name: str
    sequences: list[np.ndarray]  # per user, item ids in 1..num_items, time order
    items: list[dict[str, Any]]  # items[i] is the record of item i + 1 (has "text")
    source_files: list[Path]
    item_ids: list[str] | None = None  # original item ids (table layout only)
    user_ids: list[str] | None = None  # original user ids, one per sequence
    dropped_users: int = 0

    @property
    def num_items(self) -> int:
        return len(self.items)


def read_dataset(folder: Path, name: str | None = None) -> RawDataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    if (folder / "sequences.txt").is_file():
        return _read_canonical(folder, name or folder.name)
    for ext in ("csv", "parquet"):
        if (folder / f"interactions.{ext}").is_file():
            return _read_tables(folder, name or folder.name)
    raise DataError(
        f"{folder}: expected sequences.txt + items.jsonl, or interactions.csv|parquet + "
        "items.csv|parquet")


# ---------------------------------------------------------------------------------------------
# canonical layout


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, object) per line of a JSONL file; an empty line, invalid JSON or a non-object is an
    error naming the file and row."""
    with open(path, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            if not line.strip():
                raise DataError(f"{path}:{row}: empty line (expected a JSON object)")
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{row}: invalid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{row}: expected a JSON object")
            yield row, rec


def _read_items_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: item file not found (expected one JSON object per item)")
    by_id: dict[int, dict[str, Any]] = {}
    for row, rec in iter_jsonl(path):
        if not isinstance(rec.get("item"), int):
            raise DataError(f"{path}:{row}: expected an object with an integer 'item'")
        item = rec["item"]
        text = rec.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{row}: item {item} has no text (expected a non-empty 'text')")
        if item < 1:
            raise DataError(f"{path}:{row}: item id {item} out of range (ids start at 1)")
        if item in by_id:
            raise DataError(f"{path}:{row}: item {item} appears twice")
        by_id[item] = rec
    if not by_id:
        raise DataError(f"{path}: no items")
    n = max(by_id)
    missing = [i for i in range(1, n + 1) if i not in by_id]
    if missing:
        raise DataError(f"{path}: item {missing[0]} has no row (expected ids 1..{n}, each with text)")
    return [by_id[i] for i in range(1, n + 1)]


def _read_canonical(folder: Path, name: str) -> RawDataset:
    items = _read_items_jsonl(folder / "items.jsonl")
    n = len(items)
    path = folder / "sequences.txt"
    sequences: list[np.ndarray] = []
    with open(path, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            parts = line.split()
            if len(parts) < 2:
                raise DataError(f"{path}:{row}: expected 'user item item ...' with at least one item")
            try:
                ids = np.array([int(p) for p in parts[1:]], dtype=np.int64)
            except ValueError:
                raise DataError(f"{path}:{row}: expected integer item ids, got {line.strip()[:60]!r}") from None
            bad = ids[(ids < 1) | (ids > n)]
            if bad.size:
                raise DataError(f"{path}:{row}: item id {int(bad[0])} out of range 1..{n} "
                                f"(items.jsonl has {n} items)")
            sequences.append(ids)
    if not sequences:
        raise DataError(f"{path}: no users")
    return RawDataset(name, sequences, items, [path, folder / "items.jsonl"])


# ---------------------------------------------------------------------------------------------
# table layout (CSV / Parquet)


def _read_table(path: Path, required: list[str]) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'spectran[parquet]')") from None
        rows = pq.read_table(path).to_pylist()
        start = 1
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        start = 2  # row 1 is the header
    if not rows:
        raise DataError(f"{path}: no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise DataError(f"{path}: missing column '{missing[0]}' (expected {', '.join(required)})")
    for i, r in enumerate(rows):
        r["__row__"] = i + start
    return rows


def _find(folder: Path, stem: str) -> Path:
    for ext in ("csv", "parquet"):
        if (folder / f"{stem}.{ext}").is_file():
            return folder / f"{stem}.{ext}"
    raise DataError(f"{folder}: {stem}.csv or {stem}.parquet not found")


def _read_tables(folder: Path, name: str) -> RawDataset:
    inter_path, item_path = _find(folder, "interactions"), _find(folder, "items")
    item_rows = _read_table(item_path, ["item", "text"])
    item_index: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    for r in item_rows:
        key = str(r["item"]).strip()
        text = r["text"]
        if not key:
            raise DataError(f"{item_path}:{r['__row__']}: empty item id")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{item_path}:{r['__row__']}: item {key} has no text (expected a non-empty 'text')")
        if key in item_index:
            raise DataError(f"{item_path}:{r['__row__']}: item {key} appears twice")
        item_index[key] = len(items) + 1
        rec = {k: v for k, v in r.items() if k != "__row__"}
        rec["orig_id"], rec["item"] = key, len(items) + 1
        items.append(rec)

    per_user: dict[str, list[tuple[float, int, int]]] = {}
    for r in _read_table(inter_path, ["user", "item", "timestamp"]):
        row = r["__row__"]
        user, key = str(r["user"]).strip(), str(r["item"]).strip()
        if not user:
            raise DataError(f"{inter_path}:{row}: empty user id")
        if key not in item_index:
            raise DataError(f"{inter_path}:{row}: item {key!r} is not in {item_path.name} (every item needs text)")
        try:
            ts = float(r["timestamp"])
        except (TypeError, ValueError):
            raise DataError(f"{inter_path}:{row}: expected a numeric timestamp, got {r['timestamp']!r}") from None
        per_user.setdefault(user, []).append((ts, row, item_index[key]))
    users = list(per_user)
    sequences = [np.array([i for _, _, i in sorted(per_user[u])], dtype=np.int64) for u in users]
    return RawDataset(name, sequences, items, [inter_path, item_path],
                      item_ids=[it["orig_id"] for it in items], user_ids=users)
