"""``spectran encode``: encode a dataset's item texts once and cache E.

    spectran encode --dataset office [--encoder minilm|mpnet|fake|st:PATH|hf:PATH|npy:FILE]
                    [--set text.normalize=true] [--set train.threads=1] [--refresh] [--no-progress]

Prints one JSON object: the cache path, the matrix shape, and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def _cmd_encode(args: argparse.Namespace) -> int:
    from spectran.cli import settings_from_args
    from spectran.data.prepare import prepare
    from spectran.text.api import embedding_path, load_or_encode

    s = settings_from_args(args)
    if s.train.threads > 0:
        import torch

        torch.set_num_threads(s.train.threads)
    start = time.perf_counter()
    ds = prepare(s.data)
    E = load_or_encode(ds, s.text, progress=False if args.no_progress else None, refresh=args.refresh)
    out: dict[str, Any] = {"path": str(embedding_path(ds, s.text)), "shape": list(E.shape),
                           "seconds": round(time.perf_counter() - start, 3), "encoder": s.text.encoder}
    print(json.dumps(out, indent=2))
    return 0


def register(subparsers: Any) -> None:
    from spectran.cli import add_run_flags

    p = subparsers.add_parser("encode", help="encode item texts into the semantic embedding cache")
    add_run_flags(p)
    p.add_argument("--refresh", action="store_true", help="re-encode even if a valid cache exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_encode)
