"""Issue 2 bench: SASRec with an ID table on real data — quality, epoch time, eval time, memory.

Each dataset is trained in its own subprocess (``python -m spectran train``) so that its peak RSS
is measured alone (``os.wait4``). Protocol: leave-one-out, full ranking over all items, pessimistic
ties, history not excluded, seed 0, default settings (d=64, 2 layers, 2 heads, dropout 0.5, CE over
the full catalog, Adam 1e-3, batch 256, max length 50, early stopping on valid NDCG@10, patience 10).

    python bench/bench_foundation.py --datasets office beauty [--epochs N] [--threads 2]

Prints a Markdown table beside RecBole 1.2.1's figures (../shared/peers/recbole/RESULTS.md) and
writes it to bench/results/foundation.md.
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

# RecBole 1.2.1 on the same split and settings, copied from ../shared/peers/recbole/RESULTS.md
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["office", "beauty"])
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: early stopping)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/spectran-bench-foundation")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    extra = [x for o in args.overrides for x in ("--set", o)]
    lines = [
        "| dataset | impl | test R@10 | test N@10 | test R@20 | test N@20 | best ep | epochs | s/epoch (median) "
        "| test eval s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds in args.datasets:
        m = run_one(ds, Path(args.out) / ds, args.epochs, args.threads, extra)
        t = m["test"]
        lines.append(f"| {ds} | spectran | {t['recall@10']:.4f} | {t['ndcg@10']:.4f} | {t['recall@20']:.4f} | "
                     f"{t['ndcg@20']:.4f} | {m['best_epoch']} | {m['epochs']} | {m['train_seconds_per_epoch']:.2f} | "
                     f"{m['eval_seconds']:.2f} | {m['peak_rss_mib']:.0f} |")
        if ds in RECBOLE:
            r = RECBOLE[ds]
            lines.append(f"| {ds} | RecBole 1.2.1 | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} | | | | {r['note']} | "
                         f"{r['s_epoch']:.1f} | {r['eval_s']:.2f} | {r['rss']} |")
        print(lines[-2] if ds in RECBOLE else lines[-1], flush=True)
    header = (f"SASRec + ID table, seed 0, defaults; leave-one-out, full ranking, pessimistic ties, history not "
              f"excluded; torch threads={args.threads}; epochs cap={args.epochs or 'none (early stopping)'}\n\n")
    table = header + "\n".join(lines) + "\n"
    print("\n" + table)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "foundation.md").write_text(table)


if __name__ == "__main__":
    main()
