"""A loopback HTTP mirror for the fetch tests: a thread serving files, or failing on purpose."""

from __future__ import annotations

import gzip
import http.server
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spectran.data.catalog import CATALOG


def staged_raw(folder: Path, name: str) -> Path | None:
    """The staged raw/ copy of a source file: gzipped, sometimes with a set prefix."""
    ds = folder.name
    for candidate in (name, f"{ds.capitalize()}_{name}", f"{ds}_{name}"):
        path = folder / "raw" / f"{candidate}.gz"
        if path.is_file():
            return path
    return None


def mirror_files(staged: Path, name: str) -> dict[str, bytes] | None:
    """``<owner>/<repo>/<commit>/<path>`` -> content of every source file of set ``name``,
    decompressed to the layout of the original repositories; None if one is not staged."""
    out = {}
    for f in CATALOG[name].files:
        raw = staged_raw(staged / name, f.name)
        if raw is None:
            return None
        out["/" + f.mirror_path] = gzip.decompress(raw.read_bytes())
    return out


class Mirror:
    """Serves ``files``; ``mode[path]`` makes one path fail: '404', 'truncate', 'reset', 'stall'."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.mode: dict[str, str] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                body, mode = mirror.files.get(self.path), mirror.mode.get(self.path, "")
                if body is None or mode == "404":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncate":  # announce the full length, send half, close
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif mode == "reset":  # server gone mid-file: half the body, then a TCP reset
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                elif mode == "stall":  # headers, a little body, then nothing
                    self.wfile.write(body[:100])
                    self.wfile.flush()
                    time.sleep(3)
                else:
                    self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[Mirror]:
    mirror = Mirror(files)
    thread = threading.Thread(target=mirror.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        mirror.server.shutdown()
        mirror.server.server_close()
        thread.join(timeout=5)
