"""Issue 19 bench: epoch time of fp32 / bf16 / chunked cross-entropy, interleaved in one process.

Every variant is an assembled run + Trainer of its own (same seed, same initial weights); the
rounds alternate the variants (round r trains epoch r of every variant, one after the other) so
that load from other jobs on a shared CPU hits them alike; the table gives medians over rounds
and ratios against fp32 from this one run. ``--steps K`` caps an "epoch" to the first K batches of
a fixed random subset of training sequences (K x batch_size of them); the epoch column then
extrapolates to the full epoch (s/step x steps per epoch) and says so. Also measured: SpecTran's
epoch against id's (the ``fake`` text encoder at 384 dimensions, MiniLM's width: the same compute
without the model), the full test evaluation of the last dataset (fp32 scores, as every run
evaluates), the peak resident memory (``ru_maxrss``) of a subprocess that trains the capped epoch
and evaluates test, and a torch.profiler table of the top operators of one capped epoch of the
last dataset, per variant.

    SPECTRAN_DATA=/path/to/data python bench/bench_precision.py [--datasets office beauty]
        [--steps 20] [--rounds 3] [--threads 2] [--variants fp32 chunked bf16 bf16+chunked]
        [--results bench/results/precision.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spectran.api import make_trainer, validator
from spectran.assemble import AssembledRun, assemble_run
from spectran.data.batches import SequenceArrays
from spectran.io import write_text
from spectran.settings import resolve
from spectran.train.loop import Trainer

HERE = Path(__file__).resolve().parent
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"precision": "fp32", "ce_chunk": 0},
    "chunked": {"precision": "fp32", "ce_chunk": 256},
    "bf16": {"precision": "bf16", "ce_chunk": 0},
    "bf16+chunked": {"precision": "bf16", "ce_chunk": 256},
}


def settings(dataset: str, method: str, variant: str, threads: int, chunk: int):
    train = {**VARIANTS[variant], "threads": threads, "progress": False}
    if train["ce_chunk"]:
        train["ce_chunk"] = chunk
    raw = {"data": {"dataset": dataset}, "model": {"backbone": "sasrec", "method": method},
           "text": {"encoder": "fake", "fake_dim": 384}, "train": train}
    return resolve(raw)


def subset(arr: SequenceArrays, rows: int, seed: int = 0) -> SequenceArrays:
    if rows <= 0 or rows >= len(arr.seqs):
        return arr
    pick = np.sort(np.random.default_rng(seed).choice(len(arr.seqs), rows, replace=False))
    return SequenceArrays(arr.seqs[pick], arr.lengths[pick], arr.users[pick])


class Case:
    """One (dataset, method, variant): its trainer on the capped training set, and timings."""

    def __init__(self, dataset: str, method: str, variant: str, args: argparse.Namespace):
        self.dataset, self.method, self.variant = dataset, method, variant
        s = settings(dataset, method, variant, args.threads, args.chunk)
        self.exp: AssembledRun = assemble_run(s)
        self.trainer: Trainer = make_trainer(self.exp)
        full = self.exp.train_arrays()
        bs = s.train.batch_size
        self.full_steps = (len(full.seqs) + bs - 1) // bs
        self.trainer.train_arrays = subset(full, args.steps * bs)
        self.steps = (len(self.trainer.train_arrays.seqs) + bs - 1) // bs
        self.seconds: list[float] = []

    def epoch(self, e: int) -> float:
        t0 = time.perf_counter()
        self.trainer.train_epoch(e)
        return time.perf_counter() - t0

    @property
    def name(self) -> str:
        return f"{self.dataset} {self.method} {self.variant}"


def child(args: argparse.Namespace) -> None:
    """--child: train the capped epoch of one case and evaluate test (for the parent's ru_maxrss)."""
    dataset, method, variant = args.child
    case = Case(dataset, method, variant, args)
    case.epoch(0)
    validator(case.exp, "test")(case.exp.model)


def peak_memory(dataset: str, method: str, variant: str, args: argparse.Namespace) -> float:
    """GiB: the peak resident set of a fresh process running :func:`child`."""
    cmd = [sys.executable, __file__, "--child", dataset, method, variant, "--steps", str(args.steps),
           "--threads", str(args.threads), "--chunk", str(args.chunk)]
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"memory child {' '.join(cmd)} failed with exit code {proc.returncode}")
    return usage.ru_maxrss / 2**20  # KiB on Linux


