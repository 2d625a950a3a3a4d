"""Large-catalog bench: 1,000,000 items x 768 dims on this CPU.

Phases, each timed, with the process's peak RSS after it:
1. write a synthetic semantic matrix E (N x D float32, ~3 GB) to a memory-mapped .npy in chunks
   (low-rank signal + noise, so the spectrum is not flat);
2. the streamed SVD ``spectran.spectral.basis.compute_basis(E_memmap, center=True, chunk_rows)``
   (the D x D Gram matrix in float64, one chunk of E in memory at a time);
3. one training epoch of SASRec + ``spectran`` with sampled softmax (uniform negatives, logQ) on a
   synthetic interaction set over those items (E_s = U_hat (N x r)(r x d) is recomputed each step:
   that product is the cost this bench exposes);
4. full-ranking evaluation of some users with the item-chunked ranks (no (B, N) matrix).

Run it through the CPU-slot wrapper (it is heavy):

    python bench/bench_scale.py --threads 1 > /tmp/scale.log 2>&1

The table is printed and written to bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from pathlib import Path

import numpy as np
import torch


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


class AnonPeak:
    """Peak anonymous resident memory (RssAnon: heap, tensors), sampled every 50 ms.

    ru_maxrss also counts the pages of the memory-mapped E that were read (RssFile): page cache
    the kernel can drop at any time, so both are reported.
    """

    def __init__(self) -> None:
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())

    @staticmethod
    def now() -> float:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 2**20  # KiB -> GiB
        return 0.0


def write_npy_chunked(path: Path, n: int, d: int, chunk: int, seed: int = 0) -> np.memmap:
    """Write E chunk by chunk through a file handle (no mapping), then open it memory-mapped."""
    rng = np.random.default_rng(seed)
    k = 32  # latent signal rank
    basis = rng.standard_normal((k, d)).astype(np.float32) * np.linspace(3.0, 0.3, k, dtype=np.float32)[:, None]
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
        for lo in range(0, n, chunk):
            m = min(chunk, n - lo)
            block = rng.standard_normal((m, k), dtype=np.float32) @ basis \
                + 0.1 * rng.standard_normal((m, d), dtype=np.float32)
            fh.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
    return np.load(path, mmap_mode="r")


def synthetic_sequences(n_items: int, users: int, seed: int = 1):
    from spectran.data.prepare import PreparedDataset

    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 31, users)
    items = (n_items * rng.random(int(lengths.sum())) ** 3).astype(np.int64) + 1  # popularity skew
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return PreparedDataset("scale", n_items, offsets, items, [], {}, Path("/tmp"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim-text", type=int, default=768)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--rank", type=int, default=256, help="method.rank r of spectran (0 = all)")
    ap.add_argument("--negatives", type=int, default=1024)
    ap.add_argument("--chunk-rows", type=int, default=65536)
    ap.add_argument("--eval-users", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/spectran_scale")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from spectran.backbones.registry import backbone_spec
    from spectran.data.batches import eval_sequences
    from spectran.encoders.base import ItemContext
    from spectran.encoders.registry import method_spec
    from spectran.eval.evaluate import rank_targets
    from spectran.model import SeqRecModel
    from spectran.objectives import CausalObjective
    from spectran.settings import resolve
    from spectran.spectral.basis import compute_basis
    from spectran.train.loop import Trainer
    from spectran.train.sampled import SampledSoftmax

    rows = []
    anon = AnonPeak()

    def record(phase: str, seconds: float, note: str = "") -> None:
        rows.append((phase, seconds, peak_rss_gib(), max(anon.peak, anon.now()), note))
        print(f"{phase:<28} {seconds:9.1f} s   peak RSS {rows[-1][2]:.2f} GiB   peak anon {rows[-1][3]:.2f} GiB"
              f"  {note}", flush=True)

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    E = write_npy_chunked(work / "E.npy", a.items, a.dim_text, a.chunk_rows)
    record("write E (.npy by chunks)", time.perf_counter() - t0, f"{a.items:,} x {a.dim_text} float32")

    t0 = time.perf_counter()
    basis = compute_basis(E, center=True, chunk_rows=a.chunk_rows)
    record("streamed SVD (Gram)", time.perf_counter() - t0, f"rank {basis.rank}, chunk {a.chunk_rows:,} rows")
    del E  # unmap E: training needs only the basis (its read pages would otherwise stay in RSS)

    s = resolve({"model": {"method": "spectran", "dim": 64}, "method": {"rank": a.rank},
                 "train": {"loss": "sampled", "num_negatives": a.negatives, "negatives": "uniform",
                           "epochs": 1, "progress": False, "threads": a.threads}})
    ds = synthetic_sequences(a.items, a.users)
    ctx = ItemContext(a.items, 64, None, basis, torch.zeros(a.items), 0)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    encoder = method_spec("spectran").build(s.method, ctx)
    del ctx, basis  # the encoder keeps U_hat (N x r) and the cold-start projector only
    model = SeqRecModel(encoder, [backbone_spec("sasrec").build(s.backbone, 64, 50)], a.items, 64)
    record("build spectran model", time.perf_counter() - t0, f"r = {encoder.rank}")

    from spectran.data.batches import training_sequences

    trainer = Trainer(model, CausalObjective(), SampledSoftmax(a.negatives, "uniform"),
                      training_sequences(ds, 51), lambda m: np.ones(1), s, None, torch.device("cpu"))
    t0 = time.perf_counter()
    loss = trainer.train_epoch(0)
    steps = (a.users + s.train.batch_size - 1) // s.train.batch_size
    record("1 training epoch", time.perf_counter() - t0,
           f"{a.users:,} users, {steps} steps of {s.train.batch_size}, loss {loss:.3f}")

    arrays = eval_sequences(ds, "test", 50)
    sub = np.arange(min(a.eval_users, ds.num_users))
    t0 = time.perf_counter()
    ranks = rank_targets(model, CausalObjective(), arrays, ds.targets("test"), 256, torch.device("cpu"), rows=sub)
    record("chunked full-ranking eval", time.perf_counter() - t0,
           f"{len(sub):,} users x {a.items:,} items, mean rank {ranks.mean():,.0f}")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Large-catalog bench (bench/bench_scale.py)", "",
             f"Command: `python bench/bench_scale.py --items {a.items} --dim-text {a.dim_text} --users {a.users} "
             f"--rank {a.rank} --negatives {a.negatives} --threads {a.threads}`; torch {torch.__version__}, "
             f"{a.threads} CPU thread(s). Peak RSS = the process maximum so far (ru_maxrss, includes the "
             "pages of the memory-mapped E that were read: reclaimable page cache); peak anon = the maximum "
             "of RssAnon (heap and tensors) sampled every 50 ms.", "",
             "| phase | seconds | peak RSS (GiB) | peak anon (GiB) | note |", "|---|---:|---:|---:|---|"]
    lines += [f"| {p} | {sec:.1f} | {rss:.2f} | {an:.2f} | {note} |" for p, sec, rss, an, note in rows]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
