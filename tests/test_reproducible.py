"""Same command, same numbers: two runs of one setting at two threads are bitwise identical.

The item rows were gathered by indexing (``lookup[seqs]``), whose CPU backward (``index_put_``
with accumulation) adds gradients in a thread-dependent order; two identical runs then drifted
apart epoch by epoch (office, svd_frozen: 0.0553 vs 0.0566 test NDCG@10 after 25 epochs)."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from spectran.api import make_trainer, train
from spectran.assemble import assemble_run
from spectran.data.batches import iterate_batches
from spectran.runfolder import RunFolder


def _grad_digests(s, repeats: int = 6) -> dict[str, set[str]]:
    """Repeat one training step from one state; the digests of every gradient over the repeats."""
    run = assemble_run(s)
    trainer = make_trainer(run, None)
    arr = trainer.train_arrays
    gen = torch.Generator().manual_seed(1)
    idx = next(iter(iterate_batches(len(arr.seqs), len(arr.seqs), gen))).numpy()
    batch = trainer.objective.train_batch(torch.from_numpy(arr.users[idx]), torch.from_numpy(arr.seqs[idx]),
                                          torch.from_numpy(arr.lengths[idx]), gen)
    run.model.eval()  # no dropout: the step is a pure function of the state
    digests: dict[str, set[str]] = {}
    for _ in range(repeats):
        run.model.zero_grad(set_to_none=True)
        main, extra = trainer.step(batch, torch.Generator().manual_seed(5))
        (main + extra).backward()
        for name, p in run.model.named_parameters():
            if p.grad is not None:
                digests.setdefault(name, set()).add(hashlib.sha256(p.grad.numpy().tobytes()).hexdigest())
    return digests


@pytest.mark.parametrize("loss", ["ce", "bce", "sampled"])
def test_one_step_gives_the_same_gradient_every_time_at_two_threads(tiny, loss):
    threads = torch.get_num_threads()
    try:
        s = tiny(data={"max_len": 50}, model={"method": "svd_frozen", "dim": 64},
                 train={"threads": 2, "loss": loss, "num_negatives": 64})
        varying = [n for n, d in _grad_digests(s).items() if len(d) > 1]
    finally:
        torch.set_num_threads(threads)
    assert varying == []


def test_the_same_command_twice_gives_bitwise_identical_runs(tiny, tmp_path):
    threads = torch.get_num_threads()
    try:
        s = tiny(data={"max_len": 30}, model={"method": "svd_frozen", "dim": 32},
                 train={"threads": 2, "epochs": 20, "patience": 100})
        first, second = train(s, tmp_path / "a"), train(s, tmp_path / "b")
    finally:
        torch.set_num_threads(threads)
    assert first["test"] == second["test"] and first["valid"] == second["valid"]
    logs = [[json.loads(line)["loss"] for line in RunFolder(tmp_path / r).log_jsonl.read_text().splitlines()]
            for r in ("a", "b")]
    assert len(logs[0]) == 20 and logs[0] == logs[1]
    best = [torch.load(RunFolder(tmp_path / r).checkpoint("best"), weights_only=False)["model"] for r in ("a", "b")]
    assert all(torch.equal(best[0][k], best[1][k]) for k in best[0])
    env = json.loads(RunFolder(tmp_path / "a").env.read_text())
    assert env["threads"] == 2 and env["deterministic"] is True and env["device"] == "cpu"
