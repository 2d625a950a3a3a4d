"""Issue 6 bench: every backbone with an ID table — quality, seconds per epoch, evaluation time.

For each dataset x backbone, trains one run through :func:`spectran.api.train` (seed 0, default
settings of the backbone, ``model.method=id``) and reads its ``metrics.json``. Protocol:
leave-one-out, full ranking over all items, pessimistic ties, history not excluded, d=64,
CE over the full catalog, Adam 1e-3, batch 256, max length 50, early stopping on validation
NDCG@10 (patience 10), test evaluated once on the best checkpoint.

    python bench/bench_backbones.py [--datasets office beauty] [--backbones sasrec ...]
        [--epochs N] [--threads 1] [--set section.key=value ...] [--runs DIR]

Runs are kept in ``--runs/<dataset>-<backbone>`` and a finished one is read back instead of
retrained, so several invocations (e.g. one backbone per CPU slot) can fill the grid and a last
one writes the table. Delete a run folder to retrain it. Prints a Markdown table beside
RecBole 1.2.1's figures (RECBOLE below) and writes it to
``bench/results/backbones.md`` (``--results`` to change).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from spectran.api import train
from spectran.backbones.registry import backbone_names
from spectran.io import write_text
from spectran.settings import apply_override, resolve

HERE = Path(__file__).resolve().parent

# RecBole 1.2.1 on the same splits, measured once by running RecBole, not re-run here (seed 2020,
# torch 2.13.0 CPU, 2 threads; every row there was stopped by a time cap, see its notes).
RECBOLE: dict[tuple[str, str], dict[str, Any]] = {
    ("office", "sasrec"): {"recall@10": 0.1007, "ndcg@10": 0.0488, "s_epoch": "45.3", "eval_s": "1.27",
                           "note": "best epoch 24 of 29 (time cap)"},
    ("beauty", "sasrec"): {"recall@10": 0.0395, "ndcg@10": 0.0199, "s_epoch": "154.5", "eval_s": "5.80",
                           "note": "2 epochs (time cap, cost only)"},
    ("office", "bert4rec"): {"recall@10": 0.0245, "ndcg@10": 0.0113, "s_epoch": "≈ 46", "eval_s": "—",
                             "note": "2 epochs (time cap, cost only)"},
    ("office", "gru4rec"): {"recall@10": None, "ndcg@10": None, "s_epoch": "≈ 350 (est.)", "eval_s": "—",
                            "note": "first epoch not finished in 8 min"},
}


def run_settings(dataset: str, backbone: str, args: argparse.Namespace, seed: int = 0):
    raw: dict[str, Any] = {"data": {"dataset": dataset}, "model": {"backbone": backbone, "method": "id"},
                           "train": {"seed": seed, "threads": args.threads, "progress": False}}
    if args.epochs:
        raw["train"]["epochs"] = args.epochs
    for assignment in args.overrides:
        apply_override(raw, assignment)
    return resolve(raw)


def stop_reason(m: dict[str, Any], run: Path) -> str:
    """Why a run ended, from its own saved settings (a finished run may predate this invocation)."""
    train_cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["train"]
    if m["epochs"] - m["best_epoch"] >= train_cfg["patience"]:
        return "early stopping"
    if m["epochs"] >= train_cfg["epochs"]:
        return f"epoch cap {train_cfg['epochs']}"
    return "time cap (train.max_seconds)"


def fmt(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["office", "beauty"])
    ap.add_argument("--backbones", nargs="+", default=backbone_names())
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: early stopping)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    ap.add_argument("--runs", default="/tmp/spectran-bench/backbones", help="folder of the run folders")
    ap.add_argument("--results", default=str(HERE / "results" / "backbones.md"))
    args = ap.parse_args(argv)

    lines = ["| dataset | backbone | impl | test R@10 | test N@10 | best ep | epochs | s/epoch (median) "
             "| test eval s | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for ds in args.datasets:
        for bb in args.backbones:
            out = Path(args.runs) / f"{ds}-{bb}"
            start = time.perf_counter()
            m = train(run_settings(ds, bb, args), out)
            t = m["test"]
            note = stop_reason(m, out)
            lines.append(f"| {ds} | {bb} | spectran pkg | {fmt(t['recall@10'])} | {fmt(t['ndcg@10'])} | "
                         f"{m['best_epoch']} | {m['epochs']} | {m['train_seconds_per_epoch']:.2f} | "
                         f"{m['eval_seconds']:.2f} | {note} |")
            print(lines[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
            ref = RECBOLE.get((ds, bb))
            if ref is not None:
                lines.append(f"| {ds} | {bb} | RecBole 1.2.1 | {fmt(ref['recall@10'])} | {fmt(ref['ndcg@10'])} | "
                             f"| | {ref['s_epoch']} | {ref['eval_s']} | {ref['note']} |")
                print(lines[-1], flush=True)
    header = (
        "# Backbones with an ID table (issue 6)\n\n"
        f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:] if argv is None else argv)}`\n\n"
        "Protocol: seed 0, `model.method=id`, each backbone's default settings, d=64, leave-one-out, "
        "full ranking over all items, pessimistic ties, history not excluded, CE over the full catalog, "
        "Adam 1e-3, batch 256, max length 50, early stopping on validation NDCG@10 (patience 10); "
        f"torch threads={args.threads}; epoch cap: see the note of each row; overrides: "
        f"{', '.join(args.overrides) or 'none'}. s/epoch is the median training time of an epoch "
        "(validation excluded) on a shared 2-core CPU, so it carries noise from other jobs. "
        "RecBole rows are RecBole 1.2.1 runs on the same split, recorded in the script (seed 2020, 2 threads, "
        "time-capped: not quality references except office SASRec).\n\n")
    table = header + "\n".join(lines) + "\n"
    print("\n" + table)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(args.results), table)


if __name__ == "__main__":
    main()
