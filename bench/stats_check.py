"""Compare :mod:`spectran.experiments.stats` (scipy) with another implementation of the same API.

Made to check the move from the hand-written tests (Wilcoxon signed-rank, paired t-test) to
``scipy.stats``: the old module is read from a file, e.g. the version of commit 41408cf::

    git show 41408cf:src/spectran/experiments/stats.py > /tmp/old_stats.py
    python bench/stats_check.py --old /tmp/old_stats.py [--runs SWEEP_DIR ...]

Cases: seeded random paired samples (continuous, integer-valued with many ties and zeros, and
per-user NDCG@10 of random ranks, which is mostly zeros and tied), over sample sizes that take
the exact and the normal-approximation branches; with ``--runs``, the per-user test NDCG@10 that
``spectran report`` compares in each table of those sweep folders. Prints one line per case and
test with both p-values and their relative difference, then the largest relative differences.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator

import numpy as np

from spectran.eval.metrics import ndcg
from spectran.experiments import stats
from spectran.experiments.collect import find_runs
from spectran.experiments.report import build_tables, mean_user_ndcg, significance, sweep_row_order

SIZES = [5, 8, 13, 20, 50, 51, 300, 4905]


def load_module(path: str):
    spec = importlib.util.spec_from_file_location("old_stats", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def random_cases(seed: int = 0) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for n in SIZES:
        x = rng.normal(size=n)
        yield f"normal n={n}", x, x + rng.normal(0.1, 1.0, size=n)
        yield f"integers n={n}", rng.integers(0, 4, size=n).astype(float), rng.integers(0, 4, size=n).astype(float)
        ranks_a, ranks_b = rng.integers(1, 40, size=n), rng.integers(1, 45, size=n)
        yield f"ndcg@10 n={n}", ndcg(ranks_a, 10).numpy(), ndcg(ranks_b, 10).numpy()


def run_cases(paths: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    for table in build_tables(find_runs(paths), row_order=sweep_row_order(paths)):
        for row in significance(table, "spectran"):
            x = mean_user_ndcg(table.records[("spectran", row["dataset"])])
            y = mean_user_ndcg(table.records[(row["baseline"], row["dataset"])])
            yield f"runs {row['dataset']} spectran vs {row['baseline']}", x, y


def rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="file of the other implementation (same functions)")
    ap.add_argument("--runs", nargs="*", default=[], help="sweep folders whose report tests are compared too")
    args = ap.parse_args(argv)
    old = load_module(args.old)
    cases = list(random_cases()) + (list(run_cases(args.runs)) if args.runs else [])
    worst = {"wilcoxon": 0.0, "t-test": 0.0}
    print(f"{'case':40s} {'test':8s} {'n':>5s} {'p (old)':>24s} {'p (scipy)':>24s} {'rel. diff':>9s}")
    for label, x, y in cases:
        for name in worst:
            a, b = old.paired_test(name, x, y), stats.paired_test(name, x, y)
            if a.n != b.n:
                raise SystemExit(f"{label} {name}: pairs used differ ({a.n} vs {b.n})")
            diff = max(rel(a.p_value, b.p_value), rel(a.statistic, b.statistic))
            worst[name] = max(worst[name], diff)
            print(f"{label:40s} {name:8s} {b.n:5d} {a.p_value!r:>24s} {b.p_value!r:>24s} {diff:9.1e}")
    print("largest relative difference (p-value or statistic): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) + f" over {len(cases)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
