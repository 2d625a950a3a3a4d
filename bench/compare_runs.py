"""Compare two sweeps run by different code on the same settings: same metrics, to the last digit?

For every finished run under BEFORE, the run at the same relative path under AFTER must exist;
prints one row per run (valid/test metrics, epochs and best epoch equal; per-user test ranks
equal) and exits 1 when any differs. Used to check a refactoring against real data:

    spectran sweep sweeps/smoke.yaml --out BEFORE --workers 1 --set data.dataset=office \
        --set text.encoder=minilm --set train.threads=1          # with the old code
    spectran sweep sweeps/smoke.yaml --out AFTER ...               # same command, the new code
    python bench/compare_runs.py BEFORE AFTER
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from spectran.runfolder import RunFolder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = p.parse_args(argv)
    rows, differ = [], 0
    for metrics in sorted(args.before.rglob(RunFolder.METRICS)):
        rel = metrics.parent.relative_to(args.before)
        old, new = RunFolder(metrics.parent), RunFolder(args.after / rel)
        if not new.finished:
            print(f"error: {new.path}: no finished run to compare with {old.path}", file=sys.stderr)
            return 2
        a, b = old.read_metrics(), new.read_metrics()
        same = all(a[k] == b[k] for k in ("valid", "test", "epochs", "best_epoch"))
        ranks = all(np.array_equal(old.read_ranks(s), new.read_ranks(s)) for s in RunFolder.SPLITS)
        differ += not (same and ranks)
        rows.append(f"| {rel} | {a['test']['ndcg@10']:.6f} | {b['test']['ndcg@10']:.6f} | "
                    f"{'yes' if same else 'NO'} | {'yes' if ranks else 'NO'} |")
    if not rows:
        print(f"error: {args.before}: no finished run", file=sys.stderr)
        return 2
    print("| run | test NDCG@10 before | after | metrics equal | ranks equal |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{len(rows)} runs, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
