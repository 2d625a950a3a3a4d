"""``spectran serve RUN``: load a run once and serve it over HTTP with uvicorn.

The run is loaded before the socket is opened; once it listens, one line goes to stdout:
``serving RUN at http://HOST:PORT/ (N items, loaded in S s)`` (``--port 0`` picks a free port,
and that line names it). It binds 127.0.0.1 unless ``--host`` says otherwise. SIGTERM or SIGINT
stop it gracefully: it stops accepting connections, answers the requests in flight (for at most
``drain`` seconds), then exits 0.

The token that allows ``POST /items`` is read from ``--token-file`` or ``$SPECTRAN_SERVE_TOKEN``
(never from the command line, which other users can read in the process list).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from spectran.errors import ConfigError
from spectran.serve.requests import Limits

TOKEN_ENV = "SPECTRAN_SERVE_TOKEN"


def read_token(token_file: str | None) -> str | None:
    """The write token from ``token_file`` (first line) or ``$SPECTRAN_SERVE_TOKEN``; None: writes off."""
    if token_file is not None:
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {path}: cannot be read ({exc})") from None
        where = f"--token-file {path}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            return None
        where = f"${TOKEN_ENV}"
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(f"{where}: expected a token of at least 16 characters without spaces")
    return token


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on the accepted connections only then (with proto 0
    # a response's header and body writes wait out Nagle + delayed ACK: about 40 ms each)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 64,
          max_wait_ms: float = 2.0, threads: int = 1, token: str | None = None, limits: Limits | None = None,
          drain: float = 30.0) -> None:
    """Serve ``run_dir`` until SIGTERM / SIGINT (blocking)."""
    import torch
    import uvicorn

    from spectran.serve.app import create_app
    from spectran.serve.recommend import Recommender

    if max_batch < 1:
        raise ConfigError(f"--max-batch: expected a positive integer, got {max_batch}")
    if not 0 <= max_wait_ms <= 1000:
        raise ConfigError(f"--max-wait-ms: expected 0..1000 milliseconds, got {max_wait_ms}")
    if threads < 1:
        raise ConfigError(f"--threads: expected a positive integer, got {threads}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    rec = Recommender.from_run(run_dir)
    app = create_app(rec, run_dir, max_batch, max_wait_ms / 1000, token, limits)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {run_dir} at http://{shown}:{bound}/ ({len(rec.catalog)} items, loaded in "
          f"{time.perf_counter() - start:.1f} s; adding items {'on' if token else 'off'})", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=int(drain),
                            timeout_keep_alive=5, lifespan="on")
    server = _server_class(uvicorn.Server)(config)
    server.run(sockets=[sock])
    print(f"stopped serving {run_dir}", file=sys.stderr, flush=True)


def _server_class(base: type) -> type:
    """uvicorn's Server, except that a signal that stopped it is not raised again afterwards
    (uvicorn does, which ends the process by that signal): a drained stop exits 0."""

    class Server(base):  # type: ignore[misc, valid-type]
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server
