"""DDP: 2 processes (torchrun, gloo on CPU) reach the same metrics as 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# dropout off: dropout masks are drawn per rank, the only legitimate difference between the runs
ARGS = ["train", "--dataset", "synthetic", "--epochs", "3", "--no-progress",
        "--set", "backbone.dropout=0", "--set", "backbone.attn_dropout=0", "--set", "train.batch_size=64",
        "--set", "train.threads=1"]


def _run(cmd: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "SPECTRAN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, "-m", "spectran", *ARGS, "--out", str(one)], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "spectran", *ARGS, "--out", str(two)], tmp_path)
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key, value in m1[split].items():
            assert m2[split][key] == pytest.approx(value, abs=1e-4), (split, key)
    assert m1["best_epoch"] == m2["best_epoch"] and m2["epochs"] == 3
    # every user scored exactly once: the gathered ranks are complete and equal
    r1, r2 = np.load(one / "test_ranks.npy"), np.load(two / "test_ranks.npy")
    assert r2.shape == r1.shape and (r2 >= 1).all()
    assert np.abs(r1 - r2).max() <= 1  # rounding in the gradient all-reduce may flip a near tie
    # the logged epoch loss is the mean over all ranks' targets
    l1 = [json.loads(x)["loss"] for x in (one / "log.jsonl").read_text().splitlines()]
    l2 = [json.loads(x)["loss"] for x in (two / "log.jsonl").read_text().splitlines()]
    assert l2 == pytest.approx(l1, rel=1e-4)
    assert json.loads((two / "env.json").read_text())["world_size"] == 2


def test_sharded_ranks_cover_every_user_once(tmp_path):
    """gather_rows inverts local_rows for any world size (no process group needed for rows)."""
    from spectran.distributed import DistInfo, local_rows

    n = 11
    for world in (1, 2, 3, 4):
        seen = np.concatenate([np.arange(n)[local_rows(n, DistInfo(r, world))] for r in range(world)])
        assert sorted(seen.tolist()) == list(range(n))


# every backbone with the ID table, every method on SASRec, and the settings that create a
# parameter the forward does not read unless it is frozen
CASES = [(b, "id", {}) for b in ("sasrec", "bert4rec", "hstu", "gru4rec")] + \
    [("sasrec", m, {}) for m in ("mlp", "moe", "whiten_mlp", "rlmrec", "llmesr", "pca_init", "svd_frozen",
                                 "alphafuse", "spectran")] + \
    [("sasrec", "spectran", {"attention": "softmax"}), ("sasrec", "spectran", {"attention": "none"}),
     ("sasrec", "moe", {"noisy_gating": False}), ("sasrec", "rlmrec", {"beta": 0.0})]


@pytest.mark.parametrize("backbone, method, overrides", CASES)
def test_ddp_looks_for_unused_parameters_only_where_a_step_can_leave_some_out(tmp_path, backbone, method, overrides):
    """One training step reaches every trainable parameter unless the item encoder says it may not
    (``parameters_may_go_unused``), which is what sets DDP's ``find_unused_parameters``."""
    import torch
    import torch.distributed as dist

    from conftest import tiny_settings
    from spectran.api import make_trainer
    from spectran.assemble import assemble_run
    from spectran.distributed import DistInfo

    s = tiny_settings(model={"method": method, "backbone": backbone}, backbone={"layers": 1}, method=overrides)
    exp = assemble_run(s)
    arr = exp.train_arrays()
    gen = torch.Generator().manual_seed(0)
    batch = exp.objective.train_batch(*(torch.from_numpy(a[:32]) for a in (arr.users, arr.seqs, arr.lengths)), gen)
    main, extra = make_trainer(exp, None, settings=s).step(batch, gen)
    (main + extra).backward()
    unused = [n for n, p in exp.model.named_parameters() if p.requires_grad and p.grad is None]
    may = exp.model.item_encoder.parameters_may_go_unused()
    assert unused == [] or may, unused
    if method == "rlmrec" and overrides:  # beta = 0: the alignment MLP is never read
        assert unused and may
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        trainer = make_trainer(exp, None, DistInfo(0, 2), s)  # DDP over a group of one process
        assert trainer.step.find_unused_parameters is may
    finally:
        dist.destroy_process_group()
