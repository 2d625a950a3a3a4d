"""Serving throughput (issue 35): ``spectran serve`` under 1, 8 and 32 concurrent clients, with
and without dynamic batching; server start time and resident memory; batch scoring users/s.

Protocol, per run folder (``--runs office=PATH beauty=PATH``):
- the servers are child processes (``python -m spectran serve RUN --port 0 --threads T``): one
  per ``--max-wait-ms`` W (dynamic batching, ``--max-batch 64 --max-wait-ms W``; default W = 0
  and 2) and one ``--no-batching``, all started at once; start time = process start until it
  listens (model loaded), resident memory = VmRSS after the load;
- clients are keep-alive HTTP/1.1 connections of this process (asyncio, a minimal client so that
  the load generator costs little CPU); each sends ``POST /recommend`` (k = 10, history excluded)
  back to back for ``--seconds`` after a 1 s warm-up, histories = real users' test inputs (their
  most recent 50 items), cycled;
- the measurements alternate between the servers, ``--rounds`` times, so that a change in the
  machine's background load hits every mode alike; reported: requests/s (median of the rounds),
  p50 and p99 latency (ms, send to last byte, all rounds pooled), mean batch size, the server
  process's CPU use in cores (user + system time over wall time, warm-up included, mean of the
  rounds: the event loop and the model thread share one interpreter lock, so a server tops out
  near 1 core), errors, and each batched mode's throughput over the unbatched one at each
  concurrency.
With ``--score``: ``spectran score``'s users/s on the last run's dataset (every user, k = 10,
chunks of 1024, to a Parquet file) against ``Recommender.recommend`` called per user (a sample).
The clients share the machine with the server: on 2 cores the load generator takes CPU from it
(about 0.1 core at 2,000 requests/s: a raw keep-alive HTTP/1.1 client, no HTTP library).

    nice -n 15 python bench/bench_serve.py --runs office=runs/office beauty=runs/beauty --score
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np


async def _client(host: str, port: int, bodies: list[bytes], stop_at: float, warm_until: float,
                  latencies: list[float], start: int) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors, i = 0, start
    try:
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            writer.write(b"POST /recommend HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if t0 >= warm_until:
                latencies.append(time.perf_counter() - t0)
            if b" 200 " not in status:
                errors += 1
    finally:
        writer.close()
    return errors


async def _load(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    host, port = url.split("//")[1].rsplit(":", 1)
    now = time.perf_counter()
    warm_until, stop_at = now + 1.0, now + 1.0 + seconds
    latencies: list[float] = []
    errors = await asyncio.gather(*(_client(host, int(port), bodies, stop_at, warm_until, latencies, c * 97)
                                    for c in range(clients)))
    return {"rps": len(latencies) / seconds, "latencies": np.array(latencies), "errors": sum(errors)}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _histories(rec, n: int) -> list[list[int]]:
    from spectran.data.batches import eval_sequences
    from spectran.data.prepare import prepare

    arrays = eval_sequences(prepare(rec.settings.data), "test", rec.max_len)
    users = np.random.default_rng(0).choice(len(arrays.seqs), size=min(n, len(arrays.seqs)), replace=False)
    return [arrays.seqs[u, :arrays.lengths[u]].tolist() for u in users]


def bench_run(name: str, run: str, a: argparse.Namespace) -> list[str]:
    from contextlib import ExitStack

    import httpx

    from spectran.serve.launch import ServerProcess
    from spectran.serve.recommend import Recommender

    rec = Recommender.from_run(run)
    bodies = [json.dumps({"history": [rec.catalog.item_id(r - 1) for r in h], "k": 10}).encode()
              for h in _histories(rec, 1000)]
    modes = [(f"batched, wait {w:g} ms", ["--max-batch", str(a.max_batch), "--max-wait-ms", str(w)])
             for w in a.max_wait_ms] + [("unbatched", ["--no-batching"])]
    rows = []
    with ExitStack() as stack:
        servers = {}
        for mode, flags in modes:
            servers[mode] = stack.enter_context(ServerProcess(run, ["--threads", str(a.threads), *flags]))
            rows.append(f"| {name} | {mode}: start {servers[mode].start_seconds:.1f} s, resident "
                        f"{_rss_mib(servers[mode].pid):.0f} MiB ({len(rec.catalog):,} items) | | | | | | | |")
            print(rows[-1], flush=True)
        runs: dict[tuple[str, int], list[dict]] = {(m, c): [] for m, _ in modes for c in a.clients}
        batches: dict[tuple[str, int], list[tuple[int, int]]] = {key: [] for key in runs}
        for _ in range(a.rounds):
            for clients in a.clients:
                for mode, _ in modes:
                    url = servers[mode].url
                    before = httpx.get(url + "/meta", trust_env=False, timeout=30).json()["batching"]
                    cpu, wall = _cpu_seconds(servers[mode].pid), time.perf_counter()
                    runs[mode, clients].append(asyncio.run(_load(url, bodies, clients, a.seconds)))
                    runs[mode, clients][-1]["cores"] = ((_cpu_seconds(servers[mode].pid) - cpu)
                                                        / (time.perf_counter() - wall))
                    after = httpx.get(url + "/meta", trust_env=False, timeout=30).json()["batching"]
                    batches[mode, clients].append((after["items"] - before["items"],
                                                   after["batches"] - before["batches"]))
    rps = {}
    for mode, _ in modes:
        for clients in a.clients:
            done = runs[mode, clients]
            lat = np.concatenate([r["latencies"] for r in done]) * 1000
            rps[mode, clients] = float(np.median([r["rps"] for r in done]))
            items, count = (sum(x) for x in zip(*batches[mode, clients], strict=True))
            errors = sum(r["errors"] for r in done)
            cores = np.mean([r["cores"] for r in done])
            rows.append(f"| {name} | {mode} | {clients} | {rps[mode, clients]:.0f} | {np.percentile(lat, 50):.1f} | "
                        f"{np.percentile(lat, 99):.1f} | {items / max(count, 1):.1f} | {cores:.2f} | {errors} |")
            print(rows[-1], flush=True)
    for mode, _ in modes[:-1]:
        for clients in a.clients:
            rows.append(f"| {name} | {mode} / unbatched | {clients} | "
                        f"{rps[mode, clients] / rps['unbatched', clients]:.2f}x | | | | | |")
            print(rows[-1], flush=True)
    return rows


def bench_score(run: str, a: argparse.Namespace) -> list[str]:
    import torch

    from spectran.serve.recommend import Recommender
    from spectran.serve.score import score

    torch.set_num_threads(a.threads)
    rec = Recommender.from_run(run)
    out = Path(a.workdir) / "bench_score.parquet"
    done = score(run, out, k=10, batch_size=1024, progress=False, rec=rec)
    out.unlink()
    from spectran.serve.score import dataset_histories

    users, rows = dataset_histories(rec)
    sample = rows[:: max(1, len(rows) // a.per_user_sample)][:a.per_user_sample]
    ids = [[rec.catalog.item_id(r) for r in h] for h in sample]
    t0 = time.perf_counter()
    for h in ids:
        rec.recommend(h, k=10)
    per_user = len(ids) / (time.perf_counter() - t0)
    return [f"| {rec.settings.data.dataset} | {len(users):,} | {done['users_per_s']:.0f} | {per_user:.0f} | "
            f"{done['users_per_s'] / per_user:.1f}x |"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=RUN_DIR ...")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=4.0, help="measured seconds per level (after 1 s warm-up)")
    ap.add_argument("--rounds", type=int, default=3, help="measurements per (mode, clients), interleaved")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, nargs="+", default=[0.0, 2.0], help="one batched server per value")
    ap.add_argument("--score", action="store_true", help="also time batch scoring on the last run's dataset")
    ap.add_argument("--per-user-sample", type=int, default=2000, help="users timed one by one (Recommender)")
    ap.add_argument("--workdir", default="/tmp")
    a = ap.parse_args()
    runs = dict(item.split("=", 1) for item in a.runs)
    print(f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the start), server --threads "
          f"{a.threads}, batching --max-batch {a.max_batch}, {a.rounds} rounds of {a.seconds:.0f} s per level, "
          "modes interleaved",
          flush=True)
    table = ["| run | mode | clients | requests/s | p50 ms | p99 ms | mean batch | server CPU, cores | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(table), flush=True)
    for name, run in runs.items():
        table += bench_run(name, run, a)
    print("\n" + "\n".join(table))
    if a.score:
        scored = ["| dataset | users | score users/s | Recommender per user, users/s | ratio |",
                  "|---|---:|---:|---:|---:|", *bench_score(list(runs.values())[-1], a)]
        print("\n" + "\n".join(scored))


if __name__ == "__main__":
    main()
