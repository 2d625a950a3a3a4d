"""The Optuna study behind ``spectran tune``: storage, sampler, pruner and the trial loop.

The study lives in an Optuna RDB storage (SQLite ``<out>/study.db`` by default, or any storage
URL) with heartbeats: a worker that dies leaves its trial RUNNING until its heartbeat is older
than the grace period, then the next worker to look marks it FAIL (``fail_stale_trials``) and
the study goes on. Any number of workers, in one ``--workers K`` launch or started separately
here or on other machines, share a study: each asks the storage for the next trial, so trial
numbers (and run folders, ``<out>/trials/<number>``) are never shared. A worker stops when the
finished (complete + pruned) trials reach the budget; while the running ones could still reach
it, it waits for them. A trial that a race made one too many (the trials numbered below it
already fill the budget) ends FAIL with user attribute ``surplus`` before it trains.

Every trial is an ordinary run (:func:`spectran.api.train`) whose per-epoch validation metric
is reported to the trial by :class:`PruningSink`, which ends a trial the pruner gives up on.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spectran.errors import ConfigError, SpectranError
from spectran.tune.space import TuneSettings, TuneSpace

FINISHED = ("COMPLETE", "PRUNED")
SPACE_ATTR = "spectran_space"  # study user attribute: the space's fingerprint

if TYPE_CHECKING:
    import optuna


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("spectran tune needs Optuna: pip install 'spectran[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class SurplusTrialError(SpectranError):
    """This trial would exceed the budget (raised before it trains; the trial ends FAIL)."""


class PruningSink:
    """A training sink that reports each epoch's validation metric to an Optuna trial and raises
    ``optuna.TrialPruned`` when the study's pruner stops the trial."""

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.key = trial, f"valid_{metric}"
        self.pruned_error = import_optuna().TrialPruned

    def log(self, row: dict[str, Any]) -> None:
        value, epoch = float(row[self.key]), int(row["epoch"])
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise self.pruned_error(f"epoch {epoch}: {self.key} {value:.4f}")

    def close(self) -> None:
        """Nothing to release: the trial belongs to the study."""


@dataclass(frozen=True)
class StudyPlace:
    """Where a study lives: its storage URL and name, and the heartbeat of its workers."""

    storage: str
    name: str
    heartbeat: int = 10  # seconds between a running trial's heartbeats
    grace: int = 30  # a running trial without a heartbeat for this long is stale (its worker died)


def shown_url(url: str) -> str:
    """The storage URL with any password hidden (for logs and tune.json)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(place: StudyPlace) -> optuna.storages.RDBStorage:
    optuna = import_optuna()
    sqlite = place.storage.startswith("sqlite")
    if sqlite:
        path = place.storage.split("///", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"connect_args": {"timeout": 120}} if sqlite else {}  # workers wait for SQLite's write lock
    from sqlalchemy.exc import OperationalError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = optuna.storages.RDBStorage(place.storage, engine_kwargs=kwargs,
                                                 heartbeat_interval=place.heartbeat, grace_period=place.grace)
        except ImportError:
            raise ConfigError(f"--storage {shown_url(place.storage)}: no driver for this database "
                              "(PostgreSQL: pip install 'spectran[cluster]')") from None
        except OperationalError as exc:
            raise ConfigError(f"--storage {shown_url(place.storage)}: cannot open the database "
                              f"({str(exc.orig).strip().splitlines()[0]})") from None
    if sqlite:
        serialise_sqlite(storage.engine)
    return storage


def serialise_sqlite(engine: Any) -> None:
    """Make every transaction on a SQLite engine ``BEGIN IMMEDIATE``.

    Optuna hands a waiting (enqueued) trial to a worker by reading it as WAITING and then setting
    it RUNNING, trusting ``SELECT ... FOR UPDATE`` to keep a second worker out in between. SQLite
    has no row locks, and Python's sqlite3 opens a transaction only at the first write, so two
    workers could both read WAITING and both take the trial (both trained it; the one that told
    second failed). An immediate transaction takes SQLite's write lock before the read, so the
    second worker reads RUNNING and takes another trial. The existing connections are dropped so
    that every later one is made with these hooks."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 issues no BEGIN of its own; on_begin does

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine.dispose()


