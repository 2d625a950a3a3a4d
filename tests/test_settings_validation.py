"""Settings are validated before anything is read or written: ranges, types, combinations and
contradictory flags are one `error:` line naming the setting, where its value came from and what
was expected; numbers are read in every form YAML and users write (issue classes 2, 3, 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import tiny_settings
from spectran.api import train
from spectran.cli import main
from spectran.errors import ConfigError
from spectran.settings import load_yaml, resolve


def _spectran(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real ``spectran`` command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "spectran", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=180, check=False)


def _refused(proc: subprocess.CompletedProcess, out: Path, *expected: str) -> str:
    return _one_line(proc.returncode, proc.stderr, out, *expected)


def _one_line(code: int, stderr: str, out: Path, *expected: str) -> str:
    err = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in stderr
    for part in expected:
        assert part in err[0], (part, err[0])
    assert not out.exists(), "a refused run left a folder behind"
    return err[0]


TRAIN = ["train", "--dataset", "synthetic", "--encoder", "fake", "--no-progress", "--set", "train.threads=1"]


@pytest.mark.parametrize("args, expected", [
    # class 2: settings that would train nothing or the wrong thing
    (["--epochs", "0"], ["--epochs 0: train.epochs: expected an integer >= 1, got 0"]),
    (["--set", "train.patience=0"], ["--set train.patience=0: train.patience: expected an integer >= 1"]),
    (["--set", "train.batch_size=-4"], ["train.batch_size: expected an integer >= 1, got -4"]),
    (["--dim", "32", "--set", "model.dim=16"], ["--dim 32 and --set model.dim=16 give model.dim different values"]),
    # class 3: settings that used to crash late
    (["--set", "train.lr=-0.1"], ["train.lr: expected a learning rate > 0, got -0.1"]),
    (["--set", "eval.batch_size=0"], ["eval.batch_size: expected an integer >= 1, got 0"]),
    (["--set", "train.loss=sampled", "--set", "train.num_negatives=0"],
     ["train.num_negatives: expected an integer >= 1"]),
    (["--set", "eval.ks=[5,20]"], ["eval.select_metric: expected a cut-off K listed in eval.ks [5, 20]"]),
    (["--set", "eval.select_metric=auc@10"], ["eval.select_metric: expected ndcg@K, recall@K or mrr@K, got 'auc@10'"]),
    (["--set", "backbone.dropout=2"], ["backbone.dropout: expected a dropout probability in [0, 1), got 2.0"]),
    (["--dim", "30", "--set", "backbone.heads=4"], ["backbone.heads: expected a divisor of model.dim=30, got 4"]),
    # class 5: the message names the true source of the value
    (["--set", "train.lr=fast"], ["--set train.lr=fast: train.lr: expected a finite number, got 'fast'"]),
    (["--epochs", "two"], ["--epochs two: train.epochs: expected an integer, got 'two'"]),
])
def test_a_bad_setting_is_refused_before_anything_is_written(tmp_path, capsys, args, expected):
    out = tmp_path / "run"
    code = main([*TRAIN, *args, "--out", str(out)])
    _one_line(code, capsys.readouterr().err, out, *expected)


@pytest.mark.parametrize("args, expected", [
    (["--epochs", "-1"], "error: --epochs -1: train.epochs: expected an integer >= 1, got -1"),
    (["--dim", "32", "--set", "model.dim=16"], "error: --dim 32 and --set model.dim=16 give model.dim different "
                                               "values (give one of them)"),
])
def test_the_spectran_command_refuses_bad_settings(tmp_path, args, expected):
    out = tmp_path / "run"
    assert _refused(_spectran(*TRAIN, *args, "--out", str(out)), out) == expected


def test_cuda_without_cuda_is_refused_up_front(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: train.device=cuda is valid here")
    out = tmp_path / "run"
    code = main([*TRAIN, "--set", "train.device=cuda", "--out", str(out)])
    _one_line(code, capsys.readouterr().err, out,
              "train.device: expected auto or cpu on this machine (CUDA is not available), got 'cuda'")


def test_the_corrected_command_runs_after_a_refused_one(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([*TRAIN, "--epochs", "1", "--set", "backbone.heads=3", "--out", str(out)])
    _one_line(code, capsys.readouterr().err, out, "backbone.heads")
    assert main([*TRAIN, "--epochs", "1", "--dim", "16", "--out", str(out)]) == 0
    assert (out / "metrics.json").is_file()


def test_numbers_in_yaml_and_set_in_every_form(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  lr: 1e-3\n  weight_decay: 5E-5\n  epochs: 1e1\n  batch_size: 1_024\n")
    s = resolve(load_yaml(config))
    assert (s.train.lr, s.train.weight_decay, s.train.epochs, s.train.batch_size) == (1e-3, 5e-5, 10, 1024)
    out = tmp_path / "run"
    proc = _spectran(*TRAIN, "--config", str(config), "--set", "train.lr=5e-4", "--epochs", "1e0",
                     "--dim", "16", "--set", "model.dim=1.6e1", "--out", str(out))  # the flag and --set agree
    assert proc.returncode == 0, proc.stderr
    stored = load_yaml(out / "config.yaml")
    assert (stored["train"]["lr"], stored["train"]["epochs"], stored["model"]["dim"]) == (5e-4, 1, 16)


def test_an_error_names_the_config_file_only_for_values_it_holds(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 0\n  lr: 1e-3\n")
    out = tmp_path / "run"
    code = main([*TRAIN, "--config", str(config), "--out", str(out)])
    from_file = _one_line(code, capsys.readouterr().err, out)
    assert from_file == f"error: {config}: train.epochs: expected an integer >= 1, got 0"
    code = main([*TRAIN, "--config", str(config), "--set", "train.epochs=1", "--set", "train.lr=-1", "--out", str(out)])
    from_set = _one_line(code, capsys.readouterr().err, out)
    assert from_set == "error: --set train.lr=-1: train.lr: expected a learning rate > 0, got -1.0"


@pytest.mark.parametrize("raw, message", [
    ({"train": {"epochs": -1}}, "train.epochs: expected an integer >= 1"),
    ({"train": {"epochs": 2.5}}, "train.epochs: expected an integer, got 2.5"),
    ({"train": {"lr": float("nan")}}, "train.lr: expected a finite number"),
    ({"train": {"lr": True}}, "train.lr: expected a finite number, got True"),
    ({"train": {"device": "gpu0"}}, "train.device: expected auto, cpu, cuda or cuda:N"),
    ({"train": {"seed": -1}}, "train.seed: expected an integer in 0..2^32-1"),
    ({"train": {"max_seconds": -5}}, "train.max_seconds: expected a number of seconds >= 0"),
    ({"eval": {"ks": []}}, "eval.ks: expected a non-empty list of integers >= 1"),
    ({"eval": {"ks": [10, 10]}}, "eval.ks: expected distinct cut-offs"),
    ({"data": {"max_len": 1}}, "data.max_len: expected an integer >= 2"),
    ({"data": {"min_len": 2}}, "data.min_len: expected an integer >= 3"),
    ({"model": {"dim": 0}}, "model.dim: expected an integer >= 1"),
    ({"text": {"batch_size": 0}}, "text.batch_size: expected an integer >= 1"),
    ({"text": {"normalize": "l2"}}, "text.normalize: expected true/false or one of ['standard'], got 'l2'"),
    ({"backbone": {"layers": 0}}, "backbone.layers: expected an integer >= 1"),
    ({"model": {"backbone": "bert4rec"}, "backbone": {"mask_ratio": 1.0}},
     "backbone.mask_ratio: expected a probability"),
    ({"model": {"method": "mlp"}, "method": {"dropout": -0.1}}, "method.dropout: expected a dropout probability"),
    ({"model": {"method": "moe"}, "method": {"experts": 0}}, "method.experts: expected an integer >= 1"),
    ({"model": {"method": "moe"}, "method": {"init_std": -1}}, "method.init_std: expected a standard deviation >= 0"),
    ({"backbone": {"inner": 0}}, "backbone.inner: expected an integer >= 1"),
    ({"model": {"method": "spectran"}, "method": {"min_signal_share": 1.5}},
     "method.min_signal_share: expected a fraction in [0, 1], got 1.5"),
])
def test_ranges_and_types_are_checked_by_resolve(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(raw)


def test_settings_changed_in_python_are_validated_by_train(tmp_path):
    s = tiny_settings()
    s.train.epochs = 0
    with pytest.raises(ConfigError, match=re.escape("train.epochs: expected an integer >= 1")):
        train(s, tmp_path / "run")
    assert not (tmp_path / "run").exists()
