"""One process trains a run folder at a time.

``spectran train`` and every sweep worker hold an exclusive ``flock`` on ``<run>/.lock`` while they
train. A second process that reaches the same folder (two sweeps over one output folder, on one
machine or on several sharing a file system, or a repeated ``spectran train``) gets
:class:`RunBusy` at once instead of writing checkpoints over the first one; a sweep reports such a
run as "running elsewhere" and goes on. The kernel drops the lock when its holder dies, even by
SIGKILL, so a killed run resumes at the next attempt with nothing to clean up. The file itself
stays (it records the last holder); deleting it while a run holds it would let a second process in.

Where ``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spectran.errors import SpectranError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
BUSY_EXIT_CODE = 75  # EX_TEMPFAIL: `spectran train` on a folder another process is training


class RunBusy(SpectranError):
    """Another live process holds the run folder's lock."""


def holder(folder: str | os.PathLike[str]) -> dict[str, object]:
    """What the lock file says about its last holder ({} if there is none or it is unreadable)."""
    path = Path(folder) / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError:  # being written by its new holder right now
        return {}
    return info if isinstance(info, dict) else {}


def _describe(folder: Path) -> str:
    info = holder(folder)
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"pid {info.get('pid')} on {info.get('host')} (since {since})"


def is_locked(folder: str | os.PathLike[str]) -> bool:
    """True while a live process holds ``folder``'s lock (probes without taking it for long)."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return False
    with open(path, "a", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


@contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``folder``'s lock for the block; :class:`RunBusy` if a live process holds it."""
    folder = Path(folder)
    if fcntl is None:
        yield
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"{folder}: {_describe(folder)} is training this run; wait for it to end "
                          "(a killed holder releases the lock by itself)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        fh.flush()
        yield
    finally:
        if created and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()  # nothing was written (a bad input): leave no folder behind
            folder.rmdir()
        fh.close()  # closing the file releases the lock
