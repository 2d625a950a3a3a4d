"""Training runs: exact repeatability, resume after an interruption, run-folder contents."""

from __future__ import annotations

import json

import numpy as np
import torch

from conftest import tiny_settings
from spectran.api import evaluate, train


def test_same_seed_gives_identical_metrics(tmp_path):
    a = train(tiny_settings(), tmp_path / "a")
    b = train(tiny_settings(), tmp_path / "b")
    assert a["valid"] == b["valid"] and a["test"] == b["test"]
    c = train(tiny_settings(train={"seed": 1}), tmp_path / "c")
    assert c["valid"] != a["valid"]


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    full = train(tiny_settings(train={"epochs": 4}), tmp_path / "full")
    # a run "killed" after epoch 2: its last checkpoint exists, its final files do not
    cut = tmp_path / "cut"
    train(tiny_settings(train={"epochs": 2}), cut)
    for name in ("metrics.json", "test_ranks.npy", "valid_ranks.npy", "item_embeddings.npy"):
        (cut / name).unlink()
    resumed = train(tiny_settings(train={"epochs": 4}), cut)
    assert resumed["test"] == full["test"] and resumed["valid"] == full["valid"]
    assert resumed["best_epoch"] == full["best_epoch"]
    log = [json.loads(line) for line in (cut / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]


def test_run_folder_has_the_spec_files(tmp_path):
    out = tmp_path / "run"
    m = train(tiny_settings(), out)
    for name in ("config.yaml", "env.json", "log.csv", "log.jsonl", "metrics.json", "test_ranks.npy",
                 "valid_ranks.npy", "item_embeddings.npy", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (out / name).is_file(), name
    for key in ("valid", "test", "best_epoch", "epochs", "train_seconds_per_epoch", "eval_seconds", "protocol"):
        assert key in m
    assert set(m["test"]) >= {f"{n}@{k}" for n in ("recall", "ndcg", "mrr") for k in (5, 10, 20)}
    ranks = np.load(out / "test_ranks.npy")
    assert ranks.min() >= 1 and ranks.max() <= m["protocol"]["items"]
    state = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert "model" in state
    # re-evaluating the best checkpoint reproduces the recorded test metrics
    assert evaluate(out, "test") == m["test"]


def test_history_exclusion_only_improves_ranks(tmp_path):
    base = train(tiny_settings(), tmp_path / "a")
    excl = train(tiny_settings(eval={"exclude_history": True}), tmp_path / "b")
    ra, rb = np.load(tmp_path / "a" / "test_ranks.npy"), np.load(tmp_path / "b" / "test_ranks.npy")
    assert (rb <= ra).all()
    assert excl["protocol"]["exclude_history"] is True and base["protocol"]["exclude_history"] is False


def test_resume_accepts_a_run_made_before_a_setting_existed_and_refuses_another_configuration(tmp_path):
    """A config.yaml lacking a setting added later means that setting's default; a real change is refused."""
    import pytest
    import yaml

    from spectran.errors import ConfigError

    cut = tmp_path / "cut"
    train(tiny_settings(train={"epochs": 1}), cut)
    config = yaml.safe_load((cut / "config.yaml").read_text())
    del config["model"]["unseen_ids"]  # as written before model.unseen_ids existed
    (cut / "config.yaml").write_text(yaml.safe_dump(config))
    (cut / "metrics.json").unlink()
    resumed = train(tiny_settings(train={"epochs": 2}), cut)
    assert resumed["epochs"] == 2
    with pytest.raises(ConfigError, match="holds a run with different settings"):
        train(tiny_settings(train={"epochs": 3, "lr": 5e-4}), cut)


class _Stop(Exception):
    pass


class _RecordingSink:
    """Records rows and whether it was closed; raises after ``stop_at`` epochs (a pruned trial)."""

    def __init__(self, stop_at: int | None = None):
        self.rows: list[dict] = []
        self.closed = False
        self.stop_at = stop_at

    def log(self, row: dict) -> None:
        self.rows.append(row)
        if self.stop_at is not None and row["epoch"] >= self.stop_at:
            raise _Stop(row["epoch"])

    def close(self) -> None:
        self.closed = True


def test_a_sink_that_ends_the_run_closes_every_sink_and_leaves_the_epoch_resumable(tmp_path):
    import pytest

    out = tmp_path / "run"
    quiet, stopper = _RecordingSink(), _RecordingSink(stop_at=2)
    with pytest.raises(_Stop):
        train(tiny_settings(train={"epochs": 4}), out, sinks=[quiet, stopper])
    assert quiet.closed and stopper.closed
    assert [r["epoch"] for r in stopper.rows] == [1, 2]
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 2  # the epoch the sink ended is saved: a resume does not repeat it
    resumed = train(tiny_settings(train={"epochs": 4}), out)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    assert resumed["test"] == train(tiny_settings(train={"epochs": 4}), tmp_path / "full")["test"]


def test_min_epochs_holds_early_stopping_off_until_that_epoch(tmp_path):
    """A plateau at the start must not end the run: patience counts only from train.min_epochs on."""
    lr_tiny = {"lr": 1e-7, "patience": 1, "epochs": 30}  # validation barely moves: patience 1 stops at once
    plain = train(tiny_settings(train=lr_tiny), tmp_path / "plain")
    held = train(tiny_settings(train={**lr_tiny, "min_epochs": 6}), tmp_path / "held")
    assert plain["epochs"] < 6
    assert held["epochs"] >= 6 and held["epochs"] - held["best_epoch"] >= 1
    log = json.loads((tmp_path / "held" / "log.jsonl").read_text().splitlines()[-1])
    assert log["epoch"] == held["epochs"]


def test_a_run_whose_best_epoch_is_its_first_is_flagged():
    from spectran.runfolder import not_converged

    assert "never rose above its first epoch" in not_converged({"epochs": 11, "best_epoch": 1}, 10)
    assert not_converged({"epochs": 30, "best_epoch": 20}, 10) is None
    assert not_converged({"epochs": 1, "best_epoch": 1}, 10).startswith("best epoch is the last")
