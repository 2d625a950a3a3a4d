"""Recommend latency (issue 8): one user's top-10 from a loaded run, on beauty by default.

Protocol: load the run once (``Recommender.from_run``: rebuilds the model, loads ``best``,
precomputes the item table), then time ``recommend(history, k=10)`` for ``--queries`` users'
real histories (their test inputs, most recent 50 items), one query at a time, after 10 warm-up
queries. Reports load time and the median / p95 milliseconds per query.

Without ``--run-dir`` it first trains a short run (``--epochs``, default 1: latency does not
depend on how well the model is trained) into ``--workdir``. Heavy: run it through the slot:

    python bench/bench_recommend.py --threads 1 > /tmp/rec.log 2>&1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", help="an existing run (else one is trained)")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--method", default="id")
    ap.add_argument("--encoder", default="minilm", help="text encoder of a trained run (text-based methods)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/spectran_bench_recommend")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "recommend.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from spectran.api import train
    from spectran.data.batches import eval_sequences
    from spectran.serve.recommend import Recommender
    from spectran.settings import resolve

    run = Path(a.run_dir) if a.run_dir else Path(a.workdir) / f"{a.dataset}-{a.method}-{a.encoder}-e{a.epochs}"
    if not a.run_dir:
        s = resolve({"data": {"dataset": a.dataset}, "model": {"method": a.method}, "text": {"encoder": a.encoder},
                     "train": {"epochs": a.epochs, "progress": False, "threads": a.threads}})
        t0 = time.perf_counter()
        train(s, run)
        print(f"trained {run} in {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    rec = Recommender.from_run(run)
    load_s = time.perf_counter() - t0
    ds_arrays = eval_sequences(_data(rec), "test", rec.max_len)
    rng = np.random.default_rng(0)
    users = rng.choice(len(ds_arrays.seqs), size=min(a.queries + 10, len(ds_arrays.seqs)), replace=False)
    histories = [ds_arrays.seqs[u, :ds_arrays.lengths[u]].tolist() for u in users]
    times = []
    for i, h in enumerate(histories):
        t0 = time.perf_counter()
        top = rec.recommend(h, k=10)
        if i >= 10:  # warm-up excluded
            times.append((time.perf_counter() - t0) * 1000)
        assert len(top) == 10
    med, p95 = statistics.median(times), float(np.percentile(times, 95))
    lines = ["# Recommend latency (bench/bench_recommend.py)", "",
             f"Run: `{run}` ({rec.settings.data.dataset}, {rec.settings.model.backbone} + {rec.settings.model.method}, "
             f"text encoder {rec.settings.text.encoder}, {len(rec.table):,} items, d = {rec.settings.model.dim}); "
             f"torch {torch.__version__}, "
             f"{a.threads} CPU thread(s); {len(times)} queries of real test histories, k = 10, history excluded.", "",
             "| load (s) | median ms/query | p95 ms/query |", "|---:|---:|---:|",
             f"| {load_s:.2f} | {med:.2f} | {p95:.2f} |"]
    print("\n".join(lines))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def _data(rec):
    from spectran.data.prepare import prepare

    return prepare(rec.settings.data)


if __name__ == "__main__":
    main()
