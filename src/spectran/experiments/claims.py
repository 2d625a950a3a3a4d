"""Cells of a sweep claimed from one database, so workers on several machines share a grid.

``spectran sweep FILE --out DIR --claims URL`` records every run of the sweep as a row (a *cell*)
of the table ``spectran_cells`` in the database at ``URL`` (SQLAlchemy: ``sqlite:///PATH`` on one
machine, ``postgresql://user@host/db`` across machines). A cell is keyed by the grid's name
(``--grid``, default: the ``--out`` folder's name) and its run folder relative to ``--out``, and
holds its state (``free``, ``running``, ``done``, ``failed``), the worker that holds it, that
worker's last heartbeat, the number of attempts, the last error and the run folder as the worker
saw it. The run folders themselves stay under ``--out`` on storage every worker reaches, as
without a database, so any worker's ``spectran report DIR`` finds every finished run.

Every change of a cell is one ``UPDATE ... WHERE`` that names the state and the attempt count it
expects (compare and swap; a claim increments the count), so of two workers that race for a cell
exactly one sees a row changed; a worker whose cell was handed on learns so at its next
heartbeat or when it records the end. A running cell whose heartbeat is older than
``heartbeat_timeout`` belongs to a dead worker and the next worker to look claims it (the run
resumes from its last checkpoint); after ``max_attempts`` lost workers it is marked failed. A run
that fails is marked failed with its error and is not tried again unless a sweep asks for it
(``--retry-failed``). Heartbeats are the workers' clocks: machines must agree on the time to well
within the timeout (NTP).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spectran.errors import ConfigError, SpectranError
from spectran.runfolder import flatten
from spectran.settings import RunSettings, marked

TABLE = "spectran_cells"
STATES = ("free", "running", "done", "failed")
_IGNORED = marked("distinguishes", False) | {"model.label"}  # threads, progress, device... differ per machine


def import_sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise ConfigError("--claims needs SQLAlchemy: pip install 'spectran[cluster]'") from None
    return sqlalchemy


def fingerprint(settings: RunSettings) -> str:
    """SHA-256 of the settings that make a run what it is (not threads, device, progress...)."""
    flat = {k: v for k, v in flatten(settings.to_dict()).items() if k not in _IGNORED}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Claim:
    cell: str
    attempt: int  # the cell's attempt count once this worker claimed it
    previous: str | None = None  # the worker whose heartbeat had stopped, if the cell was handed on


@dataclass(frozen=True)
class CellRow:
    cell: str
    state: str
    worker: str | None
    heartbeat: float | None
    attempts: int
    error: str
    folder: str


class ClaimBoard:
    """The cells of one grid in one database, as seen by one worker."""

    def __init__(self, url: str, grid: str, heartbeat_timeout: float = 300.0, max_attempts: int = 3,
                 worker: str | None = None):
        sa = import_sqlalchemy()
        if heartbeat_timeout <= 0 or max_attempts < 1:
            raise ConfigError(f"--heartbeat-timeout must be > 0 and --max-attempts >= 1, got "
                              f"{heartbeat_timeout} and {max_attempts}")
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError(f"--claims {url!r}: not a database URL (sqlite:///PATH or "
                              "postgresql://user@host/db)") from None
        self.backend = parsed.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise ConfigError(f"--claims: database {self.backend!r} is not supported (sqlite or postgresql)")
        self.url, self.grid, self.timeout, self.max_attempts = url, grid, float(heartbeat_timeout), max_attempts
        self.worker = worker or worker_name()
        self.shown = parsed.render_as_string(hide_password=True)
        args = {"timeout": 60} if self.backend == "sqlite" else {}  # seconds to wait for SQLite's write lock
        if self.backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(parsed, connect_args=args)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--claims {self.shown}: no database driver ({exc.name}); "
                              "pip install 'spectran[cluster]'") from None
        meta = sa.MetaData()
        self.table = sa.Table(
            TABLE, meta,
            sa.Column("grid", sa.String(200), primary_key=True),
            sa.Column("cell", sa.String(500), primary_key=True),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("worker", sa.String(200)),
            sa.Column("heartbeat", sa.Float(53)),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("error", sa.Text, nullable=False),
            sa.Column("folder", sa.Text, nullable=False),
            sa.Column("started", sa.Float(53)),
            sa.Column("finished", sa.Float(53)),
        )
        try:
            with self.engine.begin() as conn:
                if self.backend == "postgresql":  # two workers starting at once create the table once
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7318190)"))
                meta.create_all(conn)
        except sa.exc.OperationalError as exc:
            # SQLite: another worker created the table between the check and the CREATE
            if not self._has_table():
                raise ConfigError(f"--claims {self.shown}: cannot open the database "
                                  f"({str(exc.orig).strip().splitlines()[0]})") from None

    def _has_table(self) -> bool:
        sa = import_sqlalchemy()
        try:
            return bool(sa.inspect(self.engine).has_table(TABLE))
        except sa.exc.OperationalError:  # the database itself cannot be reached
            return False

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A connection in a transaction; a lost database is a one-line :class:`SpectranError`."""
        sa = import_sqlalchemy()
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise SpectranError(f"--claims {self.shown}: database error "
                                f"({str(exc.orig).strip().splitlines()[0]})") from None

    def _where(self, cell: str) -> Any:
        t = self.table
        return (t.c.grid == self.grid) & (t.c.cell == cell)

    def _swap(self, cell: str, expect: dict[str, Any], values: dict[str, Any]) -> bool:
        """Change the cell only if its columns still hold ``expect``: True if this call changed it."""
        sa = import_sqlalchemy()
        cond = self._where(cell)
        for name, value in expect.items():
            cond &= self.table.c[name] == value
        with self._transaction() as conn:
            return conn.execute(sa.update(self.table).where(cond).values(**values)).rowcount == 1

    def register(self, cells: list[tuple[str, str, str]]) -> None:
        """Add the (cell, folder, fingerprint) rows this worker may run, in sweep order; rows another
        worker added stay. A cell recorded with other settings is an error (another sweep file)."""
        sa = import_sqlalchemy()
        if self.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        rows = [{"grid": self.grid, "cell": c, "position": i, "fingerprint": fp, "state": "free",
                 "attempts": 0, "error": "", "folder": folder} for i, (c, folder, fp) in enumerate(cells)]
        with self._transaction() as conn:
            for start in range(0, len(rows), 200):
                conn.execute(insert(self.table).values(rows[start:start + 200])
                             .on_conflict_do_nothing(index_elements=["grid", "cell"]))
            stored = dict(conn.execute(sa.select(self.table.c.cell, self.table.c.fingerprint)
                                       .where(self.table.c.grid == self.grid)).all())
        for cell, _, fp in cells:
            if stored.get(cell) != fp:
                raise ConfigError(f"--claims {self.shown}: grid '{self.grid}' has cell {cell} with other "
                                  "settings (another sweep file or --set); give this sweep another --grid")

    def rows(self) -> dict[str, CellRow]:
        sa = import_sqlalchemy()
        t = self.table
        with self._transaction() as conn:
            result = conn.execute(sa.select(t.c.cell, t.c.state, t.c.worker, t.c.heartbeat, t.c.attempts,
                                            t.c.error, t.c.folder).where(t.c.grid == self.grid)
                                  .order_by(t.c.position))
            return {r.cell: CellRow(*r) for r in result}

    def _stale(self, row: CellRow, now: float) -> bool:
        return row.state == "running" and (row.heartbeat or 0.0) < now - self.timeout

    def claim(self, cells: list[str]) -> Claim | None:
        """The first of ``cells`` (in that order) that is free or whose worker stopped its
        heartbeat, now held by this worker; None if there is none."""
        rows = self.rows()
        for cell in cells:
            row, now = rows.get(cell), time.time()
            if row is None or not (row.state == "free" or self._stale(row, now)):
                continue
            expect = {"state": row.state, "attempts": row.attempts}
            if row.state == "running" and row.attempts >= self.max_attempts:
                self._swap(cell, expect, {"state": "failed", "finished": now, "worker": None,
                                          "error": f"its worker stopped (no heartbeat for {self.timeout:g} s) "
                                                   f"on each of {row.attempts} attempts; last {row.worker}"})
                continue
            if self._swap(cell, expect, {"state": "running", "worker": self.worker, "heartbeat": now,
                                         "attempts": row.attempts + 1, "started": now, "finished": None}):
                return Claim(cell, row.attempts + 1, row.worker if row.state == "running" else None)
        return None

    def _mine(self, claim: Claim) -> dict[str, Any]:
        return {"state": "running", "worker": self.worker, "attempts": claim.attempt}

    def beat(self, claims: list[Claim]) -> list[Claim]:
        """Renew the heartbeat of ``claims``; returns those this worker no longer holds."""
        now = time.time()
        return [c for c in claims if not self._swap(c.cell, self._mine(c), {"heartbeat": now})]

    def finish(self, claim: Claim, state: str, folder: str, error: str = "") -> bool:
        """Record the end of a claimed cell (``done`` or ``failed``); False if the cell was handed
        on meanwhile (its new holder records it)."""
        if state not in ("done", "failed"):
            raise ValueError(f"finish: state {state!r}")
        return self._swap(claim.cell, self._mine(claim), {"state": state, "error": error[:4000],
                                                          "folder": folder, "finished": time.time()})

    def release(self, claim: Claim) -> bool:
        """Give an unfinished cell back (interrupted, or its folder is busy): free for any worker."""
        return self._swap(claim.cell, self._mine(claim), {"state": "free", "worker": None, "heartbeat": None})

    def reopen(self, cell: str, state: str) -> bool:
        """A ``done`` cell whose run folder has no finished run, or a ``failed`` one to retry: free."""
        row = self.rows().get(cell)
        if row is None or row.state != state:
            return False
        return self._swap(cell, {"state": state, "attempts": row.attempts},
                          {"state": "free", "worker": None, "heartbeat": None, "attempts": 0, "error": ""})

    def counts(self) -> dict[str, int]:
        found = [r.state for r in self.rows().values()]
        return {s: found.count(s) for s in STATES}
