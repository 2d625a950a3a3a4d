"""One process trains a run folder at a time: a second trainer is refused, a sweep skips the run
and finishes it later, and a killed holder frees the folder by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_settings
from spectran.api import train
from spectran.cli import main
from spectran.errors import DataError
from spectran.experiments.execute import run_all, summarise
from spectran.experiments.sweep import expand, parse_sweep, run_state
from spectran.runlock import BUSY_EXIT_CODE, LOCK_FILE, RunBusy, holder, is_locked, run_lock

SWEEP = {"base": {"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"}, "model": {"dim": 8},
                  "backbone": {"layers": 1, "heads": 1, "inner": 16},
                  "train": {"epochs": 1, "batch_size": 128}},
         "grid": {"train.seed": [0, 1]}, "rows": {"id": {"model.method": "id"}}}


def test_a_second_trainer_is_refused_without_writing_and_trains_once_the_lock_is_free(tmp_path: Path):
    out = tmp_path / "run"
    s = tiny_settings(train={"epochs": 1, "progress": False, "batch_size": 64, "threads": 1})
    with run_lock(out):
        assert is_locked(out) and holder(out)["pid"] == os.getpid()
        with pytest.raises(RunBusy, match=rf"pid {os.getpid()} on .* is training this run"):
            train(s, out)
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # nothing of the refused run
    assert not is_locked(out)
    metrics = train(s, out)
    assert (out / "metrics.json").is_file() and metrics["epochs"] == 1


def test_the_cli_exits_with_the_busy_code(tmp_path: Path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--epochs", "1", "--no-progress", "--out", str(out)]
    with run_lock(out):
        assert main(args) == BUSY_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "is training this run" in err[0]


def test_a_bad_input_leaves_no_folder_behind(tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(DataError, match="dataset folder not found"):
        train(tiny_settings(data={"dataset": str(tmp_path / "nope")}), out)
    assert not out.exists()


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_sweep_skips_a_run_another_process_trains_and_finishes_it_later(tmp_path: Path, workers: int):
    runs = expand(parse_sweep(SWEEP), tmp_path / "out", threads=1)
    busy, free = runs
    with run_lock(busy.folder):
        assert run_state(busy.folder) == "running"
        outcomes = run_all(runs, tmp_path / "out", workers=workers, progress=False)
        status = {o.run.folder: o.status for o in outcomes}
        assert status == {busy.folder: "busy", free.folder: "ok"}
        assert not (busy.folder / "error.txt").exists() and not (busy.folder / "metrics.json").exists()
        assert "1 running elsewhere (skipped), 0 failed" in summarise(outcomes)
        summary = json.loads((tmp_path / "out" / "sweep_summary.json").read_text())
        assert sorted(r["status"] for r in summary["runs"]) == ["busy", "ok"]
    again = {o.run.folder: o.status for o in run_all(runs, tmp_path / "out", workers=workers, progress=False)}
    assert again == {busy.folder: "ok", free.folder: "done"}


def test_a_killed_holder_frees_the_folder(tmp_path: Path):
    out = tmp_path / "run"
    code = ("import sys, time; from spectran.runlock import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert is_locked(out) and holder(out)["pid"] == proc.pid
        with pytest.raises(RunBusy, match=f"pid {proc.pid}"), run_lock(out):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)  # as a lost machine or an OOM kill would
        proc.wait()
    assert not is_locked(out)
    with run_lock(out):  # nothing to clean up: the next attempt takes it
        assert holder(out)["pid"] == os.getpid()
