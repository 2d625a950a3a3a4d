"""Write an embedding matrix with a known spectrum (spectran.spectral.planted) for ``--encoder npy:FILE``.

Takes a dataset's real E (from the embedding cache, encoded on demand), applies the planted
variants in order, and writes ``OUT.npy`` plus ``OUT.json`` (the plants, the seed, the source
encoder, and the first singular values before and after, normalised by the clean sigma_1), then
prints a short table of the spectrum.

    python bench/plant_spectrum.py --dataset office --plant noise:64:4 --out runs/planted/office-noise64.npy
    python bench/plant_spectrum.py --dataset office --plant tail:32:0.05 --out runs/planted/office-tail32.npy
    python bench/plant_spectrum.py --dataset office --plant drop:16 --plant noise:32:4:2 --out X.npy
    python bench/plant_spectrum.py --dataset office --plant noise:32:4:3 --plant rotate --out X.npy

Train on it with ``spectran train --dataset office --encoder npy:runs/planted/office-noise64.npy ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def top_singular(E: np.ndarray, k: int) -> np.ndarray:
    X = np.asarray(E, dtype=np.float64)
    return np.linalg.svd(X - X.mean(axis=0), compute_uv=False)[:k]


def main(argv: list[str] | None = None) -> int:
    from spectran.data.prepare import prepare
    from spectran.errors import SpectranError
    from spectran.io import write_json, write_npy
    from spectran.settings import DataSettings
    from spectran.spectral.planted import describe, parse_plant, planted_matrix
    from spectran.text.api import load_or_encode
    from spectran.text.settings import TextSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--plant", action="append", required=True, help="noise:COUNT[:STRENGTH[:SPREAD]] | "
                   "tail:COUNT[:FACTOR] | drop:COUNT | rotate (repeatable, applied in order)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the .npy file to write")
    args = p.parse_args(argv)
    try:
        plants = [parse_plant(t) for t in args.plant]
        out = Path(args.out)
        if out.suffix != ".npy":
            raise SpectranError(f"--out {out}: expected a .npy file name")
        ds = prepare(DataSettings(dataset=args.dataset, data_dir=args.data_dir))
        E = load_or_encode(ds, TextSettings(encoder=args.encoder), progress=False)
        planted = planted_matrix(E, plants, args.seed)
    except SpectranError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clean, after = top_singular(E, 160), top_singular(planted, 160)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_npy(out, planted)
    info = {**describe(plants, args.seed), "dataset": ds.name, "encoder": args.encoder,
            "shape": list(planted.shape), "sigma_clean": (clean / clean[0]).round(4).tolist(),
            "sigma_planted": (after / clean[0]).round(4).tolist()}
    write_json(out.with_suffix(".json"), info)
    print(f"{out}: {planted.shape[0]} x {planted.shape[1]} ({', '.join(args.plant)}, seed {args.seed})")
    print("| component | clean sigma / sigma_1 | planted sigma / clean sigma_1 |")
    print("|---|---|---|")
    for j in (0, 1, 15, 31, 63, 64, 65, 95, 127, 159):
        if j < len(after):
            print(f"| {j + 1} | {clean[j] / clean[0]:.3f} | {after[j] / clean[0]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
