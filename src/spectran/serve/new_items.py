"""Cold start after training: add items that have text but no interactions to a trained run.

The texts are encoded with the run's own text encoder (``text.*`` of its config), mapped into the
item space by the item encoder's ``embed_new_items(semantic)`` hook (for SpecTran: the spectral
projection u = (e - mu) V Sigma^-1 of SPEC §5, ID part zero) and stored in
``<run>/new_items.safetensors`` (embeddings + ids + texts in the metadata, written atomically).
:class:`spectran.serve.recommend.Recommender` appends them to the item table. A method without a
text path (``id``) cannot embed an item it never saw: that is a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spectran.data.source import iter_jsonl
from spectran.errors import CacheError, ConfigError, DataError
from spectran.io import atomic_path

FILE = "new_items.safetensors"


@dataclass
class NewItems:
    labels: list[str]  # the user's ids, in table order after the trained items
    texts: list[str]
    embeddings: torch.Tensor  # (M, w)


def load_new_items(run_dir: str | Path) -> NewItems | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(run_dir) / FILE
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
    rows: list[tuple[str, str]] = []
    for row, record in iter_jsonl(p):
        item = record.get("item")
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
            raise DataError(f"{p}:{row}: expected an object with an 'item' id (a string or an integer), "
                            f"got {item!r}")
        parts = []
        for name in fields:
            value = record.get(name)
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value or "").strip()
            if not text:
                raise DataError(f"{p}:{row}: item {record['item']} has no '{name}' (expected non-empty text)")
            parts.append(text)
        rows.append((str(record["item"]), separator.join(parts)))
    if not rows:
        raise DataError(f"{p}: no items")
    return rows


def add_items(run_dir: str | Path, items_file: str | Path) -> list[str]:
    """Embed the items of ``items_file`` into the run; returns the ids added."""
    from spectran.serve.recommend import Recommender
    from spectran.text.encoders import load_encoder

    run_dir = Path(run_dir)
    rec = Recommender.from_run(run_dir)  # the catalog so far (trained + added) and the model
    s = rec.settings
    hook = getattr(rec.model.item_encoder, "embed_new_items", None)
    if hook is None:
        raise ConfigError(f"{run_dir}: method '{s.model.method}' has no text path and cannot embed new "
                          "items; train a text-based method (e.g. spectran) to add items")
    if s.text.encoder.startswith("npy:"):
        raise ConfigError(f"{run_dir}: the run's embeddings were imported (text.encoder={s.text.encoder}); "
                          "spectran cannot encode new texts the same way")
    rows = read_items_jsonl(items_file, list(s.text.fields), s.text.separator)
    seen: set[str] = set()
    for row, (label, _) in enumerate(rows, start=1):
        if label in rec.row_of or label in seen:
            raise DataError(f"{items_file}:{row}: item {label} is already in the catalog (expected a new id)")
        seen.add(label)
    E = np.asarray(load_encoder(s.text).encode([t for _, t in rows]), dtype=np.float32)  # (M, D)
    if s.text.normalize:
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    with torch.no_grad():
        emb = hook(torch.from_numpy(E).to(rec.table.device)).float().cpu()  # (M, w)
    if emb.shape != (len(rows), rec.table.shape[1]) or not torch.isfinite(emb).all():
        raise DataError(f"{items_file}: the item encoder gave embeddings of shape {tuple(emb.shape)} "
                        f"(expected ({len(rows)}, {rec.table.shape[1]}), finite)")
    old = load_new_items(run_dir)
    new = NewItems([label for label, _ in rows], [t for _, t in rows], emb)
    if old is not None:
        new = NewItems(old.labels + new.labels, old.texts + new.texts, torch.cat([old.embeddings, emb]))
    save_new_items(run_dir, new)
    return [label for label, _ in rows]


def save_new_items(run_dir: str | Path, items: NewItems) -> None:
    from safetensors.torch import save_file

    meta = {"labels": json.dumps(items.labels), "texts": json.dumps(items.texts)}
    with atomic_path(Path(run_dir) / FILE) as tmp:
        save_file({"embeddings": items.embeddings.contiguous()}, str(tmp), metadata=meta)
