"""Semantic item embeddings E (N, D) for a prepared dataset: render, encode, cache, load.

>>> from spectran.data.prepare import prepare
>>> from spectran.settings import DataSettings
>>> from spectran.text.settings import TextSettings
>>> ds = prepare(DataSettings(dataset="synthetic"))
>>> load_or_encode(ds, TextSettings(encoder="fake", fake_dim=8), progress=False).shape
(120, 8)

Row i of E is item i + 1. The text of an item is ``text.fields`` of its record joined by
``text.separator``. Caches live in ``<dataset cache>/embeddings/<slug>.npy`` + ``.json``
(:mod:`spectran.text.cache`), the slug naming the encoder, the fields and the normalisation.

``npy:FILE`` imports a ready matrix: it is validated (2-d, N rows, real and finite) and copied into
the cache with a sidecar keyed by the file's sha256, so everything downstream sees one kind of
cache; when the file's content changes it is simply imported again (nothing costly is lost).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import spectran
from spectran.data.prepare import PreparedDataset
from spectran.errors import DataError, SpectranError
from spectran.io import sha256_file
from spectran.text import cache
from spectran.text.encoders import Encoder, describe, load_encoder
from spectran.text.settings import TextSettings


def render_texts(ds: PreparedDataset, s: TextSettings) -> list[str]:
    """The text of every item in item order, inside ``text.prompt`` when one is set; a missing or
    empty field is a DataError naming the item."""
    if not s.fields:
        raise DataError("text.fields is empty: name at least one item field (e.g. [text])")
    source = next((n for n in ds.meta.get("sources", {}) if n.startswith("items")), "items")
    texts = []
    for i, record in enumerate(ds.item_records):
        parts = []
        for name in s.fields:
            value = record.get(name)
            if isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value)
            text = "" if value is None else str(value).strip()
            if not text:
                raise DataError(f"{ds.name}/{source}: item {i + 1} has no '{name}' (text.fields="
                                f"{list(s.fields)} needs a non-empty '{name}' for every item)")
            parts.append(text)
        texts.append(s.separator.join(parts))
    template = s.template()
    return texts if template == "{text}" else [template.replace("{text}", t) for t in texts]


def _npy_source(s: TextSettings, ds: PreparedDataset) -> Path | None:
    """The file of ``npy:FILE``; ``{dataset}`` in FILE stands for the dataset's name, so one
    setting names a matrix per dataset in a sweep (e.g. ``npy:carry/gemma3-270m/{dataset}.npy``)."""
    if not s.encoder.startswith("npy:"):
        return None
    return Path(s.encoder[len("npy:"):].replace("{dataset}", ds.name)).expanduser().resolve()


def _identity(ds: PreparedDataset, s: TextSettings, texts_sha: str | None) -> dict[str, Any]:
    source = _npy_source(s, ds)
    if source is not None:
        if not source.is_file():
            raise DataError(f"{source}: embedding file not found (text.encoder={s.encoder})")
        return {"encoder": f"npy:{source}", "encoder_version": f"sha256:{sha256_file(source)}", "dim": None,
                "template": None, "pooling": "n/a", "normalize": s.normalize, "dtype": "fp32",
                "max_length": 0, "items": ds.num_items, "texts_sha256": None}
    info = describe(s)
    template: dict[str, Any] = {"fields": list(s.fields), "separator": s.separator}
    if s.template() != "{text}":  # only when set: caches made before prompts existed keep their identity
        template["prompt"] = s.template()
    return {"encoder": info.name, "encoder_version": info.version, "dim": info.dim,
            "template": template, "pooling": info.pooling,
            "normalize": s.normalize, "dtype": info.dtype, "max_length": info.max_length,
            "items": ds.num_items, "texts_sha256": texts_sha}


def embedding_path(ds: PreparedDataset, s: TextSettings) -> Path:
    """The cache .npy for these settings (the sidecar is the same path with .json)."""
    return _cache_path(ds, _identity(ds, s, None))


def _cache_path(ds: PreparedDataset, identity: dict[str, Any]) -> Path:
    return ds.cache_dir / "embeddings" / f"{cache.slug(identity)}.npy"


def load_or_encode(ds: PreparedDataset, s: TextSettings, progress: bool | None = None,
                   refresh: bool = False) -> np.ndarray:
    """E (N, D) float32: loaded and verified when cached, else encoded (resuming) and cached.

    ``progress``: show a progress bar (None: only on a terminal). ``refresh``: re-encode.
    """
    texts = None if _npy_source(s, ds) else render_texts(ds, s)
    identity = _identity(ds, s, cache.texts_checksum(texts) if texts is not None else None)
    npy = _cache_path(ds, identity)
    with cache.locked(npy):
        if refresh:
            cache.remove(npy)
        if cache.is_present(npy):
            if texts is None and _stored_version(npy) != identity["encoder_version"]:
                cache.remove(npy)  # the imported file changed: import it again
            else:
                return cache.read(npy, identity)
        start = time.perf_counter()
        if s.normalize is not False:  # derived from the raw matrix, encoded (or reused) first
            raw = load_or_encode(ds, replace(s, normalize=False), progress, refresh)
            E, device = normalized(raw, s.normalize), "n/a (derived from the raw matrix)"
        elif texts is None:
            E, device = import_matrix(_npy_source(s, ds), ds.num_items), "n/a"  # type: ignore[arg-type]
        else:
            E, device = _encode_resumable(npy, identity, texts, s, progress)
        cache.write(npy, E.astype(np.float32), identity, _run_info(time.perf_counter() - start, device))
        return cache.read(npy, identity)


def normalized(E: np.ndarray, how: bool | str) -> np.ndarray:
    """E as ``text.normalize`` prepares it: False = unchanged; True = every row divided by its L2
    norm (a zero row stays zero); "standard" = every column minus its mean over the rows, divided
    by its standard deviation (a constant column becomes zero). float64 arithmetic, float32 out."""
    if how is False:
        return E
    X = np.asarray(E, dtype=np.float64)
    if how is True:
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    elif how == "standard":
        std = X.std(axis=0)
        X = np.where(std > 1e-12, (X - X.mean(axis=0)) / np.maximum(std, 1e-12), 0.0)
    else:
        raise ValueError(f"text.normalize: expected false, true or 'standard', got {how!r}")
    return X.astype(np.float32)


def _stored_version(npy: Path) -> Any:
    try:
        return json.loads(cache.sidecar_path(npy).read_text(encoding="utf-8"))["identity"]["encoder_version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def import_matrix(path: Path, num_items: int) -> np.ndarray:
    """Validate a user's N x D matrix (row i = item i + 1): readable, 2-d, N rows, real, finite."""
    expect = f"expected a float matrix of shape ({num_items}, D), row i = item i+1"
    try:
        E = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc}); {expect}") from None
    if not isinstance(E, np.ndarray):  # np.load opens an .npz archive whatever the file is named
        E.close()
        raise DataError(f"{path}: is an .npz archive, not a .npy array; {expect} (np.save, not np.savez)")
    if E.ndim != 2 or E.shape[0] != num_items or E.shape[1] == 0:
        raise DataError(f"{path}: shape {E.shape}; {expect}")
    if not (np.issubdtype(E.dtype, np.floating) or np.issubdtype(E.dtype, np.integer)):
        raise DataError(f"{path}: dtype {E.dtype}; {expect}")
    finite = np.isfinite(E)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(f"{path}: row {row} (item {row + 1}), column {col} is {E[row, col]}; "
                        "expected finite numbers only (no NaN/inf)")
    too_big = np.abs(E) > np.finfo(np.float32).max
    if too_big.any():  # stored as float32: such a value would become inf
        row, col = np.argwhere(too_big)[0]
        raise DataError(f"{path}: row {row} (item {row + 1}), column {col} is {E[row, col]}; "
                        f"expected values within float32 range (|x| <= {np.finfo(np.float32).max:.4g})")
    return E.astype(np.float32)


