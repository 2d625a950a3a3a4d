"""``spectran data fetch``: download a catalogued set's pinned sources and build its folder.

The set is built in a hidden temporary folder next to its destination (``.<name>.*.partial``)
and renamed into place only once every file is downloaded, checked and converted, so an
interrupted or failed fetch leaves nothing that looks like a dataset. A folder that already holds
``sequences.txt``, ``items.jsonl`` and ``stats.json`` is left alone unless ``force`` is given.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spectran.data.builders import BUILDERS
from spectran.data.catalog import DatasetEntry, entry
from spectran.data.download import FetchError, download
from spectran.data.prepare import default_data_root
from spectran.errors import DataError

COMPLETE_FILES = ("sequences.txt", "items.jsonl", "stats.json")
MIRROR_ENV = "SPECTRAN_MIRROR"


@dataclass(frozen=True)
class FetchResult:
    name: str
    folder: Path
    fetched: bool  # False: it was already present and left alone
    seconds: float
    stats: dict[str, Any]


def data_root(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir`` if given, else the package's default data root."""
    return Path(data_dir) if data_dir else default_data_root()


def mirror_from_env(mirror: str | None) -> str | None:
    return mirror or os.environ.get(MIRROR_ENV) or None


def is_complete(folder: Path) -> bool:
    return all((folder / n).is_file() for n in COMPLETE_FILES)


def fetch(name: str, root: Path, *, mirror: str | None = None, force: bool = False,
          trust_first_download: bool = False, progress: bool | None = None,
          timeout: float = 60.0) -> FetchResult:
    """Download, verify and build dataset ``name`` under ``root``; a no-op if it is present."""
    ds = entry(name)
    target = root / name
    start = time.perf_counter()
    if is_complete(target) and not force:
        return FetchResult(name, target, False, 0.0, _read_stats(target))
    if target.exists() and not force:
        raise DataError(f"{target}: exists but is not a complete dataset folder; pass --force to replace it")
    if not ds.verified and not trust_first_download:
        raise FetchError(f"{name}: this package records no SHA-256 for its source files (never verified); "
                         "pass --trust-first-download to accept the files as downloaded")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=root))
    try:
        digests = {}
        for f in ds.files:
            url = f.url_from(mirror)
            digests[f.name] = download(url, work / "raw" / f.name, f.sha256, label=f"{name}/{f.name}",
                                       timeout=timeout, progress=progress, expected_size=f.size)
        try:
            stats = BUILDERS[name](work / "raw", work)
        except DataError as exc:  # name the file as the user knows it, not the temporary path
            raise DataError(str(exc).replace(f"{work / 'raw'}{os.sep}", f"{name}/")) from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # unexpected layout of a source file
            raise DataError(f"{name}: the downloaded files do not have the expected layout "
                            f"({type(exc).__name__}: {exc})") from None
        _check_counts(ds, stats)
        (work / "SOURCE.md").write_text(source_md(ds, stats, digests, mirror), encoding="utf-8")
        swap_into_place(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return FetchResult(name, target, True, time.perf_counter() - start, stats)


def _check_counts(ds: DatasetEntry, stats: dict[str, Any]) -> None:
    for key in ("users", "items", "interactions"):
        want = getattr(ds, key)
        if want is not None and stats[key] != want:
            raise DataError(f"{ds.name}: built {stats[key]} {key}, the catalog expects {want}")


def swap_into_place(work: Path, target: Path) -> None:
    """Rename the finished folder ``work`` onto ``target``, replacing what was there."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(work, target)
    if old is not None:
        shutil.rmtree(old)


def _read_stats(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder / 'stats.json'}: unreadable ({exc}); pass --force to rebuild") from None


def source_md(ds: DatasetEntry, stats: dict[str, Any], digests: dict[str, str], mirror: str | None) -> str:
    from spectran import __version__

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {ds.title}", "",
             f"Built by `spectran data fetch {ds.name}` (spectran {__version__}) on {when}"
             + (f", from the mirror {mirror}." if mirror else "."), "", ds.description, "",
             "| users | items | interactions | avg seq len | min / max len | items with text |",
             "|---|---|---|---|---|---|",
             f"| {stats['users']:,} | {stats['items']:,} | {stats['interactions']:,} | {stats['avg_seq_len']} | "
             f"{stats['min_seq_len']} / {stats['max_seq_len']} | {stats['items_with_text']:,} |", "",
             "## Origin", "", "| file in raw/ | source URL | sha256 | checked |", "|---|---|---|---|"]
    for f in ds.files:
        checked = "recorded in the package" if f.sha256 else "none recorded: trusted first download"
        lines.append(f"| {f.name} | {f.url} | {digests[f.name]} | {checked} |")
    lines += ["", f"Licence: {ds.licence}", ""]
    return "\n".join(lines)
