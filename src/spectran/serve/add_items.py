"""Cold start after training: add items that have text but no interactions to a trained run.

The texts are encoded with the run's own text encoder (``text.*`` of its config), mapped into the
item space by the item encoder's ``embed_new_items(semantic)`` hook (for SpecTran: the spectral
projection u = (e - mu) V Sigma^-1, docs/methods/spectran.md, ID part zero) and appended to
``<run>/new_items.safetensors`` (:mod:`spectran.serve.new_items`). A method that never sees text
(``id``) cannot embed an item it never saw: that is a clear error before anything is encoded,
and so is a method whose item encoder has no path from text to an item row (its
``embed_new_items`` raises).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spectran.encoders.registry import method_spec
from spectran.errors import ConfigError, DataError
from spectran.serve.new_items import NewItems, load_new_items, read_items_jsonl, save_new_items
from spectran.serve.recommend import Recommender
from spectran.text.api import normalized
from spectran.text.encoders import load_encoder


def add_items(run_dir: str | Path, items_file: str | Path) -> list[str]:
    """Embed the items of ``items_file`` into the run; returns the ids added."""
    rec = Recommender.from_run(run_dir)  # the catalog so far (trained + added) and the model
    check_can_add(rec, run_dir)
    rows = read_items_jsonl(items_file, list(rec.settings.text.fields), rec.settings.text.separator)
    return add_rows(rec, run_dir, rows, str(items_file))


def check_can_add(rec: Recommender, run_dir: str | Path) -> None:
    """A ConfigError unless the run's method and text encoder can embed new texts."""
    s = rec.settings
    if not method_spec(s.model.method).needs_text:
        raise ConfigError(f"{run_dir}: method '{s.model.method}' has no text path and cannot embed new "
                          "items; train a text-based method (e.g. spectran) to add items")
    if s.text.normalize == "standard":
        raise ConfigError(f"{run_dir}: the run was trained on E standardised per dimension (text.normalize="
                          "standard), whose catalog statistics the run does not keep; new items cannot be "
                          "prepared the same way")
    if s.text.encoder.startswith("npy:"):
        raise ConfigError(f"{run_dir}: the run's embeddings were imported (text.encoder={s.text.encoder}); "
                          "spectran cannot encode new texts the same way")


def add_rows(rec: Recommender, run_dir: str | Path, rows: list[tuple[str, str]], where: str) -> list[str]:
    """Encode (id, text) rows, append them to ``rec`` and to the run's added-items file; ids
    already in the catalog (or repeated) are a DataError naming ``where`` and the row."""
    s = rec.settings
    seen: set[str] = set()
    for row, (label, _) in enumerate(rows, start=1):
        if label in rec.row_of or label in seen:
            raise DataError(f"{where}:{row}: item {label} is already in the catalog (expected a new id)")
        seen.add(label)
    E = np.asarray(load_encoder(s.text).encode([t for _, t in rows]), dtype=np.float32)  # (M, D)
    E = normalized(E, s.text.normalize)
    with torch.no_grad():
        emb = rec.model.item_encoder.embed_new_items(torch.from_numpy(E).to(rec.table.device))
    emb = emb.float().cpu()  # (M, w)
    if emb.shape != (len(rows), rec.table.shape[1]) or not torch.isfinite(emb).all():
        raise DataError(f"{where}: the item encoder gave embeddings of shape {tuple(emb.shape)} "
                        f"(expected ({len(rows)}, {rec.table.shape[1]}), finite)")
    old = load_new_items(run_dir)
    new = NewItems([label for label, _ in rows], [t for _, t in rows], emb)
    if old is not None:
        new = NewItems(old.labels + new.labels, old.texts + new.texts, torch.cat([old.embeddings, emb]))
    save_new_items(run_dir, new)  # the file first: the server's catalog never holds an unsaved item
    rec.append([label for label, _ in rows], [t for _, t in rows], emb)
    return [label for label, _ in rows]