def make_sampler(settings: TuneSettings, seed: int) -> optuna.samplers.BaseSampler:
    optuna = import_optuna()
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.startup_trials, constant_liar=True)


def make_pruner(settings: TuneSettings) -> optuna.pruners.BasePruner:
    pruners = import_optuna().pruners
    if settings.pruner == "median":
        return pruners.MedianPruner(n_startup_trials=settings.prune_startup_trials,
                                    n_warmup_steps=settings.prune_warmup_epochs)
    if settings.pruner == "halving":
        return pruners.SuccessiveHalvingPruner(min_resource=max(1, settings.prune_warmup_epochs),
                                               reduction_factor=settings.reduction_factor)
    if settings.pruner == "threshold":
        return pruners.ThresholdPruner(lower=settings.prune_below)
    return pruners.NopPruner()


def open_study(space: TuneSpace, place: StudyPlace, worker: int = 0) -> optuna.Study:
    """Create or load the study; a study made from another space is refused (ConfigError).

    The sampler's seed is the space's seed plus ``worker`` times a prime plus the number of trials
    already in the study, so workers and resumed runs never redraw the same random trials."""
    optuna = import_optuna()
    storage = open_storage(place)
    study = optuna.create_study(storage=storage, study_name=place.name, direction="maximize",
                                pruner=make_pruner(space.study), load_if_exists=True)
    fingerprint = study.user_attrs.get(SPACE_ATTR)
    if fingerprint is None:
        study.set_user_attr(SPACE_ATTR, space.fingerprint())
    elif fingerprint != space.fingerprint():
        raise ConfigError(f"{space.path}: study '{place.name}' in {shown_url(place.storage)} was made from another "
                          "space; choose another --out (or --study)")
    seed = space.study.seed + 7919 * worker + len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(space.study, seed)
    return study


BASE_ATTR = "base"  # trial user attribute: the trial is the base settings (TuneSettings.base_trial)


def enqueue_base(study: optuna.Study, space: TuneSpace, log: Callable[[str], None] = print) -> None:
    """Make the base settings the first trial of a new study (nothing for a study with trials)."""
    if not space.study.base_trial or study.get_trials(deepcopy=False):
        return
    values, why = space.base_values()
    if why is not None:
        log(f"{space.path}: no base trial: {why}")
        return
    study.enqueue_trial(values, user_attrs={BASE_ATTR: True}, skip_if_exists=True)


def count_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def fail_stale(study: optuna.Study) -> None:
    optuna = import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


TrialFn = Callable[["optuna.Trial"], float]  # trial -> validation metric of the trial's best epoch


def run_worker(study: optuna.Study, objective: TrialFn, trials: int, place: StudyPlace,
               log: Callable[[str], None] = print) -> None:
    """Run trials of ``study`` until ``trials`` of them are finished (complete or pruned)."""
    optuna = import_optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
              optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)

    def guarded(trial: optuna.Trial) -> float:
        before = [t for t in study.get_trials(deepcopy=False, states=states) if t.number < trial.number]
        if len(before) >= trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrialError(f"trial {trial.number}: the trials before it fill the budget of {trials}")
        return objective(trial)

    waiting = False
    while True:
        fail_stale(study)
        counts = count_states(study)
        done = sum(counts.get(s, 0) for s in FINISHED)
        if done >= trials:
            return
        if done + counts.get("RUNNING", 0) >= trials:  # the running trials may fill the budget
            if not waiting:
                log(f"waiting for {counts.get('RUNNING', 0)} running trial(s) (finished {done}/{trials})")
                waiting = True
            time.sleep(max(1.0, place.heartbeat / 2))
            continue
        waiting = False
        study.optimize(guarded, n_trials=1, catch=(SurplusTrialError,), gc_after_trial=True)
