"""Items added to a trained run after training: the ``<run>/new_items.safetensors`` file.

The file holds the added items' embeddings (M, w) and, in its metadata, their ids and texts; it
is written atomically by :mod:`spectran.serve.add_items` and read by
:class:`spectran.serve.recommend.Recommender`, which appends the rows to the item table.
:func:`read_items_jsonl` reads the user's file of new items (id + the run's text fields).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from spectran.data.source import iter_jsonl
from spectran.errors import CacheError, DataError
from spectran.io import atomic_path
from spectran.runfolder import RunFolder


@dataclass
class NewItems:
    labels: list[str]  # the user's ids, in table order after the trained items
    texts: list[str]
    embeddings: torch.Tensor  # (M, w)


def load_new_items(run_dir: str | Path) -> NewItems | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = RunFolder(run_dir).new_items
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
        labels, texts = json.loads(meta["labels"]), json.loads(meta["texts"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CacheError(f"{path}: added-items file is truncated or corrupt ({exc}); delete it and "
                         "run 'spectran add-items' again") from None
    emb = tensors.get("embeddings")
    if emb is None or emb.ndim != 2 or len(emb) != len(labels) or len(texts) != len(labels):
        raise CacheError(f"{path}: added-items file is inconsistent (ids vs embedding rows)")
    return NewItems(labels, texts, emb)


def read_items_jsonl(path: str | Path, fields: list[str], separator: str) -> list[tuple[str, str]]:
    """(id, text) per line of a JSONL with ``item`` and the run's text fields; errors name the row."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: new-items file not found (expected JSONL with 'item' and 'text')")
    return items_from_records(iter_jsonl(p), fields, separator, str(p))


def items_from_records(records: Iterable[tuple[int, object]], fields: list[str], separator: str,
                       where: str) -> list[tuple[str, str]]:
    """(id, text) of each (row number, record): a record is an object with an ``item`` id and the
    run's text ``fields``; an error names ``where`` and the row."""
    rows: list[tuple[str, str]] = []
    for row, record in records:
        item = record.get("item") if isinstance(record, dict) else None
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
            raise DataError(f"{where}:{row}: expected an object with an 'item' id (a string or an integer), "
                            f"got {item!r}")
        parts = []
        for name in fields:
            value = record.get(name)
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value or "").strip()
            if not text:
                raise DataError(f"{where}:{row}: item {item} has no '{name}' (expected non-empty text)")
            parts.append(text)
        rows.append((str(item), separator.join(parts)))
    if not rows:
        raise DataError(f"{where}: no items")
    return rows


def save_new_items(run_dir: str | Path, items: NewItems) -> None:
    from safetensors.torch import save_file

    meta = {"labels": json.dumps(items.labels), "texts": json.dumps(items.texts)}
    with atomic_path(RunFolder(run_dir).new_items) as tmp:
        save_file({"embeddings": items.embeddings.contiguous()}, str(tmp), metadata=meta)
