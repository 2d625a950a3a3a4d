"""Run a list of planned runs: skip finished ones, resume killed ones, collect failures.

``workers == 1`` trains in this process through :func:`spectran.api.train`. ``workers > 1``
starts each run as ``python -m spectran train --config <run>/sweep_config.yaml --out <run>``
in its own process group (so an interrupted sweep stops its children) with ``OMP_NUM_THREADS``
matching ``train.threads``; before that, this process prepares every dataset, semantic
embedding and SVD the runs need once, so parallel runs never race to build the same cache.

A failed run leaves ``error.txt`` in its folder (the traceback, or the child's last output
lines) and does not stop the others; ``DIR/sweep_summary.json`` lists every run's outcome.
A run whose folder another process is training (:mod:`spectran.runlock`: a second sweep over the
same folder, here or on another machine) is skipped as "busy" and left to that process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spectran.errors import SpectranError
from spectran.experiments.sweep import PlannedRun
from spectran.io import write_json
from spectran.runfolder import RunFolder
from spectran.runlock import BUSY_EXIT_CODE, RunBusy, is_locked


@dataclass
class Outcome:
    run: PlannedRun
    status: str  # "ok" (finished now), "done" (finished before), "busy" (another process trains it), "failed"
    seconds: float = 0.0
    error: str = ""  # one line

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.run.label, "folder": str(self.run.folder), "status": self.status,
                "seconds": round(self.seconds, 2), "error": self.error,
                "point": dict(self.run.point)}


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cpus() // max(1, workers))


def _record_failure(run: PlannedRun, text: str) -> str:
    RunFolder(run.folder).write_error(text)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed without output"


def _clear_failure(run: PlannedRun) -> None:
    RunFolder(run.folder).clear_error()


def _check_finished(run: PlannedRun) -> Outcome | None:
    """A finished run with the same settings is skipped; one with other settings is a failure."""
    if not RunFolder(run.folder).finished:
        return None
    from spectran.api import check_run_dir, finished_metrics, settings_for_data
    from spectran.data.prepare import prepare
    from spectran.recipes import depends_on_catalog

    try:
        settings = run.settings  # compared as train() compares them: for this dataset
        if depends_on_catalog(settings):
            settings = settings_for_data(settings, prepare(settings.data))
        check_run_dir(run.folder, settings)
        if finished_metrics(run.folder, settings) is None:
            return None  # more epochs asked of a run that stopped at its cap: it trains on
    except SpectranError as exc:
        return Outcome(run, "failed", error=str(exc))
    return Outcome(run, "done")


def _train_here(run: PlannedRun) -> Outcome:
    from spectran.api import train

    t0 = time.perf_counter()
    try:
        train(run.settings, run.folder)
    except RunBusy as exc:
        return Outcome(run, "busy", time.perf_counter() - t0, str(exc))
    except SpectranError as exc:
        run.folder.mkdir(parents=True, exist_ok=True)
        return Outcome(run, "failed", time.perf_counter() - t0, _record_failure(run, f"error: {exc}"))
    except Exception:  # noqa: BLE001 - a crash of one run is recorded and the sweep goes on
        run.folder.mkdir(parents=True, exist_ok=True)
        return Outcome(run, "failed", time.perf_counter() - t0, _record_failure(run, traceback.format_exc()))
    _clear_failure(run)
    return Outcome(run, "ok", time.perf_counter() - t0)


def warm_caches(runs: list[PlannedRun]) -> dict[Path, str]:
    """Prepare data, E and its SVD once per distinct need; returns failures by run folder."""
    from spectran.assemble import item_context
    from spectran.data.prepare import prepare
    from spectran.encoders.registry import method_spec

    done: dict[str, str | None] = {}
    failures: dict[Path, str] = {}
    for run in runs:
        s = run.settings
        spec = method_spec(s.model.method)
        key = json.dumps([s.data.__dict__, s.text.__dict__ if spec.needs_text or spec.needs_basis else None,
                          spec.center_basis(s.method) if spec.needs_basis else None],
                         sort_keys=True, default=str)
        if key not in done:
            try:
                item_context(s, prepare(s.data), spec.needs_text, spec.needs_basis)
                done[key] = None
            except SpectranError as exc:
                done[key] = f"error: {exc}"
            except Exception:  # noqa: BLE001 - recorded for every run that needs this cache; the others go on
                done[key] = traceback.format_exc()
        if done[key] is not None:
            failures[run.folder] = str(done[key])
    return failures


def _libc_prctl() -> Callable[..., int] | None:
    """prctl of glibc Linux, loaded in the parent (a forked child must not import or load)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:  # not glibc: children are still stopped on SIGINT/SIGTERM of the sweep
        return None


_PRCTL = _libc_prctl()


