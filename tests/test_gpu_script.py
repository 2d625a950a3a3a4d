"""bench/gpu.sh end to end with DEVICE=cpu: synthetic data, a tiny grid, the budget stop, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEP = """
base:
  data: {dataset: synthetic, max_len: 20}
  text: {encoder: fake}
  model: {dim: 16, backbone: sasrec}
  backbone: {layers: 1}
  train: {epochs: 2, batch_size: 128, patience: 100}
grid:
  train.seed: [0, 1]
rows:
  id: {model.method: id}
  svd_frozen: {model.method: svd_frozen}
"""


def _gpu_sh(out: Path, sweep: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE": "cpu", "SWEEP": str(sweep), "SPECTRAN_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(out)], capture_output=True, text=True,
                          env=env, timeout=600, check=False, cwd=ROOT)


@pytest.fixture
def sweep(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SWEEP)
    return path


def test_gpu_script_runs_the_grid_on_cpu(tmp_path, sweep):
    out = tmp_path / "out"
    proc = _gpu_sh(out, sweep, tmp_path, WORKERS="2")  # subprocess workers, as on the GPU
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "every run of the grid finished" in proc.stdout
    assert "skipped" in (out / "tests_cuda.txt").read_text()  # no CUDA here: skipped with the reason
    done = sorted(p.parent.relative_to(out / "runs") for p in (out / "runs").rglob("metrics.json"))
    assert [str(p) for p in done] == ["synthetic/sasrec/id/seed0", "synthetic/sasrec/svd_frozen/seed0"]
    summary = json.loads((out / "runs" / "sweep_summary.json").read_text())
    assert {r["status"] for r in summary["runs"]} == {"ok"}
    assert "svd_frozen" in (out / "report.md").read_text()
    kept = sorted(str(p.parent.relative_to(out / "archive")) for p in (out / "archive").rglob("ranks.npz"))
    assert kept == [str(p) for p in done]  # the results without weights, what is committed
    config = (out / "runs" / "synthetic" / "sasrec" / "id" / "seed0" / "config.yaml").read_text()
    assert "device: cpu" in config


def test_gpu_script_stops_at_its_budget_and_resumes(tmp_path, sweep):
    out = tmp_path / "out"
    first = _gpu_sh(out, sweep, tmp_path, SWEEP_S="1")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "budget reached" in first.stdout
    assert len(list((out / "runs").rglob("metrics.json"))) < 2
    second = _gpu_sh(out, sweep, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert len(list((out / "runs").rglob("metrics.json"))) == 2
    assert (out / "report.md").is_file()


def test_gpu_script_reads_carried_matrices_one_per_dataset(tmp_path, sweep):
    """The GPU machine cannot encode: the matrices travel as OUT/{dataset}.npy, named by one setting."""
    carry = tmp_path / "carry"
    env = {**os.environ, "SPECTRAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT / "src")}
    made = subprocess.run([sys.executable, str(ROOT / "bench" / "carry_embeddings.py"), "--encoder", "fake",
                           "--datasets", "synthetic", "--out", str(carry), "--fp16"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert made.returncode == 0, made.stderr[-2000:]
    assert json.loads((carry / "manifest.json").read_text())["files"]["synthetic"]["shape"] == [120, 32]
    out = tmp_path / "out"
    proc = _gpu_sh(out, sweep, tmp_path, TEXT_ENCODER=f"npy:{carry}/{{dataset}}.npy", FILTERS="seed=0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = (out / "runs" / "synthetic" / "sasrec" / "svd_frozen" / "seed0" / "config.yaml").read_text()
    assert "{dataset}.npy" in config
    assert len(list((out / "runs").rglob("metrics.json"))) == 2
