"""``spectran tune``; auto-registered by :mod:`spectran.cli`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def _cmd_tune(args: argparse.Namespace) -> int:
    from spectran.tune.run import TuneOptions, tune

    opts = TuneOptions(trials=args.trials, out=Path(args.out), storage=args.storage, study=args.study,
                       workers=args.workers, retest=args.retest, heartbeat=args.heartbeat,
                       worker_index=args.worker_index, overrides=args.overrides)

    def terminate(signum: int, frame: Any) -> None:  # SIGTERM ends the running trial as FAIL
        raise KeyboardInterrupt(f"signal {signum}")

    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if installed else None
    try:
        summary = tune(args.space, opts, log=lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if not summary:  # a --workers process: trials only
        return 0
    shown = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
    test = {k: v for k, v in summary["retest"]["test"].items() if k in shown}
    if args.json:
        print(json.dumps({"study": summary["study"], "states": summary["states"], "best": summary["best"],
                          "retest": {"folders": summary["retest"]["folders"], "test mean, std": test},
                          "out": args.out}, indent=2))
    else:
        print(summary_text(summary, test, args.out))
    return 0


def summary_text(summary: dict[str, Any], test: dict[str, list[float]], out: str) -> str:
    """The study's states, the best trial's settings and validation figure, the retests' test figures."""
    from spectran.textable import format_table

    states = ", ".join(f"{n.lower()} {c}" for n, c in sorted(summary["states"].items()))
    best = summary["best"]
    lines = [f"study {summary['study']}: {states} (budget {summary['budget']} finished trials)",
             f"best trial {best['trial']}{' (the base settings)' if best['base'] else ''}: "
             f"valid {summary['select_metric']} {best['valid']:.4f}"]
    lines += [format_table(["setting", "value"], [[k, f"{v:.4g}" if isinstance(v, float) else v]
                                                  for k, v in best["params"].items()])]
    seeds = len(summary["retest"]["folders"])
    if test:
        cells = [[f"{m[0]:.4f} ± {m[1]:.4f}" if seeds > 1 else f"{m[0]:.4f}" for m in test.values()]]
        lines += [f"best.yaml retrained with {seeds} seed(s), test:",
                  format_table(list(test), cells, [True] * len(test))]
    else:
        lines += ["no retest (--retest S retrains best.yaml with S seeds and reports their test figures)"]
    lines += [f"tune folder: {out} (best.yaml, tune.json; --json prints the summary as JSON)"]
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune a method's settings with Optuna (resumable; several workers "
                                    "may share one study)")
    p.add_argument("space", help="search space YAML (sections: base, space, study)")
    p.add_argument("--trials", type=int, required=True,
                   help="budget: finished (complete or pruned) trials of the study; a re-run resumes to it")
    p.add_argument("--out", required=True, help="tune folder (trials/, best.yaml, retest/, tune.json)")
    p.add_argument("--storage", help="Optuna storage URL shared by the workers (default sqlite:///<out>/study.db; "
                                     "postgresql://... or mysql://... for workers on several machines)")
    p.add_argument("--study", help="study name in the storage (default: the --out folder's name)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes started here, each with cpus // workers torch threads")
    p.add_argument("--retest", type=int, default=0, metavar="S",
                   help="retrain best.yaml with seeds 0..S-1 and record their test metrics")
    p.add_argument("--heartbeat", type=int, default=10,
                   help="seconds between a trial's heartbeats; a trial silent for 3x this is marked failed")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a setting of the space's base, as train's --set (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set in the --workers processes
    p.set_defaults(func=_cmd_tune)
