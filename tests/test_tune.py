"""spectran tune: trials recorded as run folders, pruning, resume after SIGKILL, two workers on
one SQLite study, best.yaml + retests + report, and bad space files refused before any trial."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from spectran.cli import main
from spectran.encoders.registry import method_names, method_spec
from spectran.errors import ConfigError, SpectranError
from spectran.experiments.report import report
from spectran.experiments.sweep import expand, load_sweep
from spectran.settings import TrainSettings, resolve
from spectran.tune.run import TuneOptions, tune
from spectran.tune.space import Range, load_space

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason="spectran tune needs the tune extra (pip install 'spectran[tune]')")

BASE = {"data": {"dataset": "synthetic", "max_len": 20}, "text": {"encoder": "fake"},
        "model": {"dim": 8, "method": "id"}, "backbone": {"layers": 1, "heads": 1, "inner": 16},
        "train": {"epochs": 2, "batch_size": 128, "threads": 1}, "eval": {"batch_size": 512}}
SPACE = {"train.lr": {"low": 1.0e-3, "high": 1.0e-2, "log": True},
         "backbone.dropout": {"low": 0.1, "high": 0.5},
         "train.batch_size": {"choices": [64, 128]}}
ROOT = Path(__file__).resolve().parents[1]


def write_space(tmp: Path, space=None, study=None, base=None, name="space.yaml") -> Path:
    doc = {"base": base or BASE, "space": space or SPACE, "study": study or {"pruner": "none", "startup_trials": 2}}
    path = tmp / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load_study(out: Path):
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    return optuna.load_study(study_name=out.name, storage=storage)


def quiet(line: str) -> None:
    """Trial lines are not needed by the tests."""


@needs_optuna
def test_four_trials_are_recorded_as_run_folders_with_best_yaml_retest_and_report(tmp_path: Path):
    out = tmp_path / "tune"
    space = write_space(tmp_path)
    summary = tune(space, TuneOptions(trials=4, out=out, retest=2), log=quiet)
    study = load_study(out)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    for t in trials:  # each trial is an ordinary run folder with the trial's settings
        folder = out / t.user_attrs["run_dir"]
        assert folder == out / "trials" / f"{t.number:04d}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["valid"]["ndcg@10"] == pytest.approx(t.value)
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["train"]["lr"] == t.params["train.lr"] and cfg["train"]["batch_size"] == t.params["train.batch_size"]
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4
    best = max(trials, key=lambda t: t.value)
    assert summary["best"]["trial"] == best.number and summary["states"] == {"COMPLETE": 4}
    tuned = resolve(yaml.safe_load((out / "best.yaml").read_text()))  # a ready config
    assert tuned.train.lr == best.params["train.lr"] and tuned.backbone.dropout == best.params["backbone.dropout"]
    assert tuned.train.progress is True  # trial bookkeeping is not part of the config
    retests = [json.loads((out / "retest" / f"seed{s}" / "metrics.json").read_text())["test"] for s in (0, 1)]
    assert summary["retest"]["test"]["ndcg@10"][0] == pytest.approx((retests[0]["ndcg@10"] + retests[1]["ndcg@10"]) / 2)
    markdown, cells, _ = report([out])
    assert "## Tuning" in markdown and "| id | 4 trials | 4 / 0 / 0 |" in markdown
    (cell,) = [c for c in cells if c["metric"] == "ndcg@10"]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(summary["retest"]["test"]["ndcg@10"][0])

    mtime = (out / "trials" / "0000" / "metrics.json").stat().st_mtime_ns
    tune(space, TuneOptions(trials=4, out=out, retest=2), log=quiet)  # finished: nothing runs again
    assert len(load_study(out).get_trials()) == 4
    assert (out / "trials" / "0000" / "metrics.json").stat().st_mtime_ns == mtime
    other = write_space(tmp_path, space={"train.lr": {"low": 1.0e-4, "high": 1.0e-2}}, name="other.yaml")
    with pytest.raises(ConfigError, match="was made from another space"):
        tune(other, TuneOptions(trials=4, out=out), log=quiet)


@needs_optuna
def test_a_trial_the_pruner_stops_is_recorded_as_pruned(tmp_path: Path):
    out = tmp_path / "tune"
    # NDCG@10 is never above 1.1: the threshold pruner must stop every trial after its first epoch
    space = write_space(tmp_path, study={"pruner": "threshold", "prune_below": 1.1})
    with pytest.raises(SpectranError, match="no trial of study 'tune' completed"):
        tune(space, TuneOptions(trials=2, out=out), log=quiet)
    trials = load_study(out).get_trials()
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    for t in trials:
        assert list(t.intermediate_values) == [1]  # reported once, then stopped
        folder = out / t.user_attrs["run_dir"]
        assert len((folder / "log.jsonl").read_text().splitlines()) == 1
        assert not (folder / "metrics.json").exists()


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "spectran", "tune", *args], env=env, cwd=kw.get("cwd"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@needs_optuna
def test_a_killed_study_resumes_without_rerunning_finished_trials(tmp_path: Path):
    out = tmp_path / "tune"
    base = {**BASE, "train": {**BASE["train"], "epochs": 4}}
    space = write_space(tmp_path, base=base)
    args = [str(space), "--trials", "3", "--out", str(out), "--heartbeat", "1"]
    proc = _cli(args)
    deadline = time.time() + 300
    while not (out / "trials" / "0001").exists():  # trial 0 finished, trial 1 started
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = (out / "trials" / "0000" / "metrics.json").stat().st_mtime_ns
    assert load_study(out).get_trials()[1].state.name == "RUNNING"  # its worker is dead, nobody told the study

    again = _cli(args)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    trials = load_study(out).get_trials()
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # the stale trial failed, the study went on
    assert (out / "trials" / "0000" / "metrics.json").stat().st_mtime_ns == finished  # not trained again
    assert not (out / "trials" / "0001" / "metrics.json").exists()
    assert (out / "best.yaml").is_file()


@needs_optuna
def test_two_workers_on_one_sqlite_study_split_the_budget(tmp_path: Path):
    out = tmp_path / "tune"
    space = write_space(tmp_path)
    proc = _cli([str(space), "--trials", "4", "--out", str(out), "--workers", "2", "--heartbeat", "2"])
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    trials = load_study(out).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4 and all(t.user_attrs.get("surplus") for t in trials if t not in finished)
    folders = [t.user_attrs["run_dir"] for t in finished]  # a surplus trial ends before it has a folder
    assert len(set(folders)) == len(finished) == len(list((out / "trials").iterdir()))
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == 4  # workers draw different trials
    for i in (0, 1):  # both workers ran trials
        assert "trial " in (out / "workers" / f"worker{i}.log").read_text()


ASK = """
import json, sys, time
from spectran.tune.study import StudyPlace, import_optuna, open_storage
optuna = import_optuna()
study = optuna.load_study(storage=open_storage(StudyPlace(sys.argv[1], "s")), study_name="s")
while time.time() < float(sys.argv[2]):
    pass  # both processes ask at the same moment
