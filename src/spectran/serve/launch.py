"""Run ``spectran serve`` as a child process: start it on a free port, wait until it listens,
stop it (SIGTERM, then SIGKILL after a deadline). Used by the tests and ``bench/bench_serve.py``.

>>> with ServerProcess("runs/office", ["--max-wait-ms", "2"]) as server:   # doctest: +SKIP
...     httpx.post(server.url + "/recommend", json={"history": [1, 2]}).json()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from spectran.errors import SpectranError


class ServerProcess:
    def __init__(self, run_dir: str | Path, args: Sequence[str] = (), env: dict[str, str] | None = None,
                 start_timeout: float = 120.0):
        self.run_dir, self.args, self.start_timeout = str(run_dir), list(args), start_timeout
        self.env = dict(os.environ if env is None else env)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.start_seconds = 0.0  # process start until it listens
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "spectran", "serve", self.run_dir, "--port", "0", *self.args]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        ready = threading.Event()

        def read_stdout() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout_lines.append(line)
                if line.startswith("serving ") and not ready.is_set():
                    self.url = line.split(" at ", 1)[1].split("/ ", 1)[0]
                    ready.set()
            ready.set()  # the process ended without the line

        def read_stderr() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            self.stderr_lines.extend(self.proc.stderr)

        for target in (read_stdout, read_stderr):
            threading.Thread(target=target, daemon=True).start()
        ready.wait(self.start_timeout)
        self.start_seconds = time.perf_counter() - t0
        if not self.url:
            self.kill()
            raise SpectranError(f"spectran serve {self.run_dir} did not start in {self.start_timeout:.0f} s: "
                                f"{''.join(self.stderr_lines)[-2000:]}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` and wait for the exit code; SIGKILL after ``timeout`` (then None)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
