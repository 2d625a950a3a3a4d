"""Write the concatenation of several text encoders' item matrices, for ``--encoder npy:FILE``.

Each encoder's E comes from the embedding cache (encoded on demand); the matrices are joined column
by column in the order given, each kept as its encoder wrote it (L2-normalised rows for minilm
and mpnet), so every part carries the same total variance. Writes ``OUT.npy`` plus ``OUT.json``
(the parts and their widths).

    python bench/concat_encoders.py --dataset office --encoders minilm mpnet --out runs/regimes/office-minilm+mpnet.npy

Train on it with ``spectran train --dataset office --encoder npy:runs/regimes/office-minilm+mpnet.npy``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from spectran.data.prepare import prepare
    from spectran.errors import SpectranError
    from spectran.io import write_json, write_npy
    from spectran.settings import DataSettings
    from spectran.text.api import load_or_encode
    from spectran.text.settings import TextSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--encoders", nargs="+", required=True, help="two or more text encoders (minilm, mpnet, ...)")
    p.add_argument("--out", required=True, help="the .npy file to write")
    args = p.parse_args(argv)
    try:
        out = Path(args.out)
        if out.suffix != ".npy":
            raise SpectranError(f"--out {out}: expected a .npy file name")
        if len(args.encoders) < 2:
            raise SpectranError(f"--encoders {' '.join(args.encoders)}: expected two or more encoders")
        ds = prepare(DataSettings(dataset=args.dataset, data_dir=args.data_dir))
        parts = [load_or_encode(ds, TextSettings(encoder=name), progress=False) for name in args.encoders]
    except SpectranError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    E = np.concatenate(parts, axis=1).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_npy(out, E)
    widths = [int(part.shape[1]) for part in parts]
    write_json(out.with_suffix(".json"), {"dataset": args.dataset, "encoders": args.encoders, "widths": widths})
    print(f"{out}: {E.shape[0]} items x {E.shape[1]} ({' + '.join(map(str, widths))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
