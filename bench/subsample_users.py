"""A sparser dataset folder from a staged one: a random sample of its users, items renumbered.

Defaults are checked on catalogs the project does not have; sampling users from a large catalog
makes one of their kind (many items, few users, few interactions per item). Writes
``sequences.txt`` (one user per line: user id, then item ids oldest first) and ``items.jsonl``
(the kept items' records, ``item`` renumbered 1..M in order of first appearance, ``orig_id``
kept) to OUT, which any spectran command reads as ``--dataset OUT``:

    python bench/subsample_users.py --dataset clothing --users 8900 --seed 0 --out runs/clothing-8900u
    spectran train --dataset runs/clothing-8900u --encoder minilm --method spectran ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from spectran.data.prepare import locate
    from spectran.errors import SpectranError
    from spectran.settings import DataSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a staged dataset name or folder")
    p.add_argument("--users", type=int, required=True, help="how many users to keep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        src = locate(DataSettings(dataset=args.dataset))
    except SpectranError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if src is None:
        print("error: --dataset synthetic has no folder to sample from", file=sys.stderr)
        return 2
    lines = [line.split() for line in (src / "sequences.txt").read_text().splitlines() if line.strip()]
    if not 1 <= args.users <= len(lines):
        print(f"error: --users {args.users}: expected 1..{len(lines)} (users in {src})", file=sys.stderr)
        return 2
    keep = np.sort(np.random.default_rng(args.seed).choice(len(lines), args.users, replace=False))
    new_id: dict[str, int] = {}
    sequences = []
    for u, row in enumerate(keep, start=1):
        items = [new_id.setdefault(i, len(new_id) + 1) for i in lines[row][1:]]
        sequences.append(" ".join(map(str, [u, *items])))
    records = {}
    with open(src / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if str(rec["item"]) in new_id:
                records[new_id[str(rec["item"])]] = {**rec, "item": new_id[str(rec["item"])]}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("sequences.txt", "\n".join(sequences) + "\n"),
                       ("items.jsonl", "".join(json.dumps(records[i]) + "\n" for i in sorted(records)))):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, args.out / name)
    interactions = sum(len(s.split()) - 1 for s in sequences)
    print(f"{args.out}: {args.users} users, {len(new_id)} items, {interactions} interactions "
          f"({interactions / len(new_id):.1f} per item, {interactions / args.users:.1f} per user)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
