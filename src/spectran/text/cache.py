"""The embedding cache: ``<slug>.npy`` plus a JSON sidecar ``<slug>.json``.

The sidecar holds the *identity* of the matrix (encoder name and version, template, pooling,
normalisation, compute dtype, token limit, item count, sha256 of the rendered texts in item
order) and facts about the file (rows, dimension, storage dtype, sha256 of the .npy bytes).
Loading checks all of it and refuses any mismatch with one line naming the field.

Writes: the .npy is written atomically first, the sidecar last; a cache counts as present only
when the sidecar exists, and its checksum must match the .npy, so a killed encode never leaves
a file that looks valid. Encoding goes chunk by chunk into ``<slug>.partial/`` (each chunk an
atomic file, keyed by the identity), so an interrupted encode resumes from finished chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so concurrent encodes of one cache are not serialised
    fcntl = None  # type: ignore[assignment]

from spectran.errors import CacheError
from spectran.io import sha256_file, write_json, write_npy

FORMAT_VERSION = 1
STORAGE_DTYPE = "float32"


def texts_checksum(texts: list[str]) -> str:
    """sha256 of the rendered texts in item order (length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        blob = text.encode("utf-8")
        digest.update(len(blob).to_bytes(8, "little") + blob)
    return digest.hexdigest()


def slug(identity: dict[str, Any]) -> str:
    """A readable file stem from the settings part of the identity, plus a hash of all of it.

    The hash covers every setting that changes the vectors (not the texts or versions: a changed
    model or item text is reported as a mismatch rather than silently cached beside).
    """
    name = re.sub(r"[^A-Za-z0-9]+", "-", identity["encoder"].split("/")[-1] if ":" in identity["encoder"]
                  else identity["encoder"]).strip("-")
    kind = identity["encoder"].split(":")[0] if ":" in identity["encoder"] else ""
    template = identity.get("template") or {}
    fields = "+".join(template.get("fields", [])) or "matrix"
    keyed = {k: identity[k] for k in ("encoder", "dim", "template", "pooling", "normalize", "dtype", "max_length")}
    tag = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:8]
    norm = {False: "raw", True: "l2"}.get(identity["normalize"], "std")
    stem = "-".join(p for p in (kind, name, re.sub(r"[^A-Za-z0-9+]+", "_", fields), norm, tag) if p)
    return stem[:120]


def sidecar_path(npy: Path) -> Path:
    return npy.with_suffix(".json")


def is_present(npy: Path) -> bool:
    """A cache exists once its sidecar (written last) does."""
    return sidecar_path(npy).is_file()


def read(npy: Path, identity: dict[str, Any]) -> np.ndarray:
    """Load and verify a cached matrix; any mismatch or corruption is a CacheError."""
    side = sidecar_path(npy)
    fix = f"delete {npy.name} and {side.name} or run 'spectran encode ... --refresh'"
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CacheError(f"{side}: unreadable embedding sidecar ({exc}); {fix}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise CacheError(f"{side}: sidecar format {meta.get('format')!r}, expected {FORMAT_VERSION}; {fix}")
    stored = meta.get("identity", {})
    for key in identity:
        if stored.get(key) != identity[key]:
            raise CacheError(f"{side}: cache was made with {key}={_short(stored.get(key))}, "
                             f"now {key}={_short(identity[key])}; {fix}")
    if not npy.is_file():
        raise CacheError(f"{npy}: embedding matrix missing beside its sidecar; {fix}")
    if sha256_file(npy) != meta.get("npy_sha256"):
        raise CacheError(f"{npy}: checksum does not match its sidecar (truncated or replaced file); {fix}")
    try:
        E = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CacheError(f"{npy}: not a readable .npy ({exc}); {fix}") from None
    expected = (identity["items"], meta.get("dim"))
    if E.shape != expected or str(E.dtype) != meta.get("dtype", STORAGE_DTYPE):
        raise CacheError(f"{npy}: shape {E.shape} {E.dtype}, sidecar says {expected} "
                         f"{meta.get('dtype')}; {fix}")
    return E


def write(npy: Path, E: np.ndarray, identity: dict[str, Any], info: dict[str, Any]) -> None:
    """Write the matrix, then the sidecar; a stale sidecar is removed before the matrix changes."""
    side = sidecar_path(npy)
    side.unlink(missing_ok=True)
    E = np.ascontiguousarray(E, dtype=np.float32)
    write_npy(npy, E)
    meta = {"format": FORMAT_VERSION, "identity": identity, "rows": int(E.shape[0]), "dim": int(E.shape[1]),
            "dtype": STORAGE_DTYPE, "npy_sha256": sha256_file(npy), **info}
    write_json(side, meta)


def remove(npy: Path) -> None:
    sidecar_path(npy).unlink(missing_ok=True)
    npy.unlink(missing_ok=True)
    shutil.rmtree(partial_dir(npy), ignore_errors=True)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# resumable chunks


def partial_dir(npy: Path) -> Path:
    return npy.with_name(npy.stem + ".partial")


class ChunkStore:
    """Finished chunks of an encode in progress, valid only for one identity and chunk size."""

    def __init__(self, npy: Path, identity: dict[str, Any], chunk_size: int) -> None:
        self.folder = partial_dir(npy)
        self.key = {"identity": identity, "chunk_size": chunk_size}
        marker = self.folder / "identity.json"
        if self.folder.is_dir():
            try:
                same = json.loads(marker.read_text(encoding="utf-8")) == self.key
            except (OSError, json.JSONDecodeError):
                same = False
            if not same:  # chunks of other settings or texts: never mixed in
                shutil.rmtree(self.folder)
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True)
            write_json(marker, self.key)

    def _path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:05d}.npy"

    def get(self, index: int, rows: int) -> np.ndarray | None:
        """A finished chunk of ``rows`` finite rows, or None (missing or unusable: re-encode it)."""
        path = self._path(index)
        if not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.ndim != 2 or arr.shape[0] != rows or arr.dtype != np.float32 or not np.isfinite(arr).all():
            return None
        return arr

    def put(self, index: int, arr: np.ndarray) -> None:
        write_npy(self._path(index), np.ascontiguousarray(arr, dtype=np.float32))

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def locked(npy: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``npy`` so concurrent runs encode the same cache once."""
    if fcntl is None:
        yield
        return
    lock = npy.with_name(npy.stem + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(lock, "a+")  # noqa: SIM115 - closed below
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            current = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        fh.close()  # the holder removed this file before we got it: lock the new one
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # removed while held, so no empty lock file stays in the cache
        fh.close()
