"""Exploration grid for the SVD family and SpecTran (issue 4): variants x datasets x seeds.

A stop-gap until ``spectran sweep`` exists: runs each (variant, dataset, seed) through
``spectran.api.train`` in a process pool and prints / writes a mean ± std table of the test
metrics. Variants are given inline as ``LABEL:key=value,key=value`` (run-config overrides).

    python bench/spectral_explore.py --datasets office --seeds 0 1 2 --workers 2 \
        --out /tmp/explore --set train.threads=1 \
        --variant "id:model.method=id" --variant "svd_frozen:model.method=svd_frozen"

``--embeddings DIR`` reads E from ``DIR/<dataset>_minilm.npy`` instead of the text cache (used
when the embeddings were encoded elsewhere); ``--summary FILE`` also writes the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ["ndcg@10", "recall@10", "ndcg@20", "recall@20"]


def _patch_embeddings(emb_dir: str) -> None:
    """Serve E from pre-encoded .npy files (and cache the basis next to them)."""
    import spectran.experiment as experiment
    import spectran.spectral.basis as basis

    def semantic_matrix(s, ds):
        return np.load(Path(emb_dir) / f"{ds.name}_minilm.npy")

    def load_or_compute_basis(E, ds, text_settings, center=True):
        return basis.load_or_compute_basis_at(E, Path(emb_dir) / f"{ds.name}_minilm.npy", center)

    experiment.semantic_matrix = semantic_matrix
    basis.load_or_compute_basis = load_or_compute_basis


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from spectran.api import train
    from spectran.settings import apply_override, resolve

    if job["embeddings"]:
        _patch_embeddings(job["embeddings"])
    raw: dict[str, Any] = {}
    for assignment in job["overrides"]:
        apply_override(raw, assignment)
    t0 = time.perf_counter()
    metrics = train(resolve(raw), job["run_dir"])
    return {**job, "metrics": metrics, "wall": time.perf_counter() - t0}


def parse_variant(text: str) -> tuple[str, list[str]]:
    label, _, rest = text.partition(":")
    return label, [a for a in rest.split(",") if a]


def summarise(results: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["label"]), []).append(r["metrics"])
    lines = ["| dataset | variant | seeds | " + " | ".join(f"test {m}" for m in METRICS)
             + " | valid ndcg@10 | best epoch | s/epoch | params |", "|" + "---|" * (9 + len(METRICS) - 4)]
    for (ds, label), ms in sorted(groups.items(), key=lambda kv: (kv[0][0], -_mean(kv[1], "test", "ndcg@10"))):
        cells = [f"{_mean(ms, 'test', m):.4f} ± {_std(ms, 'test', m):.4f}" for m in METRICS]
        lines.append(f"| {ds} | {label} | {len(ms)} | " + " | ".join(cells)
                     + f" | {_mean(ms, 'valid', 'ndcg@10'):.4f} ± {_std(ms, 'valid', 'ndcg@10'):.4f}"
                     + f" | {statistics.mean(m['best_epoch'] for m in ms):.0f}"
                     + f" | {statistics.mean(m['train_seconds_per_epoch'] for m in ms):.2f}"
                     + f" | {ms[0].get('params', 0)} |")
    return "\n".join(lines)


def _mean(ms: list[dict[str, Any]], split: str, key: str) -> float:
    return statistics.mean(m[split][key] for m in ms)


def _std(ms: list[dict[str, Any]], split: str, key: str) -> float:
    return statistics.stdev(m[split][key] for m in ms) if len(ms) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="LABEL:key=value,key=value")
    ap.add_argument("--datasets", nargs="+", default=["office"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], help="override for every run")
    ap.add_argument("--embeddings", default="")
    ap.add_argument("--summary", default="")
    args = ap.parse_args(argv)
    jobs = []
    for ds in args.datasets:
        for seed in args.seeds:
            for text in args.variant:
                label, overrides = parse_variant(text)
                run_dir = str(Path(args.out) / ds / f"{label.replace(' ', '_')}-s{seed}")
                jobs.append({"label": label, "dataset": ds, "seed": seed, "run_dir": run_dir,
                             "embeddings": args.embeddings,
                             "overrides": [f"data.dataset={ds}", f"train.seed={seed}", "train.progress=false",
                                           f"model.label={label}", *args.set, *overrides]})
    results = []
    log = Path(args.summary).with_suffix(".jsonl") if args.summary else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_one, j) for j in jobs]
        for fut in as_completed(futures):
            try:
                r = fut.result()
            except Exception as exc:  # report the failed run and keep the others going
                print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                continue
            results.append(r)
            if log is not None:  # one line per finished run, so a killed grid keeps what it did
                with open(log, "a") as fh:
                    fh.write(json.dumps({k: r[k] for k in ("label", "dataset", "seed", "overrides", "metrics",
                                                           "wall")}) + "\n")
            m = r["metrics"]
            print(f"{r['dataset']} {r['label']} s{r['seed']}: test ndcg@10 {m['test']['ndcg@10']:.4f} "
                  f"valid {m['valid']['ndcg@10']:.4f} epochs {m['epochs']} ({r['wall']:.0f}s)", flush=True)
    table = summarise(results)
    print(table)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(table + "\n")
    return 0 if len(results) == len(jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
