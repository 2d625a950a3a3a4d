"""SpecTran's learned attention scalars in trained runs: the gate and the Softshrink lambda.

Reads each run's best checkpoint (no model is built) and prints the initial values from its
settings beside the trained ones, so whether the attention term grew or was shrunk away can be
read without a diagnostics pass:

    python bench/attention_params.py runs/tune/office/spectran/retest/seed*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from spectran.errors import SpectranError
    from spectran.runfolder import RunFolder
    from spectran.train.checkpoint import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    args = p.parse_args(argv)
    print("| run | gate init | gate trained | lambda init | lambda trained |\n|---|---|---|---|---|")
    for run in args.runs:
        folder = RunFolder(run)
        try:
            s = folder.read_settings()
            if s.model.method != "spectran" or s.method.attention == "none":
                raise SpectranError(f"{run}: not a SpecTran run with an attention term")
            state = load_checkpoint(folder.checkpoint("best"), map_location="cpu")["model"]
        except SpectranError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        gate, lam = float(state["item_encoder.gate"]), float(state["item_encoder.shrink"])
        print(f"| {run} | {s.method.gate_init:.4f} | {gate:.4f} | {s.method.shrink:.4f} | {lam:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