def _die_with_parent() -> None:
    """In the child, between fork and exec: get SIGTERM when the sweep process dies, even by SIGKILL."""
    _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Child:
    def __init__(self, run: PlannedRun, python: str):
        self.run = run
        folder = RunFolder(run.folder)
        folder.path.mkdir(parents=True, exist_ok=True)
        config = folder.write_sweep_config(run.settings)
        threads = str(max(1, run.settings.train.threads))
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        self.log_path = folder.sweep_log
        self.log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in outcome()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [python, "-m", "spectran", "train", "--config", str(config), "--out", str(folder.path), "--no-progress"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            # one foreign call, nothing that takes a lock: safe beside the progress thread
            preexec_fn=_die_with_parent if _PRCTL is not None else None)  # noqa: PLW1509

    def outcome(self, code: int) -> Outcome:
        self.log.close()
        seconds = time.perf_counter() - self.started
        if code == 0 and RunFolder(self.run.folder).finished:
            _clear_failure(self.run)
            return Outcome(self.run, "ok", seconds)
        if code == BUSY_EXIT_CODE:  # another process trains this folder: its files are not ours to touch
            return Outcome(self.run, "busy", seconds, "running elsewhere")
        tail = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        text = "\n".join(tail) or f"exit code {code}"
        return Outcome(self.run, "failed", seconds, _record_failure(self.run, text))

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended between poll() and the signal
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _run_parallel(todo: list[PlannedRun], workers: int, report: Callable[[Outcome], None]) -> None:
    failures = warm_caches(todo)
    queue = []
    for run in todo:
        if run.folder in failures:
            run.folder.mkdir(parents=True, exist_ok=True)
            report(Outcome(run, "failed", error=_record_failure(run, failures[run.folder])))
        else:
            queue.append(run)
    running: list[_Child] = []
    try:
        while queue or running:
            while queue and len(running) < workers:
                run = queue.pop(0)
                if is_locked(run.folder):  # leave its folder alone; the child would be refused anyway
                    report(Outcome(run, "busy", error="running elsewhere"))
                else:
                    running.append(_Child(run, sys.executable))
            time.sleep(0.5)
            for child in list(running):
                code = child.proc.poll()
                if code is not None:
                    running.remove(child)
                    report(child.outcome(code))
    finally:
        for child in running:  # interrupted: stop the children; their runs resume next time
            child.stop()


def run_all(runs: list[PlannedRun], out: str | Path, workers: int = 1, progress: bool = True,
            rows: list[str] | None = None) -> list[Outcome]:
    """Execute ``runs`` (finished ones are skipped) and write ``out/sweep_summary.json``."""
    outcomes: list[Outcome] = []
    todo = []
    for run in runs:
        finished = _check_finished(run)
        if finished is None:
            todo.append(run)
        else:
            outcomes.append(finished)
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, dynamic_ncols=True)
    counts = {"ok": 0, "busy": 0, "failed": 0}

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        counts[outcome.status] += 1
        if outcome.status == "failed":
            tqdm.write(f"FAILED {outcome.run.folder}: {outcome.error}")
        bar.set_postfix(ok=counts["ok"], failed=counts["failed"], busy=counts["busy"],
                        skipped=len(runs) - len(todo))
        bar.update(1)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if installed else None
    try:
        if workers > 1 and len(todo) > 1:
            _run_parallel(todo, workers, report)
        else:
            for run in todo:
                bar.set_description(f"sweep [{run.label}]")
                report(_train_here(run))
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        bar.close()
        write_summary(out, runs, outcomes, rows)
    return outcomes


def write_summary(out: str | Path, runs: list[PlannedRun], outcomes: list[Outcome],
                  rows: list[str] | None) -> None:
    by_folder = {o.run.folder: o for o in outcomes}
    entries = [by_folder[r.folder].as_dict() if r.folder in by_folder
               else {"label": r.label, "folder": str(r.folder), "status": "not run", "seconds": 0.0,
                     "error": "", "point": dict(r.point)} for r in runs]
    labels = rows if rows is not None else list(dict.fromkeys(r.label for r in runs))
    write_json(Path(out) / "sweep_summary.json", {"rows": labels, "runs": entries})


def summarise(outcomes: list[Outcome]) -> str:
    ok = sum(o.status == "ok" for o in outcomes)
    done = sum(o.status == "done" for o in outcomes)
    busy = sum(o.status == "busy" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    lines = [f"{len(outcomes)} runs: {ok} finished now, {done} already finished, "
             f"{busy} running elsewhere (skipped), {len(failed)} failed"]
    lines += [f"  FAILED {o.run.folder}: {o.error}  (see {RunFolder(o.run.folder).error})" for o in failed]
    return "\n".join(lines)
