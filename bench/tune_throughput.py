"""Trials per hour of finished ``spectran tune`` studies, read from their study databases.

For each tune folder (``<out>/study.db``, the default SQLite storage): trials by state, the
wall time from the first trial's start to the last trial's end, the trial hours (the sum of
the trials' own durations) and finished trials (complete + pruned) per wall hour. Studies that
ran at the same time on one machine share its cores, so the machine's rate is the sum of
theirs over the span that covers them all (the last line, when more than one folder is given).

    python bench/tune_throughput.py runs/tune/office/*
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import optuna


def study_times(folder: Path) -> tuple[dict[str, int], dt.datetime, dt.datetime, float]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder.resolve() / 'study.db'}")
    names = optuna.study.get_all_study_names(storage)
    if len(names) != 1:
        raise SystemExit(f"{folder}: expected one study in study.db, found {len(names)}")
    trials = optuna.load_study(study_name=names[0], storage=storage).get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    timed = [t for t in trials if t.datetime_start is not None and t.datetime_complete is not None]
    if not timed:
        raise SystemExit(f"{folder}: no finished trial")
    start = min(t.datetime_start for t in timed)
    end = max(t.datetime_complete for t in timed)
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in timed)
    return states, start, end, busy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("| study | complete / pruned / failed | wall h | trial h | finished trials per wall hour |")
    print("|---|---|---|---|---|")
    spans, finished_all = [], 0
    for folder in args.folders:
        states, start, end, busy = study_times(folder)
        finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
        wall = (end - start).total_seconds() / 3600
        finished_all += finished
        spans.append((start, end))
        print(f"| {folder.name} | {states.get('COMPLETE', 0)} / {states.get('PRUNED', 0)} / {states.get('FAIL', 0)} "
              f"| {wall:.2f} | {busy / 3600:.2f} | {finished / wall:.1f} |")
    if len(spans) > 1:
        wall = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds() / 3600
        print(f"| all {len(spans)} (one span) | – | {wall:.2f} | – | {finished_all / wall:.1f} |")


if __name__ == "__main__":
    main()