def _encode_resumable(npy: Path, identity: dict[str, Any], texts: list[str], s: TextSettings,
                      progress: bool | None) -> tuple[np.ndarray, str]:
    """Encode chunk by chunk, reusing chunks a previous (interrupted) run finished."""
    if s.chunk_size <= 0 or s.batch_size <= 0:
        raise DataError(f"text.chunk_size and text.batch_size must be > 0, got {s.chunk_size}, {s.batch_size}")
    store = cache.ChunkStore(npy, identity, s.chunk_size)
    loaded: list[Encoder] = []

    def encoder() -> Encoder:  # loaded only when some chunk is missing
        if not loaded:
            loaded.append(load_encoder(s))
        return loaded[0]

    chunks = []
    bar = tqdm(total=len(texts), unit="item", desc=f"encode {identity['encoder'].split('/')[-1]}",
               disable=None if progress is None else not progress)
    with bar:
        for index, start in enumerate(range(0, len(texts), s.chunk_size)):
            part = texts[start:start + s.chunk_size]
            arr = store.get(index, len(part))
            if arr is None:
                arr = _encode_chunk(encoder, part, s.batch_size, bar.update, start)
                store.put(index, arr)
            else:
                bar.update(len(part))
            chunks.append(arr)
    dims = {c.shape[1] for c in chunks}
    if len(dims) != 1 or (identity["dim"] is not None and dims != {identity["dim"]}):
        raise SpectranError(f"{npy}: chunks have dimensions {sorted(dims)}, expected {identity['dim']}")
    E = np.concatenate(chunks)
    store.discard()
    device = f"{loaded[0].device} {getattr(loaded[0], 'dtype', 'float32')}" if loaded else "n/a (chunks reused)"
    return E, device


def _encode_chunk(encoder: Callable[[], Encoder], texts: list[str], batch_size: int,
                  advance: Callable[[int], Any], offset: int) -> np.ndarray:
    """Encode one chunk in batches of similar length (less padding), rows back in item order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        vecs = encoder().encode([texts[i] for i in idx])  # (len(idx), D)
        if out is None:
            out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
        if vecs.shape != (len(idx), out.shape[1]):
            raise SpectranError(f"text encoder returned shape {vecs.shape} for {len(idx)} texts")
        bad = ~np.isfinite(vecs).all(axis=1)
        if bad.any():
            item = offset + int(idx[int(np.flatnonzero(bad)[0])]) + 1
            raise SpectranError(f"text encoder produced NaN/inf for item {item} (try text.dtype=fp32)")
        out[idx] = vecs
        advance(len(idx))
    assert out is not None  # a chunk is never empty
    return out


def _run_info(seconds: float, device: str) -> dict[str, Any]:
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 3),
            "device": device, "host": platform.node(), "spectran_version": spectran.__version__}