print(json.dumps([study.ask().number for _ in range(int(sys.argv[3]))]))
"""


@needs_optuna
def test_two_workers_asking_at_once_never_take_the_same_waiting_trial(tmp_path: Path):
    from spectran.tune.study import StudyPlace, import_optuna, open_storage

    url, asks = f"sqlite:///{tmp_path / 'study.db'}", 20
    study = import_optuna().create_study(storage=open_storage(StudyPlace(url, "s")), study_name="s")
    for i in range(2 * asks):  # enqueued trials are what a worker pops (the base trial is one)
        study.enqueue_trial({"x": float(i)})
    start = time.time() + 3  # both interpreters are up by then
    procs = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", ASK, url, str(start), str(asks)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    numbers = [n for p in procs for n in json.loads(p.communicate(timeout=120)[0])]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(numbers) == list(range(2 * asks))  # each waiting trial went to exactly one worker


@pytest.mark.parametrize("space, message", [
    ({"train.learning_rate": {"low": 0.001, "high": 0.01}}, r"space\.train\.learning_rate: unknown setting "
                                                            r"'learning_rate' in train"),
    ({"train.lr": {"low": 0.01, "high": 0.001}}, r"space\.train\.lr: empty range"),
    ({"train.batch_size": {"choices": []}}, r"space\.train\.batch_size: choices: expected a non-empty list"),
    ({"train.batch_size": {"low": 32.5, "high": 64}}, r"space\.train\.batch_size: an integer setting needs "
                                                      r"integer low and high"),
    ({"train.lr": {"choices": ["fast", 0.01]}}, r"space\.train\.lr: value 'fast': train\.lr: expected a "
                                                r"finite number"),
    ({"train.loss": {"low": 0, "high": 1}}, r"space\.train\.loss: low/high need a number setting"),
    ({"method.scale": {"low": 0.1, "high": 1.0}}, r"space\.method\.scale: unknown setting 'scale' in method"),
])
def test_a_bad_space_is_one_error_before_any_trial(tmp_path: Path, capsys, space, message):
    path = write_space(tmp_path, space=space)
    out = tmp_path / "tune"
    assert main(["tune", str(path), "--trials", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: ")
    assert re.search(message, err), err
    assert not out.exists()  # nothing was written


def test_without_optuna_the_error_names_the_extra(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(["tune", str(write_space(tmp_path)), "--trials", "2", "--out", str(tmp_path / "t")]) == 2
    assert "pip install 'spectran[tune]'" in capsys.readouterr().err


def test_every_ready_space_in_sweeps_tune_parses_with_the_same_budget_knobs():
    files = sorted((ROOT / "sweeps" / "tune").glob("*.yaml"))
    methods = {load_space(f).method for f in files}
    assert methods == {"id", "mlp", "moe", "whiten_mlp", "rlmrec", "llmesr", "pca_init", "svd_frozen",
                       "alphafuse", "spectran"}
    for f in files:
        space = load_space(f)
        keys = {r.key for r in space.ranges}
        assert {"train.lr", "backbone.dropout", "train.weight_decay", "train.batch_size"} <= keys, f
        assert len(keys) > 4, f"{f}: no setting of the method itself"
        s = resolve(space.base)
        assert (s.data.dataset, s.model.backbone, s.model.dim, s.text.encoder) == ("office", "sasrec", 64, "minilm")


def test_each_method_recipe_is_the_row_its_beauty_check_ran(tmp_path: Path):
    runs = {run.label: run.settings for run in expand(load_sweep(ROOT / "sweeps" / "tuned_beauty.yaml"), tmp_path)
            if run.settings.train.seed == 0}
    with_recipe = {name for name in method_names() if method_spec(name).recipes}
    assert with_recipe == {"svd_frozen", "spectran", "rlmrec"}
    for name in with_recipe:
        checked = runs[name]
        default = resolve({"data": {"dataset": "beauty"}, "model": {"method": name}})
        assert default.model.recipe == "method" and set(method_spec(name).recipes) == {"sasrec"}
        train = dataclasses.replace(default.train, progress=checked.train.progress)  # the sweep runs without a bar
        assert (train, default.backbone, default.method) == (checked.train, checked.backbone, checked.method)
        shared = resolve({"model": {"method": name, "recipe": "none"}})
        assert shared.train.lr == TrainSettings().lr and shared.method == method_spec(name).settings()


@needs_optuna
def test_a_missing_dataset_is_one_error_before_the_study_exists(tmp_path: Path, capsys):
    base = {**BASE, "data": {"dataset": str(tmp_path / "no_such_dataset")}}
    out = tmp_path / "tune"
    assert main(["tune", str(write_space(tmp_path, base=base)), "--trials", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_dataset" in err
    assert not out.exists()


@needs_optuna
def test_a_new_study_starts_with_the_base_itself_unless_a_base_value_is_outside_the_space(tmp_path: Path):
    defaults = resolve(BASE)
    out = tmp_path / "tune"
    summary = tune(write_space(tmp_path), TuneOptions(trials=2, out=out), log=quiet)
    first, second = load_study(out).get_trials()
    assert first.params == {"train.lr": defaults.train.lr, "backbone.dropout": defaults.backbone.dropout,
                            "train.batch_size": defaults.train.batch_size}
    assert first.user_attrs["base"] is True and "base" not in second.user_attrs
    assert summary["best"]["base"] == (summary["best"]["trial"] == 0)
    trained = yaml.safe_load((out / "trials" / "0000" / "config.yaml").read_text())
    assert trained["train"]["lr"] == defaults.train.lr  # the base trial is the base's run

    lines: list[str] = []  # a base value the space cannot draw: no base trial, and one line says why
    narrow = {**SPACE, "train.lr": {"low": defaults.train.lr * 2, "high": defaults.train.lr * 10}}
    tune(write_space(tmp_path, space=narrow, name="narrow.yaml"), TuneOptions(trials=1, out=tmp_path / "n"),
         log=lines.append)
    assert "base" not in load_study(tmp_path / "n").get_trials()[0].user_attrs
    assert any(f"no base trial: space.train.lr: the base value {defaults.train.lr!r} is outside the range" in ln
               for ln in lines), lines

    off = write_space(tmp_path, study={"pruner": "none", "startup_trials": 2, "base_trial": False}, name="off.yaml")
    tune(off, TuneOptions(trials=1, out=tmp_path / "off"), log=quiet)
    assert "base" not in load_study(tmp_path / "off").get_trials()[0].user_attrs


def test_a_range_contains_exactly_the_values_it_can_draw():
    floats, odd = Range("k", "float", low=0.1, high=0.5), Range("k", "int", low=1, high=9, step=2)
    assert floats.contains(0.1) and floats.contains(0.5) and not floats.contains(0.6)
    assert odd.contains(5) and not odd.contains(4)
    assert not Range("k", "int", low=1, high=9).contains(2.0) and not Range("k", "float", low=0, high=1).contains(True)
    choice = Range("k", "choice", choices=(64, "none", None))
    assert choice.contains(64) and choice.contains(None) and not choice.contains(64.0) and not choice.contains("64")


@needs_optuna
def test_cli_takes_set_like_train_and_ends_with_a_summary_table(tmp_path: Path, capsys):
    out = tmp_path / "tune"
    args = ["tune", str(write_space(tmp_path)), "--trials", "2", "--out", str(out), "--retest", "1",
            "--set", "train.epochs=1", "--set", "model.dim=16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"study {out.name}: complete 2 (budget 2 finished trials)")
    assert "valid ndcg@10" in printed and "train.lr" in printed and "best.yaml retrained with 1 seed(s)" in printed
    assert "{" not in printed  # a table, not a JSON dump
    trained = yaml.safe_load((out / "trials" / "0000" / "config.yaml").read_text())
    assert (trained["train"]["epochs"], trained["model"]["dim"]) == (1, 16)  # --set reached the trials
    assert "# spectran tune --set model.dim=16" in (out / "space.yaml").read_text()
    assert main(args + ["--json"]) == 0  # finished: nothing runs again, the summary as JSON
    assert json.loads(capsys.readouterr().out)["study"] == out.name
    assert main(args[:-2] + ["--set", "model.dim=32"]) == 2  # another base is another study
    assert "was made from another space" in capsys.readouterr().err
    assert main(["tune", str(write_space(tmp_path)), "--trials", "1", "--out", str(tmp_path / "b"),
                 "--set", "train.epochs=zero"]) == 2
    assert "train.epochs" in capsys.readouterr().err
