"""Read interaction data into per-user item sequences plus item records.

Two layouts are accepted:

- the canonical folder: ``sequences.txt`` (``user item item ...`` per line, ids from 1, time
  order) and ``items.jsonl`` (one object per item with ``item`` and ``text``);
- a table folder: ``interactions.csv|.parquet`` (columns user, item, timestamp) and
  ``items.csv|.parquet`` (columns item, text, ...). Ids may be any strings; they are mapped to
  1..N (items in the order of the item table, users in order of first appearance) and the maps
  are kept with the prepared data.

Text files may also be named with a ``.gz`` suffix (``sequences.txt.gz``, ``interactions.csv.gz``).

Text files are UTF-8 (a byte-order mark is skipped) and may be gzip-compressed whatever their
name (detected by content); other compressions and other encodings are refused by name. Exact
duplicate interaction rows (same user, item and timestamp) are dropped and counted.
Every malformed row is a :class:`DataError` naming the file, the row and what was expected.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import math
import zlib
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
    duplicate_rows: int = 0  # exact duplicate interaction rows dropped (table layout)

    @property
    def num_items(self) -> int:
        return len(self.items)


def read_dataset(folder: Path, name: str | None = None) -> RawDataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    if data_file(folder, "sequences.txt"):
        return _read_canonical(folder, name or folder.name)
    for ext in ("csv", "parquet"):
        if data_file(folder, f"interactions.{ext}"):
            return _read_tables(folder, name or folder.name)
    raise DataError(
        f"{folder}: expected sequences.txt + items.jsonl, or interactions.csv|parquet + "
        "items.csv|parquet")


def data_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, else ``folder/name.gz`` for text files (gzip is read by content anyway)."""
    candidates = [folder / name] + ([] if name.endswith(".parquet") else [folder / f"{name}.gz"])
    return next((p for p in candidates if p.is_file()), None)


# ---------------------------------------------------------------------------------------------
# canonical layout


_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip",
          b"PAR1": "Parquet"}


def read_text(path: Path) -> str:
    """The text of a UTF-8 file (gzip-compressed or not, a byte-order mark skipped); another
    compression or encoding is a DataError naming the file and row."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    kind = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    if kind is not None:
        raise DataError(f"{path}: is a {kind} file (expected UTF-8 text, plain or gzip-compressed)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{row}: byte 0x{data[exc.start]:02x} is not UTF-8 (expected UTF-8 text; "
                        "re-save the file as UTF-8)") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, object) per line of a JSONL file; an empty line, invalid JSON or a non-object is an
    error naming the file and row."""
    with io.StringIO(read_text(path)) as fh:
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
        item = rec.get("item")
        if isinstance(item, bool) or not isinstance(item, int):
            raise DataError(f"{path}:{row}: expected an object with an integer 'item', got {item!r}")
        rec["text"] = item_text(rec.get("text"), f"{path}:{row}", item)
        if item < 1:
            raise DataError(f"{path}:{row}: item id {item} out of range (ids start at 1)")
        if item in by_id:
            raise DataError(f"{path}:{row}: item {item} appears twice")
        by_id[item] = rec
    if not by_id:
        raise DataError(f"{path}: no items")
    n = len(by_id)
    if max(by_id) != n:  # ids are 1..n: the first gap is below n + 1 (never iterate to a huge id)
        gap = next(i for i in range(1, n + 2) if i not in by_id)
        raise DataError(f"{path}: item {gap} has no row, the largest id is {max(by_id)} (expected ids 1..{n} "
                        f"for {n} items, each with text)")
    return [by_id[i] for i in range(1, n + 1)]


