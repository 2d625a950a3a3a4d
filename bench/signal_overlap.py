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
- s: the seconds the SVD and the selection take (training pairs, rho, noise floor).

The measurements are those of ``spectran advise`` (``spectran.advise.measure``), which also gives
the verdict; this script prints them as one table row per dataset x embedding.

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
from pathlib import Path


def overlap_row(dataset: str, encoder: str, dim: int, pooling: str = "mean") -> dict:
    import torch

    from spectran.advise.measure import spectrum_of
    from spectran.data.prepare import prepare
    from spectran.settings import DataSettings
    from spectran.text.api import load_or_encode
    from spectran.text.settings import TextSettings

    ds = prepare(DataSettings(dataset=dataset))
    E = load_or_encode(ds, TextSettings(encoder=encoder, pooling=pooling), progress=False)
    pairs = ds.train_transitions()
    s = spectrum_of(E, torch.from_numpy(pairs), dim, f"{dataset} / {encoder}")
    return {"dataset": dataset, "encoder": encoder, "D": E.shape[1], "rank": s.rank, "pairs": len(pairs),
            "overlap": s.overlap, "k": s.k, "noise_like": s.noise_like, "rho_sigma": s.rho_top,
            "rho_signal": s.rho_best, "floor": s.noise_floor, "seconds": s.seconds, "share": s.share,
            "auto": s.auto, "above": s.above_floor}


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
          "that are noise-like | mean rho, top-d by sigma | mean rho, top-d by signal | share | auto "
          "| above floor | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    from spectran.errors import SpectranError

    for dataset in args.dataset:
        pairs = [(e, p) for e in args.encoder for p in (args.pooling if e.startswith("hf:") else ["mean"])]
        for encoder, pooling in pairs:
            try:
                r = overlap_row(dataset, encoder, args.dim, pooling)
            except SpectranError as exc:  # a dataset or an encoder this machine lacks: one line
                print(f"error: {dataset} / {encoder}: {exc}", file=sys.stderr)
                return 2
            name = (f"{Path(encoder[3:]).name or encoder} ({pooling} pooling, hf:)" if encoder.startswith("hf:")
                    else encoder)
            print(f"| {r['dataset']} | {name} | {r['D']} | {r['rank']} | {r['floor']:.4f} | "
                  f"{r['overlap']} / {r['k']} | "
                  f"{r['noise_like']} / {r['k']} | {r['rho_sigma']:.3f} | {r['rho_signal']:.3f} | "
                  f"{r['share']:.2f} | {r['auto']} | {r['above']} / {r['rank']} | {r['seconds']:.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
