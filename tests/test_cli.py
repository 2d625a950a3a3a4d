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
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("best epoch 1 of 1 (")
    # one epoch, and it is the best: the run cannot have converged, and the summary says so
    assert lines[1].startswith("NOT CONVERGED: best epoch is the last one trained (1)")
    assert lines[2].split() == ["Recall@10", "NDCG@10", "Recall@20", "NDCG@20"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert lines[4].split() == ["test"] + [f"{metrics['test'][m]:.4f}" for m in
                                           ("recall@10", "ndcg@10", "recall@20", "ndcg@20")]
    assert lines[5] == "settings: id on sasrec, shared defaults"
    assert lines[6] == f"run folder: {out} (every metric in metrics.json)"
    # a second call finds the finished run; --json prints the metrics
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--dim", "16", "--seed", "3",
                 "--set", "train.threads=1", "--no-progress", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 1 and printed["test"] == metrics["test"]
    assert printed["converged"] is False and printed["recipe"] == "shared defaults"
    assert main(["evaluate", str(out), "--split", "valid"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["Recall@5", "NDCG@5", "MRR@5"] and table[2].split()[0] == "valid"
    assert main(["evaluate", str(out), "--split", "valid", "--json"]) == 0
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


def test_the_summary_names_the_recipe_a_run_used_and_a_converged_run_is_not_flagged(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--encoder", "fake", "--method", "svd_frozen", "--dim", "16",
                 "--epochs", "40", "--set", "train.patience=1", "--set", "train.lr=0.01",
                 "--set", "train.threads=1", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] - metrics["best_epoch"] == 1 and metrics["epochs"] < 40  # stopped by patience
    assert not any(line.startswith("NOT CONVERGED") for line in lines)
    recipe = next(line for line in lines if line.startswith("settings: "))
    assert recipe.startswith("settings: svd_frozen on sasrec, svd_frozen's sasrec recipe, 1 of its") \
        and "train.batch_size=256" in recipe and "train.lr" not in recipe  # --set train.lr replaced the recipe's


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "spectran", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "train" in done.stdout


def test_no_progress_keeps_one_line_per_epoch_and_ctrl_c_says_what_resumes(tmp_path, capsys, monkeypatch):
    from spectran.train.sinks import EpochLines

    out = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--epochs", "3", "--dim", "16", "--set", "train.threads=1",
            "--no-progress", "--out", str(out)]
    printed = EpochLines.log

    def interrupt_after_epoch_2(self, row):
        printed(self, row)
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochLines, "log", interrupt_after_epoch_2)
    assert main(args) == 130
    err = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in err if line.startswith("epoch")] == [["epoch", "1"], ["epoch", "2"]]
    saved = out / "checkpoints" / "last.pt"
    assert err[-1] == f"interrupted: epoch 2 is saved in {saved}; the same command resumes from it"
    monkeypatch.setattr(EpochLines, "log", printed)
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert f"resuming {out} after epoch 2 (best epoch so far" in err[0]
    assert [line.split()[:2] for line in err if line.startswith("epoch")] == [["epoch", "3"]]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3


def test_ctrl_c_before_the_first_epoch_says_the_run_starts_again(tmp_path, capsys, monkeypatch):
    import spectran.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(spectran.api, "train", interrupted)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--no-progress", "--out", str(out)]) == 130
    assert "interrupted before an epoch was saved" in capsys.readouterr().err


def test_version(capsys):
    import spectran

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"spectran {spectran.__version__}"
