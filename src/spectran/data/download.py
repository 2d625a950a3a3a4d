"""Download one file over HTTP(S) with a progress bar, a timeout and a SHA-256 check.

Standard library only (urllib): the file streams into ``<dest>.part`` while it is hashed, and is
renamed onto ``dest`` only when the byte count and the checksum are right. Any failure removes the
partial file and raises :class:`FetchError`, one line naming the file and the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from spectran.errors import DataError

CHUNK = 1 << 16
USER_AGENT = "spectran-data-fetch"


# what a user without the network can do, added to the errors that mean the source is out of reach
OFFLINE = ("; offline? --mirror URL (or $SPECTRAN_MIRROR) fetches from a copy of the files, and --dataset synthetic "
           "needs no download")


class FetchError(DataError):
    """A download that failed: HTTP error, unreachable host, timeout, short body or bad checksum."""


def download(url: str, dest: Path, sha256: str | None, *, label: str, timeout: float = 60.0,
             progress: bool | None = None, expected_size: int | None = None) -> str:
    """Fetch ``url`` to ``dest``; return the SHA-256 of what was written.

    ``sha256`` None skips the comparison (the caller decides whether that is allowed).
    ``progress`` None shows the bar only on a terminal.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = _stream(url, part, label, timeout, progress, expected_size)
        if sha256 is not None and digest != sha256:
            raise FetchError(f"{label}: checksum mismatch for {url}: expected sha256 {sha256}, got {digest}")
        os.replace(part, dest)
        return digest
    finally:
        if part.exists():
            part.unlink()


def _stream(url: str, part: Path, label: str, timeout: float, progress: bool | None,
            expected_size: int | None) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest, received = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else expected_size
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False,
                      disable=None if progress is None else not progress) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            if length and length.isdigit() and received != int(length):
                raise FetchError(f"{label}: truncated download from {url}: got {received} of {length} bytes")
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{label}: HTTP {exc.code} {exc.reason} from {url}") from None
    except http.client.IncompleteRead as exc:
        raise FetchError(f"{label}: truncated download from {url}: got {received + len(exc.partial)} "
                         f"bytes, connection closed early") from None
    except TimeoutError:
        raise FetchError(f"{label}: timed out after {timeout:g} s reading {url}{OFFLINE}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"{label}: cannot reach {url} ({exc.reason}){OFFLINE}") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise FetchError(f"{label}: connection lost reading {url} after {received} bytes "
                         f"({type(exc).__name__}: {exc})") from None
    return digest.hexdigest()
