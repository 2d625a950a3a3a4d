"""The run folder: its layout on disk, its states, its files read back typed, checkpoints that carry
their settings, and the settings that do not distinguish runs marked once, on their field."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_settings
from spectran.api import load_run, train
from spectran.cli import main
from spectran.errors import ConfigError, SpectranError
from spectran.experiments.collect import assign_variants, find_runs
from spectran.experiments.report import report
from spectran.runfolder import RESUMABLE, RunFolder, RunState
from spectran.runlock import run_lock
from spectran.settings import RunSettings, marked


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, RunSettings]:
    settings = tiny_settings(train={"epochs": 1})
    train(settings, tmp_path / "run")
    return tmp_path / "run", settings


def test_the_layout_on_disk_is_the_one_the_folder_names(finished):
    out, _ = finished
    run = RunFolder(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk >= {"config.yaml", "env.json", "data.json", "log.csv", "log.jsonl", "checkpoints/last.pt",
                       "checkpoints/best.pt", "valid_ranks.npy", "test_ranks.npy", "item_embeddings.npy",
                       "metrics.json"}
    named = [run.config, run.env, run.data, run.log_csv, run.log_jsonl, run.checkpoint("last"),
             run.checkpoint("best"), run.ranks("valid"), run.ranks("test"), run.item_embeddings, run.metrics]
    assert all(p.is_file() for p in named)
    assert run.sweep_config == out / "sweep_config.yaml" and run.error == out / "error.txt"
    with pytest.raises(SpectranError, match="checkpoint 'first': expected one of last, best"):
        run.checkpoint("first")


def test_the_states_of_a_folder(tmp_path: Path, finished):
    fresh = RunFolder(tmp_path / "never-made")
    assert fresh.state is RunState.PLANNED and fresh.describe() == "pending"
    planned = RunFolder(tmp_path / "planned")
    planned.path.mkdir()
    planned.write_sweep_config(tiny_settings())
    assert planned.state is RunState.PLANNED and planned.describe() == "pending"
    with run_lock(planned.path):
        assert planned.state is RunState.RUNNING and planned.describe() == "running"
    assert planned.state is RunState.PLANNED  # the holder ended: the lock is free again
    planned.write_error("error: it broke")
    assert planned.state is RunState.FAILED and planned.describe() == "failed"
    planned.clear_error()
    assert planned.state is RunState.PLANNED

    out, _ = finished
    done = RunFolder(out)
    assert done.state is RunState.FINISHED and done.describe() == "done" and done.epochs_logged() == 1
    with run_lock(out):  # metrics.json is written last: a run that has it is finished
        assert done.state is RunState.FINISHED
    done.unfinish()  # as if killed before its end: it resumes from `last`
    assert done.state is RunState.PLANNED and done.describe() == "partial (1 epochs)"


def test_the_typed_settings_read_back_equal_the_ones_written(finished):
    out, settings = finished
    run = RunFolder(out)
    assert run.read_settings() == settings
    assert run.read_metrics()["epochs"] == 1
    assert run.read_ranks("test").shape == (run.read_metrics()["protocol"]["users"],)
    (record,) = find_runs([out])
    assert record.settings == settings and record.settings.model.method == "id"
    assert record.label == "id" and record.seed == 0 and record.flat["model.dim"] == 16


def test_a_checkpoint_carries_its_settings(finished):
    out, settings = finished
    for name in ("last", "best"):
        state = torch.load(RunFolder(out).checkpoint(name), weights_only=True)
        assert state["settings"] == settings.to_dict()


def _edit_config(out: Path, section: str, key: str, value) -> None:
    config = yaml.safe_load((out / "config.yaml").read_text())
    config[section][key] = value
    (out / "config.yaml").write_text(yaml.safe_dump(config))


def test_a_checkpoint_of_another_run_is_refused_with_one_error_naming_the_setting(finished, tmp_path, capsys):
    out, _ = finished
    other = tmp_path / "other"
    shutil.copytree(out, other)
    _edit_config(other, "train", "lr", 0.01)  # the weights fit the model: only the settings tell
    with pytest.raises(ConfigError, match=r"best\.pt: checkpoint was trained with train\.lr=0\.001, the run's "
                                          r"config\.yaml has train\.lr=0\.01") as err:
        load_run(other)
    assert err.value.setting == "train.lr"
    assert main(["evaluate", str(other)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "train.lr" in lines[0]

    _edit_config(other, "train", "threads", 2)  # a setting that does not distinguish runs
    _edit_config(other, "train", "lr", 0.001)
    assert load_run(other).settings.train.threads == 2


def test_resuming_from_a_last_checkpoint_of_another_run_is_refused(finished, tmp_path):
    out, _ = finished
    stray = tmp_path / "stray"
    (stray / "checkpoints").mkdir(parents=True)
    shutil.copy(RunFolder(out).checkpoint("last"), RunFolder(stray).checkpoint("last"))
    with pytest.raises(ConfigError, match=r"last\.pt: checkpoint was trained with train\.lr=0\.001") as err:
        train(tiny_settings(train={"epochs": 2, "lr": 5e-4}), stray)
    assert err.value.setting == "train.lr"


def test_a_checkpoint_without_settings_still_loads(finished):
    out, settings = finished
    path = RunFolder(out).checkpoint("best")
    state = torch.load(path, weights_only=True)
    del state["settings"]  # as written before checkpoints carried their settings
    torch.save(state, path)
    assert load_run(out).settings == settings


def test_the_settings_that_do_not_distinguish_runs_come_from_the_field_metadata():
    marked_here = {f"{section}.{f.name}" for section in ("data", "text", "model", "train", "eval")
                   for f in dataclasses.fields(getattr(RunSettings(), section))
                   if f.metadata.get("distinguishes") is False}
    assert marked("distinguishes", False) == marked_here
    assert {"train.threads", "train.progress", "train.device", "eval.batch_size", "text.batch_size",
            "text.chunk_size"} <= marked_here
    assert "text.device" not in marked_here  # dtype auto: bf16/fp16 on CUDA, so vectors may differ
    assert "train.lr" not in marked_here and "train.lr" not in RESUMABLE
    assert marked("budget", True) == {"train.epochs", "train.max_seconds"} <= RESUMABLE


def test_threads_may_change_between_a_run_and_its_resume_but_the_learning_rate_may_not(finished):
    out, _ = finished
    RunFolder(out).unfinish()
    resumed = train(tiny_settings(train={"epochs": 2, "threads": 2}), out)
    assert resumed["epochs"] == 2
    assert RunFolder(out).read_settings().train.threads == 2
    with pytest.raises(ConfigError, match=r"holds a run with different settings \(train\.lr is 0\.001 there, "
                                          r"0\.0005 now\)") as err:
        train(tiny_settings(train={"epochs": 3, "lr": 5e-4}), out)
    assert err.value.setting == "train.lr"


def _fake_run(root: Path, name: str, seed: int, **train_settings) -> None:
    folder = RunFolder(root / name / f"seed{seed}")
    folder.path.mkdir(parents=True)
    raw = {"data": {"dataset": "toy"}, "model": {"method": "id"}, "train": {"seed": seed, **train_settings}}
    folder.config.write_text(yaml.safe_dump(raw))
    folder.metrics.write_text(json.dumps({"test": {"ndcg@10": 0.1 + seed / 10}, "protocol": {"dataset": "toy"}}))


def test_a_report_groups_runs_that_differ_only_in_marked_settings(tmp_path: Path):
    _fake_run(tmp_path, "a", 0, threads=1, device="cpu")
    _fake_run(tmp_path, "a", 1, threads=4, device="auto", progress=False)
    records = find_runs([tmp_path])
    assign_variants(records)
    assert {r.row for r in records} == {"id"}  # one configuration, two seeds
    _fake_run(tmp_path, "b", 0, lr=0.01)
    records = find_runs([tmp_path])
    assign_variants(records)
    assert {r.row for r in records} == {"id [lr=0.001]", "id [lr=0.01]"}
    _, cells, _ = report([tmp_path], ["ndcg@10"])
    assert {c["row"]: c["seeds"] for c in cells} == {"id [lr=0.001]": "0 1", "id [lr=0.01]": "0"}


def test_the_difference_named_first_is_the_setting_the_user_changed():
    from spectran.runfolder import differing_setting
    from spectran.settings import resolve

    base = {"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"}}
    stored = resolve({**base, "model": {"method": "id"}}).to_dict()
    # svd_frozen's recipe also changes backbone.dropout, train.lr, ...: the method is what was changed
    changed = resolve({**base, "model": {"method": "svd_frozen"}})
    assert changed.backbone.dropout != stored["backbone"]["dropout"]
    assert differing_setting(stored, changed)[0] == "model.method"
    # among the fixed sections' settings, model and data come before train
    other = resolve({**base, "model": {"method": "id", "dim": 32}, "train": {"lr": 5e-4}})
    assert differing_setting(stored, other)[:3] == ("model.dim", 64, 32)
