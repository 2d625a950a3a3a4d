"""Before training: does the top of E's spectrum carry the collaborative signal? (no training)

For each dataset x embedding, computes the SVD of the centred E and each component's
collaborative signal rho (``transition_signal``: correlation of the component between consecutive
training items), then prints how the d components SpecTran's ``position_by=signal`` picks compare
with the top-d by singular value that ``svd_frozen`` and the paper's SpecTran use:

- overlap: how many of the top-d by sigma are also among the top-d by signal;
- noise-like: how many of the top-d by sigma have rho below ``noise_floor`` (3 x the RMS rho of
  random Gaussian directions over the same pairs), i.e. are indistinguishable from pure noise:
  exactly the components SpecTran's default ``position_by=informative`` skips;
- mean rho of the top-d by sigma and of the top-d by signal;
- share: the mean rho of the components ``informative`` picks over that of the top-d by signal
  (``signal_share``), and what the default ``position_by=auto`` therefore builds (``auto_rule``:
  ``informative`` at a share of at least ``method.min_signal_share``, 0.8, else ``signal``);
- above floor: how many of all the components reach the noise floor, i.e. what
  ``method.attend=informative`` lets the attention term read;
- selection s: the seconds this takes (training pairs, rho, noise floor), i.e. what building
  SpecTran with ``position_by=informative`` or ``signal`` adds once.

A low overlap is where the two disagree, hence where ``position_by`` can matter at all.

    python bench/signal_overlap.py --dataset office --encoder minilm npy:runs/planted/office-noise64.npy
    python bench/signal_overlap.py --dataset office beauty --encoder minilm mpnet --dim 64
    python bench/signal_overlap.py --dataset office --encoder minilm hf:MINILM_FOLDER --pooling mean cls last

(MINILM_FOLDER: ``python -c "from spectran.text.models import minilm_path; print(minilm_path())"``;
read through ``hf:`` the same model gives its raw last-layer token states, pooled, without the
sentence-transformers pipeline's normalisation.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def overlap_row(dataset: str, encoder: str, dim: int, pooling: str = "mean") -> dict:
    import torch

    from spectran.data.prepare import prepare
    from spectran.encoders.spectral_coords import (
        auto_rule,
        noise_floor,
        scaled_coords,
        select_components,
        transition_signal,
    )
    from spectran.encoders.spectran import SpecTranSettings
    from spectran.settings import DataSettings
    from spectran.spectral.basis import compute_basis
    from spectran.text.api import load_or_encode
    from spectran.text.settings import TextSettings

    ds = prepare(DataSettings(dataset=dataset))
    E = load_or_encode(ds, TextSettings(encoder=encoder, pooling=pooling), progress=False)
    basis = compute_basis(E)
    start = time.perf_counter()  # what SpecTran's build adds: the pairs, rho, the noise floor
    pairs = torch.from_numpy(ds.train_transitions())
    rho = transition_signal(scaled_coords(basis, 0, "sqrt_n"), pairs)
    k = min(dim, basis.rank)
    by_signal = set(select_components(rho, k).tolist())
    top = list(range(k))
    floor = noise_floor(pairs, ds.num_items)
    auto, share = auto_rule(rho, k, floor, SpecTranSettings().min_signal_share)
    seconds = time.perf_counter() - start
    return {"dataset": dataset, "encoder": encoder, "D": E.shape[1], "rank": basis.rank, "pairs": pairs.shape[0],
            "overlap": len(by_signal.intersection(top)), "k": k,
            "noise_like": int((rho[:k] < floor).sum()), "rho_sigma": float(rho[:k].mean()),
            "rho_signal": float(rho[sorted(by_signal)].mean()), "floor": floor, "seconds": seconds,
            "share": share, "auto": auto, "above": int((rho >= floor).sum())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", nargs="+", required=True)
    p.add_argument("--encoder", nargs="+", default=["minilm"])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--pooling", nargs="+", default=["mean"], choices=["mean", "last", "cls"],
                   help="text.pooling of hf: encoders (each hf: encoder is read once per pooling)")
    args = p.parse_args(argv)
    print(f"d = {args.dim}; rho: correlation of a component between consecutive training items")
    print("| dataset | E | D | rank | noise floor | overlap of top-d by sigma and by signal | top-d by sigma "
          "that are noise-like | mean rho, top-d by sigma | mean rho, top-d by signal | share | auto | above floor | selection s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    from spectran.errors import SpectranError

    for dataset in args.dataset:
        for encoder, pooling in [(e, p) for e in args.encoder for p in (args.pooling if e.startswith("hf:") else ["mean"])]:
            try:
                r = overlap_row(dataset, encoder, args.dim, pooling)
            except SpectranError as exc:  # a dataset or an encoder this machine lacks: one line
                print(f"error: {dataset} / {encoder}: {exc}", file=sys.stderr)
                return 2
            name = f"{Path(encoder[3:]).name or encoder} ({pooling} pooling, hf:)" if encoder.startswith("hf:") else encoder
            print(f"| {r['dataset']} | {name} | {r['D']} | {r['rank']} | {r['floor']:.4f} | "
                  f"{r['overlap']} / {r['k']} | "
                  f"{r['noise_like']} / {r['k']} | {r['rho_sigma']:.3f} | {r['rho_signal']:.3f} | "
                  f"{r['share']:.2f} | {r['auto']} | {r['above']} / {r['rank']} | {r['seconds']:.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
