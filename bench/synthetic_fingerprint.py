"""Behaviour fingerprint: tiny synthetic trainings whose metrics must not move under a refactor.

Trains each (method, backbone) pair on the built-in synthetic dataset with the offline ``fake``
text encoder (d = 16, one layer, 2 epochs, one thread, seed 0) through the public API only
(:func:`spectran.settings.resolve`, :func:`spectran.api.train`), so the same script runs against
an older checkout put first on ``PYTHONPATH``. Prints one JSON object ``{"method/backbone":
metrics}`` with every float as Python's ``repr`` (all digits); compare two outputs with ``diff``.

    python bench/synthetic_fingerprint.py --runs /tmp/fp-new > /tmp/fp-new.json
    PYTHONPATH=/tmp/old-checkout/src python bench/synthetic_fingerprint.py --runs /tmp/fp-old > /tmp/fp-old.json
    diff /tmp/fp-old.json /tmp/fp-new.json

Cache: ``$SPECTRAN_CACHE`` (the prepared synthetic data and fake embeddings are tiny).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spectran.api import train
from spectran.settings import resolve

PAIRS = [("id", "sasrec"), ("spectran", "sasrec"), ("llmesr", "sasrec"), ("rlmrec", "sasrec"),
         ("svd_frozen", "bert4rec"), ("mlp", "gru4rec"), ("whiten_mlp", "hstu")]
KEPT = ("valid", "test", "best_epoch", "epochs", "params")  # timing fields differ run to run


def settings(method: str, backbone: str, epochs: int):
    return resolve({
        "data": {"dataset": "synthetic"}, "text": {"encoder": "fake"},
        "model": {"method": method, "backbone": backbone, "dim": 16},
        "backbone": {"layers": 1},
        "train": {"epochs": epochs, "batch_size": 128, "threads": 1, "progress": False, "seed": 0},
    })


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="folder for the run folders (must not hold older runs)")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    out = {}
    for method, backbone in PAIRS:
        metrics = train(settings(method, backbone, args.epochs), Path(args.runs) / f"{method}-{backbone}")
        out[f"{method}/{backbone}"] = {k: metrics[k] for k in KEPT}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