def item_text(value: Any, where: str, item: Any) -> str:
    """An item's text: a non-empty string, or a number written as text (a title such as 1984)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: item {item} has no text (expected a non-empty 'text', got {value!r})")
    return value


def _read_canonical(folder: Path, name: str) -> RawDataset:
    items_path = data_file(folder, "items.jsonl") or folder / "items.jsonl"
    items = _read_items_jsonl(items_path)
    n = len(items)
    path = data_file(folder, "sequences.txt") or folder / "sequences.txt"
    sequences: list[np.ndarray] = []
    first_row: dict[str, int] = {}
    with io.StringIO(read_text(path)) as fh:
        for row, line in enumerate(fh, start=1):
            parts = line.split()
            if len(parts) < 2:
                raise DataError(f"{path}:{row}: expected 'user item item ...' with at least one item")
            if parts[0] in first_row:  # two lines of one user would train as two users
                raise DataError(f"{path}:{row}: user {parts[0]} already has a line (row {first_row[parts[0]]}); "
                                "expected one line per user")
            first_row[parts[0]] = row
            try:
                ids = [int(p) for p in parts[1:]]
            except ValueError:
                raise DataError(f"{path}:{row}: expected integer item ids, got {line.strip()[:60]!r}") from None
            bad = [i for i in ids if not 1 <= i <= n]  # checked as Python ints: a 26-digit id is out of range
            if bad:
                raise DataError(f"{path}:{row}: item id {bad[0]} out of range 1..{n} "
                                f"(items.jsonl has {n} items)")
            sequences.append(np.array(ids, dtype=np.int64))
    if not sequences:
        raise DataError(f"{path}: no users")
    return RawDataset(name, sequences, items, [path, items_path])


# ---------------------------------------------------------------------------------------------
# table layout (CSV / Parquet)


def _read_table(path: Path, required: list[str]) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        rows, start = _read_parquet(path), 1
    else:
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        start = 2  # row 1 is the header
    if not rows:
        raise DataError(f"{path}: no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise DataError(f"{path}: missing column '{missing[0]}' (expected {', '.join(required)})")
    for i, r in enumerate(rows):
        r["__row__"] = i + start
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'spectran[parquet]')") from None
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PAR1":
        kind = "gzip data" if head[:2] == b"\x1f\x8b" else "text (CSV?)" if head.isascii() else "not Parquet"
        raise DataError(f"{path}: not a Parquet file (no PAR1 header; it looks like {kind}); expected Parquet, "
                        "or name a CSV file .csv")
    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: unreadable Parquet ({exc})") from None


def table_id(value: Any, where: str, column: str) -> str:
    """An id cell as its exact string: text as written (stripped), an integer in decimal; null,
    empty, boolean and fractional ids are errors naming the cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: {column} id is null (expected a non-empty id)")
    if isinstance(value, bool):
        raise DataError(f"{where}: {column} id {value!r} is a boolean (expected a string or integer id)")
    if isinstance(value, float):
        raise DataError(f"{where}: {column} id {value!r} is a fractional number (expected a string or integer "
                        "id; store ids as text or integers)")
    key = str(value).strip()
    if not key:
        raise DataError(f"{where}: empty {column} id")
    return key


def timestamp(value: Any, where: str) -> float:
    """A finite number, numeric text or a date-time (seconds since the epoch)."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    try:
        ts = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        ts = math.nan
    if not math.isfinite(ts):
        raise DataError(f"{where}: expected a finite numeric timestamp, got {value!r}")
    return ts


def _find(folder: Path, stem: str) -> Path:
    for ext in ("csv", "parquet"):
        found = data_file(folder, f"{stem}.{ext}")
        if found is not None:
            return found
    raise DataError(f"{folder}: {stem}.csv or {stem}.parquet not found")


def _read_tables(folder: Path, name: str) -> RawDataset:
    inter_path, item_path = _find(folder, "interactions"), _find(folder, "items")
    item_rows = _read_table(item_path, ["item", "text"])
    item_index: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    for r in item_rows:
        where = f"{item_path}:{r['__row__']}"
        key = table_id(r["item"], where, "item")
        r["text"] = item_text(r["text"], where, key)
        if key in item_index:
            raise DataError(f"{item_path}:{r['__row__']}: item {key} appears twice")
        item_index[key] = len(items) + 1
        rec = {k: v for k, v in r.items() if k != "__row__"}
        rec["orig_id"], rec["item"] = key, len(items) + 1
        items.append(rec)

    per_user: dict[str, list[tuple[float, int, int]]] = {}
    seen: set[tuple[str, int, float]] = set()
    duplicates = 0
    for r in _read_table(inter_path, ["user", "item", "timestamp"]):
        where = f"{inter_path}:{r['__row__']}"
        user, key = table_id(r["user"], where, "user"), table_id(r["item"], where, "item")
        if key not in item_index:
            raise DataError(f"{where}: item {key!r} is not in {item_path.name} (every item needs text)")
        ts = timestamp(r["timestamp"], where)
        if (user, item_index[key], ts) in seen:
            duplicates += 1
            continue
        seen.add((user, item_index[key], ts))
        per_user.setdefault(user, []).append((ts, r["__row__"], item_index[key]))
    users = list(per_user)
    sequences = [np.array([i for _, _, i in sorted(per_user[u])], dtype=np.int64) for u in users]
    return RawDataset(name, sequences, items, [inter_path, item_path],
                      item_ids=[it["orig_id"] for it in items], user_ids=users, duplicate_rows=duplicates)
