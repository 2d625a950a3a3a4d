"""Issue 2 bench: SASRec with an ID table on real data — quality, epoch time, eval time, memory.

Each dataset is trained in its own subprocess (``python -m spectran train``) so that its peak RSS
is measured alone (``os.wait4``). Protocol: leave-one-out, full ranking over all items, pessimistic
ties, history not excluded, seed 0, default settings (d=64, 2 layers, 2 heads, dropout 0.5, CE over
the full catalog, Adam 1e-3, batch 256, max length 50, early stopping on valid NDCG@10, patience 10).

    python bench/bench_foundation.py --datasets office beauty [--epochs N] [--threads 2]

"floor" is the epoch's unavoidable matrix work (full-catalog logits, softmax, their backward),
timed in the same process conditions right after training; "epoch / floor" is the ratio.

Prints a Markdown table beside RecBole 1.2.1's figures (RECBOLE below) and
writes it to bench/results/foundation-<datasets>[-<epochs>ep].md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# RecBole 1.2.1 on the same split and settings, measured once by running RecBole (not re-run here)
RECBOLE = {
    "office": {"ndcg@10": 0.0488, "recall@10": 0.1007, "s_epoch": 45.3, "eval_s": 1.27, "rss": 1088,
               "note": "29 epochs (time cap)"},
    "beauty": {"ndcg@10": 0.0199, "recall@10": 0.0395, "s_epoch": 154.5, "eval_s": 5.80, "rss": 1297,
               "note": "2 epochs (time cap)"},
}


def run_one(dataset: str, out: Path, epochs: int | None, threads: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "spectran", "train", "--dataset", dataset, "--seed", "0", "--out", str(out),
           "--no-progress", "--set", f"train.threads={threads}", *extra]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"training {dataset} failed (status {status}): {' '.join(cmd)}")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["peak_rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def softmax_floor(dataset: str, threads: int, batch_size: int = 256, dim: int = 64, max_len: int = 50) -> float:
    """Seconds for one epoch of the unavoidable work: the full-catalog logits GEMM, softmax and its
    two backward GEMMs, over exactly the epoch's batches of real target positions."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from spectran.data.prepare import prepare
    from spectran.settings import DataSettings

    torch.set_num_threads(threads)
    ds = prepare(DataSettings(dataset=dataset))
    tokens = np.array([min(len(ds.train_part(u)) - 1, max_len) for u in range(ds.num_users)])
    tokens = tokens[tokens > 0]
    table = torch.randn(ds.num_items, dim, requires_grad=True)
    start = time.perf_counter()
    for b in range(0, len(tokens), batch_size):
        t = int(tokens[b:b + batch_size].sum())
        hidden = torch.randn(t, dim, requires_grad=True)
        loss = F.cross_entropy(hidden @ table.T, torch.randint(0, ds.num_items, (t,)))
        loss.backward()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["office", "beauty"])
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: early stopping)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/spectran-bench-foundation")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--floor-only", action="store_true", help="print the softmax floor per dataset and exit")
    args = ap.parse_args()
    if args.floor_only:
        for ds in args.datasets:
            print(f"{ds}: softmax floor {softmax_floor(ds, args.threads):.2f} s/epoch ({args.threads} threads)")
        return
    extra = [x for o in args.overrides for x in ("--set", o)]
    lines = [
        "| dataset | impl | test R@10 | test N@10 | test R@20 | test N@20 | best ep | epochs | s/epoch (median) "
        "| floor s/epoch | epoch / floor | test eval s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds in args.datasets:
        m = run_one(ds, Path(args.out) / ds, args.epochs, args.threads, extra)
        floor = softmax_floor(ds, args.threads)  # measured right after training, same threads
        t, epoch = m["test"], m["train_seconds_per_epoch"]
        lines.append(f"| {ds} | spectran | {t['recall@10']:.4f} | {t['ndcg@10']:.4f} | {t['recall@20']:.4f} | "
                     f"{t['ndcg@20']:.4f} | {m['best_epoch']} | {m['epochs']} | {epoch:.2f} | {floor:.2f} | "
                     f"{epoch / floor:.2f} | {m['eval_seconds']:.2f} | {m['peak_rss_mib']:.0f} |")
        if ds in RECBOLE:
            r = RECBOLE[ds]
            lines.append(f"| {ds} | RecBole 1.2.1 | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} | | | | {r['note']} | "
                         f"{r['s_epoch']:.1f} | | | {r['eval_s']:.2f} | {r['rss']} |")
        print(lines[-2] if ds in RECBOLE else lines[-1], flush=True)
    header = (f"SASRec + ID table, seed 0, defaults; leave-one-out, full ranking, pessimistic ties, history not "
              f"excluded; torch threads={args.threads}; epochs cap={args.epochs or 'none (early stopping)'}\n\n")
    table = header + "\n".join(lines) + "\n"
    print("\n" + table)
    (HERE / "results").mkdir(exist_ok=True)
    name = "foundation-" + "-".join(args.datasets) + (f"-{args.epochs}ep" if args.epochs else "") + ".md"
    command = f"python bench/bench_foundation.py {' '.join(sys.argv[1:])}"
    (HERE / "results" / name).write_text(f"Command: `{command}`\n\n{table}")


if __name__ == "__main__":
    main()
