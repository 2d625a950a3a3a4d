"""Issue 5 bench: the adapter rows beside ``id`` — test metrics (mean ± std over seeds) and the
effective rank of each run's learned item-embedding matrix (the dimension-collapse evidence).

Runs are trained by ``spectran sweep sweeps/adapters.yaml --out DIR`` (resumable; this script
calls it unless ``--no-train``), then read back with the shared run collector. Protocol: the
sweep's (SASRec, d = 64, MiniLM 384-d, full ranking, pessimistic ties, history not excluded, early
stopping on validation NDCG@10 with patience 10, test once on the best checkpoint).

Effective rank (Roy & Vetterli 2007): exp(H(p)), p = sigma / sum(sigma), of the (N, w)
item table of the best checkpoint (``item_embeddings.npy``, not centred); w = d for every row but
``llmesr`` (two views: w = 2d). The same number for E itself is printed below the table.

    python bench/adapters_table.py --runs DIR [--sweep sweeps/adapters.yaml] [--workers 2]
        [--filter data.dataset=office] [--set section.key=value ...] [--no-train]
        [--results bench/results/adapters.md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from spectran.diagnostics.spectrum import effective_rank, singular_values
from spectran.experiments.collect import RunRecord, find_runs
from spectran.runfolder import RunFolder

HERE = Path(__file__).resolve().parent
METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]


def run_erank(record: RunRecord) -> tuple[float, int]:
    emb = RunFolder(record.folder).read_item_embeddings()
    return effective_rank(singular_values(emb)), int(emb.shape[1])


def semantic_erank(record: RunRecord) -> float | None:
    """erank of E for the run's dataset and text settings (from the embedding cache)."""
    from spectran.assemble import semantic_matrix
    from spectran.data.prepare import prepare

    s = record.settings
    if s.model.method == "id":
        return None
    return effective_rank(singular_values(semantic_matrix(s, prepare(s.data))))


def mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def table(records: list[RunRecord]) -> str:
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[(r.dataset, r.label)].append(r)
    lines = ["| dataset | row | seeds | R@10 | R@20 | N@10 | N@20 | valid N@10 | erank (width) | best epochs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    erank_E: dict[str, float] = {}
    for (dataset, row), runs in groups.items():
        ranks = [run_erank(r) for r in runs]
        cells = [mean_std([r.value(m) for r in runs]) for m in METRICS]
        valid = statistics.mean(r.value("ndcg@10", "valid") for r in runs)
        er = [e for e, _ in ranks]
        er_sd = statistics.stdev(er) if len(er) > 1 else 0.0
        best = "/".join(str(r.metrics.get("best_epoch")) for r in runs)
        lines.append(f"| {dataset} | {row} | {len(runs)} | {' | '.join(cells)} | {valid:.4f} | "
                     f"{statistics.mean(er):.1f} ± {er_sd:.1f} ({ranks[0][1]}) | {best} |")
        if dataset not in erank_E:
            value = semantic_erank(runs[0])
            if value is not None:
                erank_E[dataset] = value
    lines.append("")
    lines += [f"erank of E (not centred) on {d}: {v:.1f}" for d, v in erank_E.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", default=str(HERE.parent / "sweeps" / "adapters.yaml"))
    ap.add_argument("--runs", required=True, help="the sweep's output folder")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--filter", action="append", default=[], help="passed to spectran sweep")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="passed to spectran sweep")
    ap.add_argument("--no-train", action="store_true", help="only summarise finished runs")
    ap.add_argument("--results", default=str(HERE / "results" / "adapters.md"))
    args = ap.parse_args()
    if not args.no_train:
        cmd = [sys.executable, "-m", "spectran", "sweep", args.sweep, "--out", args.runs,
               "--workers", str(args.workers), "--no-progress"]
        cmd += [a for f in args.filter for a in ("--filter", f)]
        cmd += [a for s in args.overrides for a in ("--set", s)]
        subprocess.run(cmd, check=True)
    md = table(find_runs([args.runs]))
    print(md)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")


if __name__ == "__main__":
    main()
