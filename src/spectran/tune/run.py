"""``tune``: validate the space, run the study's trials (here or in K worker processes), then
write ``best.yaml``, retest it over seeds and summarise the study in ``tune.json``.

A tune folder holds ``space.yaml`` (the space file as given), ``study.db`` (with the default
SQLite storage), ``trials/<number>/`` (one ordinary run folder per trial), ``workers/`` (the logs
of ``--workers`` processes), ``best.yaml`` (the best trial's settings as a ready config: trial
bookkeeping such as threads and the progress bar are left at their defaults),
``retest/seed<S>/`` (best.yaml trained with seed S: the only test metrics the tuner reports) and
``tune.json``. Trials are selected on validation alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spectran.errors import ConfigError, SpectranError
from spectran.io import write_text
from spectran.settings import resolve
from spectran.tune.results import finish
from spectran.tune.space import TuneSpace, load_space
from spectran.tune.study import (
    PruningSink,
    TuneOptions,
    enqueue_base,
    import_optuna,
    open_study,
    run_worker,
    shown_url,
)

Log = Callable[[str], None]

if TYPE_CHECKING:
    import optuna


def check_options(opts: TuneOptions) -> None:
    for name, value, least in (("--trials", opts.trials, 1), ("--workers", opts.workers, 1),
                               ("--retest", opts.retest, 0), ("--heartbeat", opts.heartbeat, 1)):
        if value < least:
            raise ConfigError(f"{name} must be >= {least}, got {value}")


def make_objective(space: TuneSpace, out: Path, threads: int, log: Log) -> Callable[[optuna.Trial], float]:
    from spectran.api import train

    metric = resolve(space.base).eval.select_metric
    pruned = import_optuna().TrialPruned

    def objective(trial: optuna.Trial) -> float:
        values = {r.key: r.suggest(trial) for r in space.ranges}
        folder = out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", folder.relative_to(out).as_posix())
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        t0 = time.perf_counter()
        try:
            metrics = train(space.run_settings(values, threads), folder, sinks=[PruningSink(trial, metric)])
        except pruned as exc:
            log(f"trial {trial.number}: pruned at {exc} ({time.perf_counter() - t0:.0f}s)  {shown}")
            raise
        trial.set_user_attr("best_epoch", int(metrics["best_epoch"]))
        value = float(metrics["valid"][metric])
        log(f"trial {trial.number}: valid {metric} {value:.4f} after {metrics['epochs']} epochs "
            f"({time.perf_counter() - t0:.0f}s)  {shown}")
        return value

    return objective


def _threads(workers: int) -> int:
    from spectran.experiments.execute import threads_per_worker

    return threads_per_worker(workers)


def _warm_caches(space: TuneSpace) -> None:
    """Prepare the data and E (and its SVD) once, so that workers never race to build them."""
    from spectran.assemble import item_context
    from spectran.data.prepare import prepare
    from spectran.encoders.registry import method_spec

    s = resolve(space.base)
    spec = method_spec(s.model.method)
    item_context(s, prepare(s.data), spec.needs_text, spec.needs_basis)


def _run_workers(space: TuneSpace, opts: TuneOptions, log: Log) -> None:
    from spectran.experiments.execute import _PRCTL, _die_with_parent

    place = opts.place()
    threads = str(_threads(opts.workers))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    logs = opts.out / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(opts.workers):
            cmd = [sys.executable, "-m", "spectran", "tune", str(space.path), "--trials", str(opts.trials),
                   "--out", str(opts.out), "--storage", place.storage, "--study", place.name,
                   "--heartbeat", str(opts.heartbeat), "--worker-index", str(i)]
            cmd += [arg for o in opts.overrides for arg in ("--set", o)]
            with open(logs / f"worker{i}.log", "a", encoding="utf-8") as fh:
                procs.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True,
                                              preexec_fn=_die_with_parent if _PRCTL is not None else None))  # noqa: PLW1509
        log(f"{opts.workers} workers on study '{place.name}' ({shown_url(place.storage)}); logs in {logs}")
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
    failed = [i for i, code in enumerate(codes) if code != 0]
    if failed:
        tail = (logs / f"worker{failed[0]}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        raise SpectranError(f"tune worker {failed[0]} exited with code {codes[failed[0]]}: "
                            f"{tail[-1] if tail else 'no output'} (log: {logs / f'worker{failed[0]}.log'})")


def tune(space_path: str | Path, opts: TuneOptions, log: Log = print) -> dict[str, Any]:
    """Run (or resume) the study to ``opts.trials`` finished trials; returns the summary
    (empty in a worker process)."""
    space = load_space(space_path, opts.overrides)  # every setting checked before anything is written
    check_options(opts)
    import_optuna()
    place = opts.place()
    if opts.worker_index is not None:  # one of the --workers processes: trials only
        study = open_study(space, place, opts.worker_index)
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        run_worker(study, make_objective(space, opts.out, threads, log), opts.trials, place, log)
        return {}
    _warm_caches(space)  # a missing dataset is an error before the study or any trial exists
    opts.out.mkdir(parents=True, exist_ok=True)
    study = open_study(space, place)  # created (or checked) once, before workers race to it
    enqueue_base(study, space, log)
    given = "".join(f"\n# spectran tune --set {o}" for o in opts.overrides)  # the base's overrides, on record
    write_text(opts.out / "space.yaml", space.path.read_text(encoding="utf-8") + given)
    if opts.workers == 1:
        run_worker(study, make_objective(space, opts.out, _threads(1), log), opts.trials, place, log)
    else:
        _run_workers(space, opts, log)
    return finish(study, space, opts, _threads(1), log)
