"""Trials per hour of ``spectran tune`` with K worker processes on the built-in synthetic set.

A small SASRec (d = 16, 1 layer) on the synthetic dataset with the offline fake encoder,
svd_frozen, 10 epochs per trial at most (patience 3), median pruning after 3 epochs; the study runs
``--trials`` trials with ``--workers`` processes sharing one SQLite study. Prints the wall time
and trials per hour (complete + pruned over wall time, including process start-up), so the
figure is about this machine and this tiny model only.

    OMP_NUM_THREADS=1 python bench/bench_tune.py --workers 2 --trials 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SPACE = {
    "base": {"data": {"dataset": "synthetic", "max_len": 20}, "text": {"encoder": "fake"},
             "model": {"dim": 16, "method": "svd_frozen"}, "backbone": {"layers": 1, "heads": 1, "inner": 32},
             "train": {"epochs": 10, "patience": 3}, "eval": {"batch_size": 512}},
    "space": {"train.lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
              "train.batch_size": {"choices": [64, 128, 256]},
              "backbone.dropout": {"low": 0.1, "high": 0.5},
              "method.scale": {"low": 0.1, "high": 1.5}},
    "study": {"startup_trials": 3, "pruner": "median", "prune_startup_trials": 2, "prune_warmup_epochs": 3},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        space = root / "space.yaml"
        space.write_text(yaml.safe_dump(SPACE, sort_keys=False))
        env = {**os.environ, "SPECTRAN_CACHE": str(root / "cache")}
        # the data cache is built once before timing (as a real study finds it prepared)
        subprocess.run([sys.executable, "-m", "spectran", "prepare", "--dataset", "synthetic"], env=env,
                       check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "spectran", "tune", str(space), "--trials", str(args.trials),
                        "--out", str(root / "tune"), "--workers", str(args.workers)], env=env, check=True,
                       capture_output=True)
        wall = time.perf_counter() - t0
        summary = json.loads((root / "tune" / "tune.json").read_text())
    states = summary["states"]
    finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    print(f"workers {args.workers}, cpus {os.cpu_count()}: {finished} trials ({states}) in {wall:.1f} s, "
          f"{summary['epochs_trained']} epochs -> {finished / wall * 3600:.0f} trials per hour")


if __name__ == "__main__":
    main()
