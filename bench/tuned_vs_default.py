"""The tuned table beside the default one, from ``spectran report`` CSVs.

``--default`` is the report CSV of the runs at the documented defaults, ``--tuned`` one or more
report CSVs of the tune folders' retests (the same seeds; several when the studies were reported
in parts: a label found in several CSVs, its seeds run in parts, is pooled over all its seeds).
Per method (the rows present in both): test and
validation metric, mean ± std over seeds, the gain from tuning, and the config a user selecting
on validation alone would keep (default or tuned, by mean validation metric) with its test
figure. Then the ranking of the methods by test mean: at the defaults, tuned, and selected.
With ``--tune DIR...`` each study's best trial is named, and whether it was one of the study's
random start-up trials (read from ``tune.json`` and the space's ``study.startup_trials``).

    python bench/tuned_vs_default.py --default docs/results/data/office_table.csv \\
        --tuned docs/results/data/tuned_office_report.csv --tune runs/tune/office/*
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from spectran.tune.space import load_space

Cell = tuple[float, float, int]  # mean, sample std (nan for one seed), seeds


def read_cells(path: Path, metric: str) -> dict[str, dict[str, Cell]]:
    """label -> split -> (mean, std, n) of ``metric``."""
    cells: dict[str, dict[str, Cell]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["metric"] == metric:
                cells.setdefault(row["label"], {})[row["split"]] = (float(row["mean"]), float(row["std"] or "nan"),
                                                                     int(row["n"]))
    return cells


def read_seeds(path: Path, metric: str) -> dict[str, set[str]]:
    """label -> the seeds its test ``metric`` was averaged over."""
    with path.open(encoding="utf-8") as fh:
        return {row["label"]: set(row["seeds"].split()) for row in csv.DictReader(fh)
                if row["metric"] == metric and row["split"] == "test"}


def pooled(parts: list[Cell]) -> Cell:
    """One cell from the cells of disjoint seed sets (mean, and the sample std of all the seeds)."""
    n = sum(p[2] for p in parts)
    mean = sum(p[0] * p[2] for p in parts) / n
    if n < 2:
        return mean, math.nan, n
    within = sum((p[2] - 1) * p[1] ** 2 for p in parts if p[2] > 1)
    return mean, math.sqrt((within + sum(p[2] * (p[0] - mean) ** 2 for p in parts)) / (n - 1)), n


def read_tuned(paths: list[Path], metric: str) -> dict[str, dict[str, Cell]]:
    """The cells of several report CSVs; a label in more than one (its seeds reported in parts, which
    must not overlap) is pooled."""
    parts: dict[str, dict[str, list[Cell]]] = {}
    seeds: dict[str, set[str]] = {}
    for path in paths:
        for label, found in read_seeds(path, metric).items():
            if seeds.setdefault(label, set()) & found:
                raise SystemExit(f"error: {path}: {label} seeds {sorted(seeds[label] & found)} "
                                 "are in an earlier CSV too")
            seeds[label] |= found
        for label, splits in read_cells(path, metric).items():
            for split, c in splits.items():
                parts.setdefault(label, {}).setdefault(split, []).append(c)
    return {label: {split: pooled(cs) for split, cs in splits.items()} for label, splits in parts.items()}


def cell(v: Cell) -> str:
    if v[2] < 2:  # one seed has no spread
        return f"{v[0]:.4f} (n={v[2]})"
    return f"{v[0]:.4f} ± {v[1]:.4f}" + ("" if v[2] == 3 else f" (n={v[2]})")


def ranking(scores: dict[str, float]) -> str:
    return " > ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default", type=Path, required=True)
    ap.add_argument("--tuned", type=Path, nargs="+", required=True)
    ap.add_argument("--metric", default="ndcg@10")
    ap.add_argument("--tune", type=Path, nargs="*", default=[])
    ap.add_argument("--suffix", default="", help="the tuned rows' labels end in this (' recipe' for the rows "
                    "'svd_frozen recipe', ...): it is cut off to line them up with the default rows")
    args = ap.parse_args()
    default = read_cells(args.default, args.metric)
    tuned = {label.removesuffix(args.suffix) if args.suffix else label: cells
             for label, cells in read_tuned(args.tuned, args.metric).items()}
    methods = [m for m in tuned if m in default]
    m = args.metric
    print(f"| method | default test {m} | tuned test {m} | gain from tuning | default valid | tuned valid "
          "| selected on validation | its test |")
    print("|---|---|---|---|---|---|---|---|")
    before, after, selected = {}, {}, {}
    for name in methods:
        d, t = default[name], tuned[name]
        pick = "tuned" if t["valid"][0] > d["valid"][0] else "default"
        before[name], after[name] = d["test"][0], t["test"][0]
        selected[name] = (t if pick == "tuned" else d)["test"][0]
        gain = 100 * (t["test"][0] / d["test"][0] - 1)
        print(f"| {name} | {cell(d['test'])} | {cell(t['test'])} | {gain:+.1f} % | {cell(d['valid'])} "
              f"| {cell(t['valid'])} | {pick} | {selected[name]:.4f} |")
    print()
    print(f"- ranking at the defaults: {ranking(before)}")
    print(f"- ranking tuned: {ranking(after)}")
    print(f"- ranking of the configs selected on validation: {ranking(selected)}")
    if args.tune:
        print()
        print("| study | best trial | a random start-up trial? | best valid | finished trials |")
        print("|---|---|---|---|---|")
        for folder in args.tune:
            summary = json.loads((folder / "tune.json").read_text(encoding="utf-8"))
            startup = load_space(folder / "space.yaml").study.startup_trials
            best, states = summary["best"], summary["states"]
            print(f"| {summary['label']} | {best['trial']} | {'yes' if best['trial'] < startup else 'no'} "
                  f"| {best['valid']:.4f} | {states.get('COMPLETE', 0) + states.get('PRUNED', 0)} |")


if __name__ == "__main__":
    main()
