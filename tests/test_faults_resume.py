"""Faults: SIGKILL at random points (during epochs, inside a checkpoint write) never changes the
final metrics, and a truncated or corrupt checkpoint is refused with a clear error."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spectran.cli import main
from spectran.train.checkpoint import load_checkpoint

ARGS = ["-m", "spectran", "train", "--dataset", "synthetic", "--epochs", "4", "--no-progress",
        "--set", "train.batch_size=32", "--set", "train.threads=1", "--set", "model.dim=16"]
SRC = Path(__file__).resolve().parents[1] / "src"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SPECTRAN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def _finish(out: Path, tmp_path: Path) -> dict:
    proc = subprocess.run([sys.executable, *ARGS, "--out", str(out)], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


def _same(a: dict, b: dict) -> None:
    assert a["valid"] == b["valid"] and a["test"] == b["test"]
    assert a["best_epoch"] == b["best_epoch"] and a["epochs"] == b["epochs"]


@pytest.mark.slow
def test_sigkill_at_random_times_resumes_to_the_same_metrics(tmp_path):
    start = time.monotonic()
    reference = _finish(tmp_path / "ref", tmp_path)
    span = time.monotonic() - start  # kill times are fractions of a whole run on this machine
    out, rng, kills = tmp_path / "killed", random.Random(8), 0
    while kills < 4 and not (out / "metrics.json").exists():
        proc = subprocess.Popen([sys.executable, *ARGS, "--out", str(out)], env=_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 0.9) * span)  # startup, an epoch, a checkpoint write or the final eval
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        elif kills == 0:  # finished before the first kill (a fast moment): start again, earlier
            proc.wait()
            shutil.rmtree(out)
            span /= 2
            continue
        proc.wait()
        for f in out.glob("checkpoints/*.pt"):
            load_checkpoint(f)  # whatever the kill left under a final name is complete
    assert kills >= 1
    _same(_finish(out, tmp_path), reference)


# A child that stops inside the atomic write of `last` (the partial bytes are on disk, not yet
# renamed) and waits there to be killed.
_STALL_IN_WRITE = """
import os, sys, time
from pathlib import Path
import torch
import spectran.train.checkpoint as ck
real_save = torch.save
def slow_save(obj, f, *a, **k):
    real_save(obj, f, *a, **k)
    if "last" in Path(f).name and int(obj["epoch"]) == 2:
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)  # as if killed half-way through the bytes
        Path(sys.argv[1]).write_text("in write")
        time.sleep(600)
ck.torch.save = slow_save
from spectran.cli import main
from spectran.train.checkpoint import load_checkpoint
raise SystemExit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path):
    reference = _finish(tmp_path / "ref", tmp_path)
    out, marker = tmp_path / "killed", tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _STALL_IN_WRITE, str(marker), *ARGS[2:], "--out", str(out)],
                            env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the child never reached the checkpoint write"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the complete previous one
    assert list((out / "checkpoints").glob(".last.pt.*.tmp"))  # the half-written bytes never got the name
    _same(_finish(out, tmp_path), reference)


def test_truncated_last_checkpoint_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--epochs", "1", "--no-progress", "--set", "model.dim=16",
            "--set", "train.threads=1", "--out", str(out)]
    assert main(args) == 0
    last = out / "checkpoints" / "last.pt"
    (out / "metrics.json").unlink()  # as if killed before the end
    data = last.read_bytes()
    last.write_bytes(data[:len(data) // 3])
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(last) in err[0]
    assert "truncated or corrupt" in err[0]
    assert not (out / "metrics.json").exists()


def test_a_pickled_object_in_a_checkpoint_is_not_executed(tmp_path):
    import torch

    from spectran.errors import CacheError

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Evil()}, path)
    with pytest.raises(CacheError, match=r"evil\.pt"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_every_torch_load_is_weights_only():
    calls = []
    for path in SRC.rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"torch\.load\(", line):
                calls.append((path.name, line))
    assert calls, "expected at least the checkpoint loader"
    assert all("weights_only=True" in line for _, line in calls), calls
    pickles = [p.name for p in SRC.rglob("*.py") if re.search(r"allow_pickle=True|pickle\.load", p.read_text())]
    assert not pickles
