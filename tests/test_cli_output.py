"""What a person sees at the end of a sweep: one aligned row per run, finished or failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from spectran.cli import main

TINY = {"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"}, "model": {"dim": 8},
        "backbone": {"layers": 1, "heads": 1, "inner": 16}, "train": {"epochs": 1, "batch_size": 128, "threads": 1}}


def test_sweep_ends_with_a_table_of_finished_and_failed_runs(tmp_path: Path, capsys):
    spec = {"base": TINY, "grid": {"train.seed": [0]},
            "rows": {"id": {"model.method": "id"}, "missing": {"model.method": "id",
                                                               "data.dataset": str(tmp_path / "nope")}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    out = capsys.readouterr().out.splitlines()
    lines = out[next(i for i, line in enumerate(out) if line.startswith("run ")):]  # after the live log
    assert lines[0].split() == ["run", "status", "s", "test", "NDCG@10", "test", "Recall@10", "folder"]
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    done = tmp_path / "out" / "synthetic" / "sasrec" / "id" / "seed0"
    test = json.loads((done / "metrics.json").read_text())["test"]
    assert rows["id"][1] == "finished" and rows["id"][3:5] == [f"{test['ndcg@10']:.4f}", f"{test['recall@10']:.4f}"]
    assert rows["missing"][1] == "FAILED" and rows["missing"][3:5] == ["-", "-"]
    assert "1 failed" in lines[3]


def test_readme_python_example_is_the_quickstart_and_runs(tmp_path: Path):
    root = Path(__file__).resolve().parents[1]
    code = (root / "examples" / "quickstart.py").read_text().split('"""', 2)[2].strip("\n")
    readme = (root / "README.md").read_text()
    assert f"```python\n{code}\n```" in readme
    done = subprocess.run([sys.executable, str(root / "examples" / "quickstart.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    metrics = json.loads((tmp_path / "runs" / "quickstart" / "metrics.json").read_text())
    assert lines[0] == f"test NDCG@10 {round(metrics['test']['ndcg@10'], 4)} best epoch {metrics['best_epoch']}"
    assert lines[2].startswith("top 3 after items 1, 5, 9: [(")
