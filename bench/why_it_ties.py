"""Why SpecTran ties the frozen SVD truncation: what its parts do, and how alike the two models rank.

For trained runs of two methods on one dataset (``--a`` and ``--b``, one run per seed, paired in
order), prints

1. per run: the learned scalars of SpecTran (gate, Softshrink lambda, the share of phi(S) held at
   exactly zero), the attention term's RMS over the RMS of the semantic table E_s, how far the
   position weights g(x) moved from their start (RMS change over RMS start), and the ID table's
   RMS over the RMS of the fused item table (the part learned per item, not from text);
2. for every pair of runs: the mean overlap of the users' top-K lists (|A ∩ B| / K, each user's
   whole sequence as history, seen items excluded) and the linear CKA of the two item tables.
   Pairs of the same method with different seeds are the yardstick: when A-vs-B overlap is as
   high as A-vs-A across seeds, the two methods differ no more than a reseeding does.

    python bench/why_it_ties.py --a runs/paper_grid/office/sasrec/spectran/encoder-gemma3-270m/seed* \
        --b runs/paper_grid/office/sasrec/svd_frozen/encoder-gemma3-270m/seed* --k 10

Model loading and scoring only (no training): seconds on office, a minute or two on beauty.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch


def _rms(x: torch.Tensor) -> float:
    return float(x.detach().double().pow(2).mean().sqrt())


def parts(rec) -> dict[str, str]:
    """The table of per-run quantities (formatted), '-' where a method has no such part."""
    enc = rec.model.item_encoder
    row = dict.fromkeys(("gate", "lambda", "phi zero", "attn/E_s", "g moved", "ID/table"), "-")
    fusion = getattr(enc, "fusion", None)
    if fusion is not None and fusion.id_table is not None:
        row["ID/table"] = f"{_rms(fusion.ids()) / _rms(rec.table[:fusion.id_table.shape[0]]):.3f}"
    summary = enc.attention_summary() if hasattr(enc, "attention_summary") else None
    if summary:
        row["gate"], row["attn/E_s"] = f"{summary['gate']:.4f}", f"{summary['rms_ratio']:.4f}"
        if "shrink" in summary:
            row["lambda"] = f"{summary['shrink']:.4f}"
        with torch.no_grad():
            row["phi zero"] = f"{float((enc.attention_scores() == 0).double().mean()):.4f}"
    if getattr(enc, "beta", None) is not None and hasattr(enc, "position_weights"):
        from spectran.encoders.spectran import _beta_init

        with torch.no_grad():
            now = enc.position_weights()
            start_beta = _beta_init(enc.s.order, enc.s.position_init).to(now)
            powers = torch.stack([enc.position_x ** m for m in range(len(start_beta))])
            start = (start_beta[:, None] * powers).sum(dim=0)
        row["g moved"] = f"{_rms(now - start) / max(_rms(start), 1e-12):.4f}"
    return row


def top_lists(rec, histories: list[list[int]], k: int, batch: int = 512) -> np.ndarray:
    """(U, k) top-k rows of every history (seen items excluded)."""
    from spectran.serve.recommend import Query

    out = np.full((len(histories), k), -1, dtype=np.int64)
    for start in range(0, len(histories), batch):
        answers = rec.top_rows([Query(h, k) for h in histories[start:start + batch]])
        for j, answer in enumerate(answers):
            out[start + j, :len(answer)] = [r for r, _ in answer]
    return out


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    k = a.shape[1]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist(), strict=True)]))


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two (N, d) tables (1 = the same up to rotation and scale)."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    return float(cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)))


def main(argv: list[str] | None = None) -> int:
    from spectran.errors import SpectranError
    from spectran.serve.recommend import Recommender
    from spectran.serve.score import dataset_histories

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", nargs="+", type=Path, required=True, help="runs of the first method, one per seed")
    p.add_argument("--b", nargs="+", type=Path, required=True, help="runs of the second method, one per seed")
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        recs = {run: Recommender.from_run(run) for run in [*args.a, *args.b]}
    except SpectranError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    datasets = {r.settings.data.dataset for r in recs.values()}
    if len(datasets) != 1:
        print(f"error: the runs are on different datasets {sorted(datasets)}", file=sys.stderr)
        return 2
    _, histories = dataset_histories(next(iter(recs.values())))
    names = {run: f"{r.settings.model.method} s{r.settings.train.seed}" for run, r in recs.items()}

    cols = ["gate", "lambda", "phi zero", "attn/E_s", "g moved", "ID/table"]
    print(f"dataset {datasets.pop()}, {len(histories)} users, top-{args.k}\n")
    print("| run | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for run, rec in recs.items():
        row = parts(rec)
        print(f"| {names[run]} | " + " | ".join(row[c] for c in cols) + " |")

    tops = {run: top_lists(rec, histories, args.k) for run, rec in recs.items()}
    print(f"\n| pair | kind | top-{args.k} overlap | CKA of item tables |\n|---|---|---|---|")
    summary: dict[str, list[float]] = {}
    for x, y in itertools.combinations(recs, 2):
        same = recs[x].settings.model.method == recs[y].settings.model.method
        paired = not same and recs[x].settings.train.seed == recs[y].settings.train.seed
        kind = "same method, other seed" if same else ("A vs B, same seed" if paired else "A vs B, other seed")
        o = overlap(tops[x], tops[y])
        summary.setdefault(kind, []).append(o)
        cka = linear_cka(recs[x].table, recs[y].table)
        print(f"| {names[x]} / {names[y]} | {kind} | {o:.3f} | {cka:.3f} |")
    print(f"\n| kind | pairs | mean top-{args.k} overlap |\n|---|---|---|")
    for kind, values in summary.items():
        print(f"| {kind} | {len(values)} | {np.mean(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
