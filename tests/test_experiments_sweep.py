"""Sweep files: expansion, validation before anything runs, layout, filters, failures, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from spectran.cli import main
from spectran.errors import ConfigError
from spectran.experiments.execute import run_all
from spectran.experiments.sweep import apply_filters, expand, load_sweep, parse_sweep, run_state

TINY = {"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"},
        "model": {"dim": 8}, "backbone": {"layers": 1, "heads": 1, "inner": 16},
        "train": {"epochs": 1, "batch_size": 128}}


def sweep(grid=None, rows=None, base=None) -> dict:
    return {"base": base if base is not None else TINY, "grid": grid or {"train.seed": [0, 1]},
            "rows": rows if rows is not None else {"id": {"model.method": "id"}}}


def test_expand_is_the_cross_product_with_readable_folders(tmp_path: Path):
    spec = parse_sweep(sweep({"model.dim": [8, 16], "train.seed": [0, 1, 2]},
                             {"id": {"model.method": "id"}, "id no dropout": {"model.method": "id",
                                                                              "backbone.dropout": 0.0}}))
    runs = expand(spec, tmp_path, threads=3)
    assert len(runs) == 2 * 3 * 2
    folders = {r.folder.relative_to(tmp_path).as_posix() for r in runs}
    assert "synthetic/sasrec/id/dim-8/seed0" in folders
    assert "synthetic/sasrec/id-no-dropout/dim-16/seed2" in folders
    run = next(r for r in runs if r.label == "id no dropout")
    assert run.settings.backbone.dropout == 0.0 and run.settings.model.label == "id no dropout"
    assert run.settings.train.threads == 3 and run.settings.train.progress is False
    assert run.settings.train.epochs == 1  # from base


def test_explicit_threads_are_kept(tmp_path: Path):
    base = {**TINY, "train": {**TINY["train"], "threads": 1}}
    (run, *_) = expand(parse_sweep(sweep(base=base)), tmp_path, threads=8)
    assert run.settings.train.threads == 1


def test_a_typo_fails_the_whole_sweep_naming_the_row(tmp_path: Path):
    spec = parse_sweep(sweep(rows={"id": {"model.method": "id"}, "broken": {"model.method": "id",
                                                                             "train.learning_rate": 1}}))
    with pytest.raises(ConfigError, match=r"row 'broken' at train\.seed=0: train: unknown setting 'learning_rate'"):
        expand(spec, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was started


@pytest.mark.parametrize("raw, message", [
    ({"grid": {}, "rows": {"a": {"model.method": "id"}}, "extra": 1}, "unknown section 'extra'"),
    ({"rows": {"a": {"method.x": 1}}}, "row 'a' must be a mapping with model.method"),
    ({"grid": {"train.seed": 3}, "rows": {"a": {"model.method": "id"}}}, "non-empty list"),
    ({"rows": {"a": {"model.method": "id", "model.label": "b"}}}, "drop model.label"),
    ({"grid": {"train.seed": [0]}}, "no method chosen"),
    ({"grid": {"model.method": ["id"]}, "rows": {"a": {"model.method": "id"}}}, "set by the rows"),
])
def test_malformed_sweep_files(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(raw, "s.yaml")


def test_rowless_sweep_labels_runs_by_method(tmp_path: Path):
    runs = expand(parse_sweep({"base": TINY, "grid": {"model.method": ["id"], "train.seed": [4]}}), tmp_path)
    assert [r.label for r in runs] == ["id"]
    assert runs[0].folder == tmp_path / "synthetic" / "sasrec" / "id" / "seed4"


def test_filters(tmp_path: Path):
    spec = parse_sweep(sweep({"train.seed": [0, 1, 2]}, {"id": {"model.method": "id"},
                                                          "other": {"model.method": "id"}}))
    runs = expand(spec, tmp_path)
    assert len(apply_filters(runs, ["train.seed=0,2"])) == 4
    assert [r.label for r in apply_filters(runs, ["label=other", "train.seed=1"])] == ["other"]
    assert len(apply_filters(runs, ["train.progress=false"])) == 6
    assert len(apply_filters(runs, ["seed=1", "method=id"])) == 2  # short names, as report's --filter
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_filters(runs, ["seed"])


def test_a_filter_that_matches_nothing_names_the_known_values(tmp_path: Path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep({"train.seed": [0, 1]}, {"id": {"model.method": "id"},
                                                                 "spectran": {"model.method": "spectran"}})))
    with pytest.raises(ConfigError, match=r"--filter label=spectrn: matches no run \(known values: id, spectran\)"):
        apply_filters(expand(parse_sweep(yaml.safe_load(path.read_text())), tmp_path), ["label=spectrn"])
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--filter", "label=spectrn", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --filter label=spectrn: matches no run") and "id, spectran" in err
    assert not (tmp_path / "o").exists()


def test_failures_are_collected_and_the_rest_runs(tmp_path: Path):
    spec = parse_sweep(sweep({"train.seed": [0]}, {"id": {"model.method": "id"},
                                                    "missing": {"model.method": "id",
                                                                "data.dataset": str(tmp_path / "nope")}}))
    runs = expand(spec, tmp_path / "out")
    outcomes = run_all(runs, tmp_path / "out", progress=False)
    status = {o.run.label: o for o in outcomes}
    assert status["id"].status == "ok" and (runs[0].folder / "metrics.json").is_file()
    assert status["missing"].status == "failed" and "dataset folder not found" in status["missing"].error
    assert "dataset folder not found" in (runs[1].folder / "error.txt").read_text()
    summary = json.loads((tmp_path / "out" / "sweep_summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed"]
    again = {o.run.label: o.status for o in run_all(runs, tmp_path / "out", progress=False)}
    assert again == {"id": "done", "missing": "failed"}  # finished runs are not redone


def test_cli_dry_run_and_exit_code(tmp_path: Path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep({"train.seed": [0, 1]})))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("pending") and "synthetic/sasrec/id/seed0" in out[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(sweep(rows={"x": {"model.method": "nosuch"}})))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "row 'x'" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_sweep_restarts_without_redoing_finished_runs(tmp_path: Path):
    path = tmp_path / "s.yaml"
    base = {**TINY, "train": {**TINY["train"], "epochs": 2}}
    path.write_text(yaml.safe_dump(sweep({"train.seed": [0, 1, 2]}, base=base)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spectran", "sweep", str(path), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "synthetic" / "sasrec" / "id" / "seed0" / "metrics.json"
    second = out / "synthetic" / "sasrec" / "id" / "seed1"
    deadline = time.time() + 120
    # kill as soon as the second run has started (its folder exists): the first is finished then,
    # the second is not (a run takes far longer than one poll interval), whatever the machine's speed
    while not second.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # a hard kill, as a lost machine would do
    proc.wait()
    assert first.is_file()
    runs = sorted(out.rglob("seed*"))
    finished = {p: p.joinpath("metrics.json").stat().st_mtime_ns for p in runs if (p / "metrics.json").is_file()}
    assert 1 <= len(finished) < 3  # killed halfway
    assert main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 0
    for folder, mtime in finished.items():
        assert (folder / "metrics.json").stat().st_mtime_ns == mtime  # not redone
    assert all(run_state(out / "synthetic" / "sasrec" / "id" / f"seed{s}") == "done" for s in range(3))
    summary = json.loads((out / "sweep_summary.json").read_text())
    assert sorted(r["status"] for r in summary["runs"]) == sorted(["done"] * len(finished) +
                                                                  ["ok"] * (3 - len(finished)))


@pytest.mark.slow
def test_parallel_workers_run_subprocesses_and_collect_failures(tmp_path: Path):
    spec = parse_sweep(sweep({"train.seed": [0, 1]}, {"id": {"model.method": "id"},
                                                       "missing": {"model.method": "id",
                                                                   "data.dataset": str(tmp_path / "nope")}}))
    runs = expand(spec, tmp_path / "out", threads=1)
    outcomes = run_all(runs, tmp_path / "out", workers=2, progress=False)
    status = sorted((o.run.label, o.status) for o in outcomes)
    assert status == [("id", "ok"), ("id", "ok"), ("missing", "failed"), ("missing", "failed")]
    ok = next(r for r in runs if r.label == "id")
    assert (ok.folder / "sweep_config.yaml").is_file() and (ok.folder / "test_ranks.npy").is_file()
    failed = next(r for r in runs if r.label == "missing")
    assert "dataset folder not found" in (failed.folder / "error.txt").read_text()


def test_a_row_that_computes_another_rows_run_is_left_out(tmp_path: Path, capsys):
    """svd_frozen has a SASRec recipe and none on BERT4Rec: its shared-defaults row is a run of its
    own on SASRec and the same run as the svd_frozen row on BERT4Rec, which the sweep runs once."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep({"model.backbone": ["sasrec", "bert4rec"], "train.seed": [0]},
                                         {"svd_frozen": {"model.method": "svd_frozen"},
                                          "svd_frozen shared": {"model.method": "svd_frozen", "model.recipe": "none"},
                                          "other dim": {"model.method": "svd_frozen", "model.dim": 16}})))
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    captured = capsys.readouterr()
    listed = [line.split()[-1] for line in captured.out.splitlines()]
    assert len(listed) == 5 and not any("bert4rec/svd_frozen-shared" in f for f in listed)
    assert any("sasrec/svd_frozen-shared" in f for f in listed)
    assert "left out 1 run(s)" in captured.err and "'svd_frozen shared' repeats 'svd_frozen' (1 run)" in captured.err
    # a filter that keeps only the repeat runs nothing, and says why
    assert main(["sweep", str(path), "--out", str(out), "--filter", "backbone=bert4rec",
                 "--filter", "label=svd_frozen shared", "--no-progress"]) == 0
    assert "'svd_frozen shared' repeats 'svd_frozen'" in capsys.readouterr().err
    assert not (out / "synthetic" / "bert4rec" / "svd_frozen-shared").exists()


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_sweep_expands_to_distinct_run_folders(path, tmp_path):
    """The sweep files the docs tell users to run resolve into valid settings, one folder per run
    (two rows landing in one folder would resume each other's runs)."""
    runs = expand(load_sweep(path), tmp_path, threads=1)
    assert runs
    assert len({r.folder for r in runs}) == len(runs)
