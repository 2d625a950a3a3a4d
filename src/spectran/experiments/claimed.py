"""A sweep worker that takes its runs from a :class:`~spectran.experiments.claims.ClaimBoard`.

Each worker (``spectran sweep FILE --out DIR --claims URL``, started on as many machines as
wanted) registers the sweep's cells, then claims one cell at a time, trains it (in this process,
or with ``--workers N`` as up to N child processes like :mod:`spectran.experiments.execute`),
and records it done or failed. A background thread renews the heartbeat of the cells it holds.
When no cell is free the worker waits while other workers' cells run, so that the cell of a
worker that dies is claimed once its heartbeat is older than the timeout; it stops when every
one of its cells is done or failed. An interrupted worker gives its cells back at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spectran.errors import SpectranError
from spectran.experiments.claims import Claim, ClaimBoard, fingerprint
from spectran.experiments.execute import (
    Outcome,
    _check_finished,
    _Child,
    _record_failure,
    _train_here,
    warm_caches,
    write_summary,
)
from spectran.experiments.sweep import PlannedRun
from spectran.runfolder import RunFolder


def cell_name(out: Path, run: PlannedRun) -> str:
    """A run's key in the database: its folder relative to ``--out`` (the same on every machine)."""
    return run.folder.relative_to(out).as_posix()


class Heartbeat(threading.Thread):
    """Renews the heartbeat of the cells this worker holds every ``interval`` seconds."""

    def __init__(self, board: ClaimBoard, interval: float):
        super().__init__(name="spectran-heartbeat", daemon=True)
        self.board, self.interval = board, interval
        self.held: dict[str, Claim] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def hold(self, claim: Claim) -> None:
        with self.lock:
            self.held[claim.cell] = claim

    def drop(self, claim: Claim) -> None:
        with self.lock:
            self.held.pop(claim.cell, None)

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                claims = list(self.held.values())
            try:  # a cell handed on meanwhile is noticed when its end is recorded (finish)
                self.board.beat(claims)
            except SpectranError as exc:  # the database is unreachable for now: try at the next beat
                print(f"warning: heartbeat not recorded: {exc}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def run_claimed(runs: list[PlannedRun], out: str | Path, board: ClaimBoard, workers: int = 1,
                rows: list[str] | None = None, retry_failed: bool = False,
                log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> list[Outcome]:
    """Claim, train and record cells of ``runs`` until every one is done or failed; this worker's
    outcomes (every cell's state is in the database and in ``out/sweep_summary.json``)."""
    out = Path(out)
    by_cell = {cell_name(out, r): r for r in runs}
    board.register([(c, str(r.folder), fingerprint(r.settings)) for c, r in by_cell.items()])
    for cell, row in board.rows().items():
        if cell not in by_cell:
            continue
        if row.state == "done" and not RunFolder(by_cell[cell].folder).finished:
            board.reopen(cell, "done")  # its run folder was removed or is not on this storage
        elif row.state == "failed" and retry_failed:
            board.reopen(cell, "failed")
    beat = Heartbeat(board, max(0.2, board.timeout / 5))
    beat.start()
    outcomes: list[Outcome] = []
    running: list[tuple[Claim, _Child]] = []
    resting: dict[str, float] = {}  # cells given back as busy -> when to try them again

    def settle(claim: Claim, outcome: Outcome) -> None:
        beat.drop(claim)
        outcomes.append(outcome)
        if outcome.status == "busy":  # another process trains the folder (its claim went stale)
            board.release(claim)
            resting[claim.cell] = time.time() + board.timeout
            return
        state = "failed" if outcome.status == "failed" else "done"
        if board.finish(claim, state, str(outcome.run.folder), outcome.error):
            log(f"{state} {claim.cell}" + (f": {outcome.error}" if outcome.error else ""))
        else:
            log(f"{claim.cell}: handed on to another worker before it ended here (heartbeats were late)")

    def start(claim: Claim) -> None:
        run = by_cell[claim.cell]
        beat.hold(claim)
        log(f"claimed {claim.cell} (attempt {claim.attempt}"
            + (f", handed on from {claim.previous})" if claim.previous else ")"))
        finished = _check_finished(run)
        if finished is not None:
            settle(claim, finished)
        elif workers == 1:
            settle(claim, _train_here(run))
        else:
            failure = warm_caches([run]).get(run.folder)
            if failure is not None:
                run.folder.mkdir(parents=True, exist_ok=True)
                settle(claim, Outcome(run, "failed", error=_record_failure(run, failure)))
            else:
                running.append((claim, _Child(run, sys.executable)))

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if installed else None
    try:
        while True:
            claimed = False
            while len(running) < workers:
                now = time.time()
                claim = board.claim([c for c in by_cell if resting.get(c, 0.0) <= now])
                if claim is None:
                    break
                claimed = True
                start(claim)
            for claim, child in list(running):
                code = child.proc.poll()
                if code is not None:
                    running.remove((claim, child))
                    settle(claim, child.outcome(code))
            if not running:
                states = [r.state for c, r in board.rows().items() if c in by_cell]
                if all(s in ("done", "failed") for s in states):
                    break
            if not claimed:  # wait for running cells: children, or other workers' (to end or go stale)
                time.sleep(min(1.0, beat.interval))
    finally:
        for claim, child in running:  # interrupted: stop the children, give their cells back
            child.stop()
            board.release(claim)
        for claim in list(beat.held.values()):
            board.release(claim)
        beat.stop()
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        write_summary(out, runs, outcomes + elsewhere(board, by_cell, outcomes), rows)
    return outcomes


def elsewhere(board: ClaimBoard, by_cell: dict[str, PlannedRun], mine: list[Outcome]) -> list[Outcome]:
    """Outcomes of the cells other workers ran or run, from the database (for the summary)."""
    ours = {o.run.folder for o in mine}
    status = {"done": "done", "failed": "failed", "running": "busy"}
    return [Outcome(by_cell[c], status[r.state], error=r.error or (f"running on {r.worker}"
                                                                  if r.state == "running" else ""))
            for c, r in board.rows().items()
            if c in by_cell and r.state in status and by_cell[c].folder not in ours]


def grid_line(board: ClaimBoard) -> str:
    counts = board.counts()
    return (f"grid '{board.grid}' in {board.shown}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
