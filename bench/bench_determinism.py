"""Issue 37 bench: is the same command reproducible, and what does the deterministic path cost?

1. Trains the same run twice (``spectran train`` subprocesses started side by side, as the issue
   did, at ``--threads`` torch threads) and prints both runs' test/valid NDCG@10 and whether their
   per-epoch losses and metrics are bitwise identical.
2. Times the item-row gather of one training step at the real batch shape (``max_len`` items of
   ``batch_size`` sequences from the dataset's item table), forward + backward, three ways,
   interleaved over rounds: indexing (``lookup[seqs]``, what training used before: its CPU
   backward is ``index_put_`` with accumulation, whose order varies with threads), ``F.embedding``
   (what it uses now), and indexing under ``torch.use_deterministic_algorithms`` (torch's
   sort-based deterministic ``index_put_``).
3. With ``--epoch-ratio``: one epoch of the run with ``train.deterministic`` on and off, alternated
   over rounds in one process, and their ratio.

    SPECTRAN_DATA=/path/to/data python bench/bench_determinism.py [--dataset office]
        [--method svd_frozen] [--encoder minilm] [--epochs 25] [--threads 2] [--epoch-ratio]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def train_pair(args: argparse.Namespace, root: Path) -> list[Path]:
    folders = [root / "A", root / "B"]
    cmd = [sys.executable, "-m", "spectran", "train", "--dataset", args.dataset, "--method", args.method,
           "--encoder", args.encoder, "--epochs", str(args.epochs), "--seed", "0", "--no-progress", "--json",
           "--set", f"train.threads={args.threads}"]
    procs = [subprocess.Popen([*cmd, "--out", str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for f in folders]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"training failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    return folders


def _epochs(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]


def time_gather(num_items: int, batch: int, length: int, dim: int, rounds: int) -> dict[str, float]:
    torch.manual_seed(0)
    seqs = torch.randint(0, num_items + 1, (batch, length))
    lookup = torch.randn(num_items + 1, dim, requires_grad=True)
    grad_out = torch.randn(batch, length, dim)
    ways = {"indexing": lambda: lookup[seqs], "F.embedding": lambda: F.embedding(seqs, lookup),
            "indexing, deterministic": lambda: lookup[seqs]}
    times: dict[str, list[float]] = {k: [] for k in ways}
    digests: dict[str, set[str]] = {k: set() for k in ways}
    for _ in range(rounds):
        for name, gather in ways.items():
            torch.use_deterministic_algorithms(name.endswith("deterministic"))
            t0 = time.perf_counter()
            for _ in range(20):
                lookup.grad = None
                gather().backward(grad_out)
                digests[name].add(hashlib.sha256(lookup.grad.numpy().tobytes()).hexdigest())
            times[name].append((time.perf_counter() - t0) / 20)
    torch.use_deterministic_algorithms(False)
    return {k: (statistics.median(v), len(digests[k])) for k, v in times.items()}


def epoch_ratio(args: argparse.Namespace, rounds: int) -> dict[str, float]:
    from spectran.api import make_trainer
    from spectran.assemble import assemble_run
    from spectran.settings import resolve

    s = resolve({"data": {"dataset": args.dataset}, "text": {"encoder": args.encoder},
                 "model": {"method": args.method}, "train": {"progress": False, "threads": args.threads}})
    trainers = {}
    for on in (True, False):
        run = assemble_run(s)
        trainers[on] = make_trainer(run, None)
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for on, trainer in trainers.items():
            torch.use_deterministic_algorithms(on, warn_only=True)
            t0 = time.perf_counter()
            trainer.train_epoch(r)
            times[on].append(time.perf_counter() - t0)
    return {"on": statistics.median(times[True]), "off": statistics.median(times[False])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="office")
    ap.add_argument("--method", default="svd_frozen")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-pair", action="store_true", help="skip the two trainings (part 1)")
    ap.add_argument("--epoch-ratio", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    if not args.no_pair:
        with tempfile.TemporaryDirectory() as tmp:
            print_pair(args, *train_pair(args, Path(tmp)))
    from spectran.data.prepare import prepare
    from spectran.settings import DataSettings

    ds = prepare(DataSettings(dataset=args.dataset))
    t = time_gather(ds.num_items, 256, 50, 64, args.rounds)
    print(f"\n| item-row gather, forward + backward (256 x 50 of a 64-d table, {20 * args.rounds} repeats) "
          "| ms | vs indexing | distinct gradients |\n|---|---|---|---|")
    for name, (sec, distinct) in t.items():
        print(f"| {name} | {sec * 1e3:.3f} | {sec / t['indexing'][0]:.2f}x | {distinct} |")
    if args.epoch_ratio:
        e = epoch_ratio(args, args.rounds)
        print(f"\none epoch, train.deterministic on / off (median of {args.rounds}, alternated): "
              f"{e['on']:.1f} s / {e['off']:.1f} s = {e['on'] / e['off']:.2f}x")


def print_pair(args: argparse.Namespace, a: Path, b: Path) -> None:
    ma, mb = (json.loads((f / "metrics.json").read_text()) for f in (a, b))
    same = _epochs(a) == _epochs(b)
    print("\n| run | epochs | best epoch | valid NDCG@10 | test NDCG@10 |\n|---|---|---|---|---|")
    for name, m in (("A", ma), ("B", mb)):
        print(f"| {name} | {m['epochs']} | {m['best_epoch']} | {m['valid']['ndcg@10']:.5f} "
              f"| {m['test']['ndcg@10']:.5f} |")
    verdict = "identical" if ma["test"] == mb["test"] else "DIFFERENT"
    print(f"\nsame command twice, {args.epochs} epochs at {args.threads} threads: per-epoch log "
          f"{'bitwise identical' if same else 'DIFFERENT'}; test metrics {verdict}")


if __name__ == "__main__":
    main()
