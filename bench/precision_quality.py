"""Issue 19 quality table: bf16 and the chunked softmax against fp32, per method, from run folders.

Reads the run folders of ``sweeps/precision.yaml`` (``<root>/<dataset>/<backbone>/<label>/seed<k>``,
labels ``m``, ``m bf16``, ``m chunked``) and prints, per dataset and method, test NDCG@10 of each
variant (mean over the seeds present; sample std where there are 2 or more), the difference to
fp32, whether it lies within one fp32 standard deviation (only decidable with 2+ seeds), the share
of users whose test rank is identical to fp32's, and a paired Wilcoxon test on per-user NDCG@10
(seed-averaged). Epoch caps and settings are the runs' own (see each config.yaml).

    python bench/precision_quality.py RUNS_ROOT [--out bench/results/precision_quality.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

from spectran.eval.metrics import ndcg_at
from spectran.experiments.stats import wilcoxon_signed_rank
from spectran.io import write_text

VARIANTS = ("", "-bf16", "-chunked")


def runs(folder: Path) -> dict[int, Path]:
    return {int(p.name[4:]): p for p in sorted(folder.glob("seed*")) if (p / "metrics.json").is_file()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    root = Path(args.root)
    encoders = sorted({yaml.safe_load(c.read_text())["text"]["encoder"] for c in root.glob("*/*/*/seed*/config.yaml")})
    lines = ["# bf16 and chunked softmax vs fp32 (issue 19)", "",
             f"Command: `python bench/precision_quality.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
             f" over `spectran sweep sweeps/precision.yaml` run folders; text.encoder of the runs: "
             f"{', '.join(encoders)}. 'epochs (cap)': epochs trained (train.epochs of the run).", "",
             "| dataset | method | variant | seeds | epochs (cap) | test NDCG@10 | fp32 std | diff vs fp32 | "
             "within 1 std | same rank as fp32 | Wilcoxon p |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for base in sorted(p for p in root.glob("*/*/*") if p.is_dir() and not p.name.endswith(("-bf16", "-chunked"))):
        fp32 = runs(base)
        if not fp32:
            continue
        ref = {s: json.loads((p / "metrics.json").read_text())["test"]["ndcg@10"] for s, p in fp32.items()}
        std = statistics.stdev(ref.values()) if len(ref) > 1 else None
        for suffix in VARIANTS:
            found = runs(base.with_name(base.name + suffix))
            seeds = sorted(set(found) & set(fp32))
            if not seeds:
                continue
            score = [json.loads((found[s] / "metrics.json").read_text())["test"]["ndcg@10"] for s in seeds]
            mean, mean_ref = statistics.mean(score), statistics.mean(ref[s] for s in seeds)
            ranks = np.stack([np.load(found[s] / "test_ranks.npy") for s in seeds])
            ranks_ref = np.stack([np.load(fp32[s] / "test_ranks.npy") for s in seeds])
            same = float((ranks == ranks_ref).mean())
            cfg = yaml.safe_load((found[seeds[0]] / "config.yaml").read_text())["train"]
            m = json.loads((found[seeds[0]] / "metrics.json").read_text())
            if suffix:
                per_user = np.vectorize(lambda r: ndcg_at(int(r), 10))
                test = wilcoxon_signed_rank(per_user(ranks).mean(0), per_user(ranks_ref).mean(0))
                p, diff = f"{test.p_value:.2g}", f"{mean - mean_ref:+.5f}"
                within = "—" if std is None else ("yes" if abs(mean - mean_ref) <= std else "no")
            else:
                p = diff = within = "—"
            lines.append(f"| {base.parts[-3]} | {base.name} | {suffix.lstrip('-') or 'fp32'} | {len(seeds)} | "
                         f"{m['epochs']} ({cfg['epochs']}) | {mean:.5f} | "
                         f"{'—' if std is None else f'{std:.5f}'} | {diff} | {within} | {same:.3f} | {p} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
