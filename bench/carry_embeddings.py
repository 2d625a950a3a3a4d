"""Write the encoded item matrices of several datasets into one folder, for a machine that cannot
encode them itself (the GPU machine reaches no network and the GGUF model cannot travel).

Each dataset's E (from the embedding cache, encoded first if absent) is written as
``OUT/{dataset}.npy`` (float16 with ``--fp16``: half the bytes; check on CPU that it changes no
metric before relying on it) with ``OUT/manifest.json`` naming the encoder settings and each
file's SHA-256. A run then reads them through one setting for every dataset:

    SPECTRAN_DATA=/path/to/data python bench/carry_embeddings.py --encoder gemma3-270m \\
        --datasets office beauty --out carry/gemma3-270m [--fp16]
    TEXT_ENCODER='npy:carry/gemma3-270m/{dataset}.npy' FILTERS="encoder=gemma3-270m" \\
        SWEEP=sweeps/paper_grid.yaml bash bench/gpu.sh OUT_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spectran.data.prepare import prepare
from spectran.io import atomic_path, sha256_file, write_json
from spectran.settings import DataSettings
from spectran.text.api import load_or_encode
from spectran.text.settings import TextSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="text.* settings, e.g. pooling=last")
    args = ap.parse_args()
    extra = dict(kv.removeprefix("text.").split("=", 1) for kv in args.set)
    s = TextSettings(encoder=args.encoder, **extra)
    s.validate()
    files = {}
    for name in args.datasets:
        E = load_or_encode(prepare(DataSettings(dataset=name)), s, progress=False)
        out = args.out / f"{name}.npy"
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, E.astype(np.float16 if args.fp16 else np.float32))
        files[name] = {"shape": list(E.shape), "sha256": sha256_file(out), "bytes": out.stat().st_size}
        print(f"{out}: {E.shape[0]} x {E.shape[1]}, {out.stat().st_size / 2**20:.1f} MiB")
    write_json(args.out / "manifest.json", {"text": {"encoder": args.encoder, **extra}, "fp16": args.fp16,
                                           "files": files})


if __name__ == "__main__":
    main()