def profile_table(case: Case, e: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        case.trainer.train_epoch(e)
    events = sorted(prof.key_averages(), key=lambda ev: ev.self_cpu_time_total, reverse=True)
    total = sum(ev.self_cpu_time_total for ev in events) or 1
    lines = [f"#### {case.name}: one capped epoch ({case.steps} steps) under torch.profiler, "
             f"{total / 1e6:.2f} s of operator self time", "",
             "| operator | self s | share | calls |", "|---|---|---|---|"]
    for ev in events[:rows]:
        lines.append(f"| `{ev.key}` | {ev.self_cpu_time_total / 1e6:.3f} | "
                     f"{100 * ev.self_cpu_time_total / total:.1f} % | {ev.count} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["office", "beauty"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=20, help="batches per timed epoch (0 = the full epoch)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median over them)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--chunk", type=int, default=256, help="train.ce_chunk of the chunked variants")
    ap.add_argument("--eval-rounds", type=int, default=3, help="timed test evaluations (last dataset)")
    ap.add_argument("--no-spectran", action="store_true", help="skip the SpecTran / id epoch ratio")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiler tables")
    ap.add_argument("--results", default=str(HERE / "results" / "precision.md"))
    ap.add_argument("--child", nargs=3, metavar=("DATASET", "METHOD", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cases = [Case(d, "id", v, args) for d in args.datasets for v in args.variants]
    spectran_variants = [v for v in ("fp32", "chunked") if v in args.variants]
    if not args.no_spectran:
        cases += [Case(d, "spectran", v, args) for d in args.datasets for v in spectran_variants]
    last = args.datasets[-1]
    fp32_last = next((c for c in cases if c.dataset == last and c.method == "id" and c.variant == "fp32"),
                     cases[0])
    evaluate = validator(fp32_last.exp, "test")
    for c in cases:  # warm-up: one capped epoch, not timed (allocator, oneDNN kernels)
        c.epoch(0)
    eval_seconds: list[float] = []
    for r in range(args.rounds):
        for c in cases:
            c.seconds.append(c.epoch(r + 1))
            print(f"round {r + 1}: {c.name:<32} {c.seconds[-1]:7.2f} s", file=sys.stderr, flush=True)
        if r < args.eval_rounds:
            t0 = time.perf_counter()
            evaluate(fp32_last.exp.model)
            eval_seconds.append(time.perf_counter() - t0)

    def med(c: Case) -> float:
        return statistics.median(c.seconds)

    def ref(c: Case, method: str = "id", variant: str = "fp32") -> Case | None:
        return next((x for x in cases if x.dataset == c.dataset and x.method == method
                     and x.variant == variant), None)

    capped = any(c.steps < c.full_steps for c in cases)
    out = ["# Precision and chunked cross-entropy (issue 19)", "",
           f"Command: `python bench/bench_precision.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
           "",
           f"SASRec (default settings, d=64, batch 256, full-softmax CE), torch {torch.__version__}, "
           f"{args.threads} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
           f"{os.cpu_count()} logical CPUs (shared with other jobs). {args.rounds} interleaved rounds "
           f"after one warm-up epoch; medians. chunked = `train.ce_chunk={args.chunk}`. "
           + (f"Epochs capped to {args.steps} batches of a fixed random subset of sequences; "
              "'epoch s' extrapolates s/step to the full epoch." if capped else "Full epochs."),
           "", "| dataset | method | variant | s/step | epoch s | speed-up vs fp32 (same method) | capped epochs (s) |",
           "|---|---|---|---|---|---|---|"]
    for c in cases:
        per_step = med(c) / c.steps
        base = ref(c, c.method)
        ratio = f"{med(base) / med(c):.2f}" if base is not None else "—"
        out.append(f"| {c.dataset} | {c.method} | {c.variant} | {per_step:.3f} | {per_step * c.full_steps:.2f} | "
                   f"{ratio} | {' '.join(f'{t:.2f}' for t in c.seconds)} |")
    if not args.no_spectran:
        out += ["", "| dataset | variant | SpecTran epoch / id epoch |", "|---|---|---|"]
        for c in cases:
            if c.method == "spectran":
                idc = ref(c, "id", c.variant)
                out.append(f"| {c.dataset} | {c.variant} | {med(c) / med(idc):.2f} |" if idc else "")
    out += ["", f"Full test evaluation, {last}, SASRec-id (fp32 scores, {len(fp32_last.exp.data.targets('test'))} "
            f"users x {fp32_last.exp.data.num_items} items): median {statistics.median(eval_seconds):.2f} s "
            f"({' '.join(f'{t:.2f}' for t in eval_seconds)})."]
    if not args.no_memory:
        out += ["", f"Peak resident memory (ru_maxrss of a fresh process: build the {last} experiment, one "
                f"{'capped ' if capped else ''}epoch, full test evaluation):", "",
                "| dataset | method | variant | peak GiB |", "|---|---|---|---|"]
        for v in args.variants:
            out.append(f"| {last} | id | {v} | {peak_memory(last, 'id', v, args):.3f} |")
    if not args.no_profile:
        out += ["", f"### Top operators, {last}"]
        for c in cases:
            if c.dataset == last and c.method == "id":
                out += ["", profile_table(c, args.rounds + 1, 10)]
    out += ["", f"Bench wall time {time.perf_counter() - started:.0f} s."]
    text = "\n".join(out) + "\n"
    print(text)
    if args.results:
        write_text(Path(args.results), text)
        print(f"wrote {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
