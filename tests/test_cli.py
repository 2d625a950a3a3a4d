"""The CLI: the main job runs end to end; bad input gives one clear line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from spectran.cli import main


def test_train_and_evaluate_on_synthetic(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "synthetic", "--epochs", "1", "--dim", "16", "--seed", "3",
               "--set", "train.threads=1", "--no-progress", "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 1
    assert main(["evaluate", str(out), "--split", "valid"]) == 0
    assert "ndcg@10" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, message", [
    (["--set", "train.bogus=1"], "train: unknown setting 'bogus'"),
    (["--method", "nonsense"], "unknown method 'nonsense'"),
    (["--dataset", "missing-set", "--data-dir", "{tmp}"], "dataset folder not found"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc = main(["train", "--dataset", "synthetic", *args, "--out", str(out)] if "--dataset" not in args
              else ["train", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists()


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "spectran", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "train" in done.stdout
