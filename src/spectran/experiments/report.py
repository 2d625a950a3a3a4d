"""The comparison table: rows = methods, columns = dataset × metric, mean ± std over seeds.

For every column the best mean is bold and a ``gain`` line gives the relative gain of the row
labelled ``ours`` over the best competitor, both means over the seeds the two rows share (named
where that is fewer than either ran). Competitors are the baselines, i.e. the rows of
another method than ``ours``'s (its ablations are not baselines), or with ``against="all"`` every
other row (an ablation table). Per dataset a paired test (Wilcoxon signed-rank by default, or a
paired t-test; :mod:`spectran.experiments.stats`) compares ``ours`` with the best competitor by
mean test NDCG@10, on per-user test NDCG@10 computed from ``test_ranks.npy`` (row = user; the
same user order in every run of a dataset) and averaged over the seeds both ran; users are the
sample, so it does not see how much a figure moves from one training seed to the next. A
second test, over seeds, does: a paired t-test on the test NDCG@10 of the seeds both rows ran
(at least two), i.e. whether the gap is larger than the seeds' own spread. The
protocol is printed above the table, with a warning when the runs of a table disagree on it.
Standard deviations are sample standard deviations (ddof = 1).
"""

from __future__ import annotations

import csv
import io
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.collect import (
    RunRecord,
    assign_variants,
    filter_records,
    find_runs,
    group_key,
    order_rows,
    shared_seeds,
    sweep_row_order,
    unfinished_runs,
)
from spectran.experiments.paper_table import mean_user_metric
from spectran.experiments.stats import TestResult, paired_test
from spectran.experiments.table_checks import protocol_warnings, unconverged_note, unconverged_runs
from spectran.recipes import recipe_label

DEFAULT_METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
TEST_K = 10
TEST_METRIC = f"ndcg@{TEST_K}"  # metric of the significance test and of "best baseline"
AGAINST = ("baselines", "all")  # what the gain and the test compare ours with (Table.competitors)


@dataclass
class Cell:
    values: list[float]
    seeds: list[int]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def by_seed(self) -> list[tuple[int, float]]:
        return list(zip(self.seeds, self.values, strict=True))

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof = 1); NaN for a single seed."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else float("nan")


@dataclass
class Table:
    group: str | None  # value of the --group-by key, or None
    rows: list[str]
    datasets: list[str]
    records: dict[tuple[str, str], list[RunRecord]]  # (row, dataset) -> runs
    labels: dict[str, str]  # row -> label
    methods: dict[str, str] = field(default_factory=dict)  # row -> model.method
    warnings: list[str] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)

    def cell(self, row: str, dataset: str, metric: str, split: str = "test") -> Cell | None:
        runs = self.records.get((row, dataset))
        if not runs:
            return None
        return Cell([r.value(metric, split) for r in runs], [r.seed for r in runs])

    def competitors(self, ours: str, against: str = "baselines") -> list[str]:
        """Rows ``ours`` is compared with: ``baselines`` = rows of another method than ours's
        (ablations of ours share its method), ``all`` = every other row."""
        if against not in AGAINST:
            raise SpectranError(f"against={against!r}: expected one of {', '.join(AGAINST)}")
        others = [row for row in self.rows if row != ours]
        if against == "all":
            return others
        return [row for row in others if self.methods[row] != self.methods.get(ours)]


def _group_order(value: Any) -> tuple:
    """Numbers in numeric order (d = 16, 32, 128), then everything else as text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):  # not a number: after the numbers, alphabetically
        return (1, 0.0, str(value))


COLD = "test_cold"  # metrics.json block of the test users whose target never occurs in training
SPLIT_PREFIX = {"valid": "valid ", COLD: "cold "}


def build_tables(records: list[RunRecord], ours: str = "spectran", group_by: str | None = None,
                 row_order: list[str] | None = None) -> list[Table]:
    key = group_key(group_by)
    assign_variants(records, key)
    groups: dict[str | None, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[None if key is None else str(r.flat.get(key))].append(r)
    tables = []
    for group, runs in groups.items():
        by_cell: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
        for r in runs:
            by_cell[(r.row, r.dataset)].append(r)
        labels = {r.row: r.label for r in runs}
        methods = {r.row: r.settings.model.method for r in runs}
        rows = order_rows(labels, labels, row_order or [], ours)
        datasets = sorted({r.dataset for r in runs})
        for cell_runs in by_cell.values():
            cell_runs.sort(key=lambda r: r.seed)
        table = Table(group, rows, datasets, dict(by_cell), labels, methods)
        table.warnings = protocol_warnings(runs)
        tables.append(table)
    return sorted(tables, key=lambda t: _group_order(t.group))


def significance(table: Table, ours: str, test: str = "wilcoxon",
                 against: str = "baselines") -> list[dict[str, Any]]:
    """Per dataset: ours vs the best competitor by mean test NDCG@10, paired over users (their
    NDCG@10 averaged over the seeds both rows ran)."""
    results = []
    if ours not in table.rows:
        return results
    for dataset in table.datasets:
        mine = table.records.get((ours, dataset))
        others = [(table.cell(row, dataset, TEST_METRIC).mean, row) for row in table.competitors(ours, against)
                  if table.records.get((row, dataset))]
        if not mine or not others:
            continue
        _, best = max(others)
        a, b, _ = shared_seeds(mine, table.records[(best, dataset)], lambda r: r.seed)
        x, y = mean_user_ndcg(a), mean_user_ndcg(b)
        if x.shape != y.shape:
            table.warnings.append(f"{dataset}: {ours} and {best} were evaluated on different users "
                                  f"({len(x)} vs {len(y)}); no significance test")
            continue
        res: TestResult = paired_test(test, x, y)
        results.append({"dataset": dataset, "ours": ours, "baseline": best, "users": len(x),
                        "ours_ndcg@10": float(x.mean()), "baseline_ndcg@10": float(y.mean()),
                        "test": res.name, "statistic": res.statistic, "p_value": res.p_value,
                        "seeds_ours": len(mine), "seeds_baseline": len(table.records[(best, dataset)]),
                        **seed_test(mine, table.records[(best, dataset)])})
    return results


def seed_test(mine: list[RunRecord], theirs: list[RunRecord]) -> dict[str, Any]:
    """Paired t-test over the seeds both rows ran, on test NDCG@10: seeds_paired, seed_mean_difference
    (ours minus theirs) and seed_p_value (NaN with fewer than two common seeds)."""
    by_seed = {r.seed: r.value(TEST_METRIC) for r in theirs}
    pairs = [(r.value(TEST_METRIC), by_seed[r.seed]) for r in mine if r.seed in by_seed]
    if len(pairs) < 2:
        return {"seeds_paired": len(pairs), "seed_mean_difference": float("nan"), "seed_p_value": float("nan")}
    res = paired_test("t-test", np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
    return {"seeds_paired": len(pairs), "seed_mean_difference": res.mean_difference, "seed_p_value": res.p_value}


def mean_user_ndcg(runs: list[RunRecord]) -> np.ndarray:
    """(U,) per-user test NDCG@10 averaged over the seeds ``runs`` (checked against their metrics.json)."""
    return mean_user_metric(runs, TEST_METRIC)


def _fmt(cell: Cell | None, common_n: int, bold: bool, median: bool = False) -> str:
    if cell is None:
        return "–"
    if median:  # seconds per epoch: the median over seeds
        return f"{float(np.median(cell.values)):.2f}"
    text = f"{cell.mean:.4f}" if cell.n == 1 else f"{cell.mean:.4f} ± {cell.std:.4f}"
    if bold:
        text = f"**{text}**"
    return text + (f" (n={cell.n})" if cell.n != common_n else "")


def _columns(table: Table, metrics: list[str], extras: bool, cold: bool = False) -> list[tuple[str, str, str]]:
    """(dataset, metric, split) per column; extras: valid NDCG@10 and median s/epoch; cold: test
    Recall@10 / NDCG@10 over the users whose target never occurs in training."""
    cols = []
    for d in table.datasets:
        cols += [(d, m, "test") for m in metrics]
        if cold:
            cols += [(d, "recall@10", COLD), (d, TEST_METRIC, COLD)]
        if extras:
            cols += [(d, TEST_METRIC, "valid"), (d, "s/epoch", "fit")]
    return cols


def _cell_for(table: Table, row: str, col: tuple[str, str, str]) -> Cell | None:
    dataset, metric, split = col
    runs = table.records.get((row, dataset))
    if not runs:
        return None
    if split == "fit":
        return Cell([float(r.metrics.get("train_seconds_per_epoch", float("nan"))) for r in runs],
                    [r.seed for r in runs])
    if split == COLD:  # only runs whose test split has cold-start targets carry this block
        runs = [r for r in runs if metric in r.metrics.get(COLD, {})]
        return Cell([r.value(metric, COLD) for r in runs], [r.seed for r in runs]) if runs else None
    return table.cell(row, dataset, metric, split)


def _competitor_words(table: Table, ours: str, against: str) -> str:
    if against == "all":
        return "the best other row"
    method = table.methods.get(ours, ours)
    return f"the best baseline (a row of another method than `{method}`; its ablations are not baselines)"


def protocol_block(table: Table, ours: str, test: str, extras: bool, against: str = "baselines") -> list[str]:
    runs = [r for rs in table.records.values() for r in rs]
    p = runs[0].protocol
    seeds = sorted({r.seed for r in runs})
    encoders = sorted({str(r.protocol.get("encoder")) for r in runs if r.protocol.get("encoder") is not None})
    items = ", ".join(f"{d}: {runs_of[0].protocol.get('users')} users / {runs_of[0].protocol.get('items')} items"
                      for d in table.datasets
                      for runs_of in [[r for r in runs if r.dataset == d]])
    dims = sorted({str(r.protocol.get("dim")) for r in runs}, key=lambda v: (len(v), v))
    backbones = sorted({str(r.protocol.get("backbone")) for r in runs})
    lines = [
        f"- split: {p.get('split')}",
        f"- candidates: full ranking over every item ({items})",
        f"- ties: {p.get('ties')}",
        f"- already-seen items excluded: {p.get('exclude_history')}",
        f"- model selection: {p.get('select')}",
        f"- backbone: {', '.join(backbones)}; d = {', '.join(dims)}; max length {p.get('max_len')}",
        f"- text encoder (methods that use E): {', '.join(encoders) or 'none'}",
        f"- seeds: {', '.join(map(str, seeds))}; cells: test mean ± sample std (ddof=1) over seeds, "
        "(n=k) where a cell has another number of seeds; bold: best mean in the column"
        + ("; s/epoch: median over seeds of the median training seconds per epoch" if extras else ""),
        f"- gain: relative gain of `{ours}` over {_competitor_words(table, ours, against)} in the column, both "
        "means over the seeds the two rows share (\"(seed 0)\" where that is fewer than either ran)",
        f"- significance: {'Wilcoxon signed-rank test' if test == 'wilcoxon' else 'paired t-test'}, two-sided, "
        f"on per-user test NDCG@10 averaged over the seeds both ran, `{ours}` vs the best of those rows by mean "
        "test NDCG@10; "
        "over seeds: paired t-test on the test NDCG@10 of the seeds both rows ran",
    ]
    recipes: dict[str, list[str]] = defaultdict(list)  # recipe -> rows
    for row in table.rows:
        used = sorted({recipe_label(r.settings) for d in table.datasets for r in table.records.get((row, d), [])})
        recipes["; ".join(used)].append(f"`{row}`")
    lines.append("- defaults of the method settings: " + "; ".join(f"{', '.join(rows)}: {recipe}"
                                                                    for recipe, rows in recipes.items()))
    return lines + [f"- **warning**: {w}" for w in table.warnings]


def gain_over(mine: Cell, other: Cell) -> str:
    """'+1.2%': ours's mean over the other row's, both on the seeds they share (collect.shared_seeds)."""
    a, b, note = shared_seeds(mine.by_seed(), other.by_seed(), lambda pair: pair[0])
    theirs = float(np.mean([v for _, v in b]))
    return "–" if theirs <= 0 else f"{(float(np.mean([v for _, v in a])) / theirs - 1) * 100:+.1f}%{note}"


def render_table(table: Table, metrics: list[str], ours: str, extras: bool,
                 cold: bool = False, against: str = "baselines") -> tuple[str, list[dict]]:
    cols = _columns(table, metrics, extras, cold)
    cells = {(row, c): _cell_for(table, row, c) for row in table.rows for c in cols}
    ns = [c.n for c in cells.values() if c is not None]
    common_n = statistics.mode(ns) if ns else 0
    head = ["method"] + [f"{d} {SPLIT_PREFIX.get(s, '')}{m}" for d, m, s in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best: dict[tuple[str, str, str], float] = {}  # the best mean per column (ties: all bold)
    for c in cols:
        means = [cells[(row, c)].mean for row in table.rows if cells[(row, c)] is not None]
        if means and c[2] != "fit":
            best[c] = max(means)
    flagged = unconverged_runs(table.records)
    for row in table.rows:
        lines.append("| " + " | ".join([row + (" †" if row in flagged else "")] + [_fmt(cells[(row, c)], common_n,
                                                      c in best and cells[(row, c)] is not None
                                                      and cells[(row, c)].mean == best[c],
                                                      c[2] == "fit")
                                                 for c in cols]) + " |")
    rivals = table.competitors(ours, against) if ours in table.rows else []
    if rivals:
        gains = []
        for c in cols:
            mine = cells[(ours, c)]
            others = [cell for row in rivals if (cell := cells[(row, c)]) is not None]
            gains.append("–" if mine is None or not others or c[2] == "fit"
                         else gain_over(mine, max(others, key=lambda cell: cell.mean)))
        lines.append("| " + " | ".join([f"gain of {ours}"] + gains) + " |")
    csv_rows = [{"group": table.group or "", "row": row, "label": table.labels[row], "dataset": c[0],
                 "metric": c[1], "split": c[2], "mean": cell.mean, "std": cell.std, "n": cell.n,
                 "seeds": " ".join(map(str, sorted(cell.seeds)))}
                for (row, c), cell in cells.items() if cell is not None]
    return "\n".join(lines), csv_rows


def render_tests(results: list[dict[str, Any]]) -> str:
    if not results:
        return ""
    lines = ["| dataset | ours | compared with | users | NDCG@10 ours | NDCG@10 other | test | statistic | p "
             "| seeds paired | difference over seeds | p over seeds (t-test) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        over_seeds = ("– | –" if r["seeds_paired"] < 2
                      else f"{r['seed_mean_difference']:+.4f} | {r['seed_p_value']:.3g}")
        lines.append(f"| {r['dataset']} | {r['ours']} | {r['baseline']} | {r['users']} | {r['ours_ndcg@10']:.4f} "
                     f"| {r['baseline_ndcg@10']:.4f} | {r['test']} | {r['statistic']:.4g} | {r['p_value']:.3g} "
                     f"| {r['seeds_paired']} | {over_seeds} |")
    return "\n".join(lines)


def report(paths: Iterable[str | Path], metrics: list[str] | None = None, ours: str = "spectran",
           group_by: str | None = None, test: str = "wilcoxon", extras: bool = False,
           rows: list[str] | None = None, cold: bool = False,
           filters: Iterable[str] = (), against: str = "baselines") -> tuple[str, list[dict], list[dict]]:
    """Markdown of every table, the CSV cell rows and the significance rows.

    A tune folder (``spectran tune``) counts as its retest runs, and a section on each study's
    budget and best settings follows the tables."""
    from spectran.tune.results import is_tune_folder, retest_folder, tuning_section

    paths = list(paths)
    tuned = [p for p in paths if is_tune_folder(p)]
    paths = [retest_folder(p) if is_tune_folder(p) else p for p in paths]
    metrics = metrics or DEFAULT_METRICS
    records = filter_records(find_runs(paths), filters)
    if not records:
        raise SpectranError(f"no finished run under {', '.join(map(str, paths))} matches "
                            f"--filter {' --filter '.join(filters)}")
    tables = build_tables(records, ours, group_by, rows or sweep_row_order(paths))
    parts, cells, tests = [], [], []
    missing = unfinished_runs(paths, filters)
    if missing:  # a half-finished sweep: say which runs the tables lack
        names = ", ".join(f"`{folder}` ({state})" for folder, state in missing)
        parts += [f"**Not finished: {len(missing)} run(s), missing from the tables below:** {names}", ""]
        print(f"note: {len(missing)} run(s) not finished, missing from the report: "
              + ", ".join(f"{folder} ({state})" for folder, state in missing), file=sys.stderr)
    for table in tables:
        if ours in table.rows and len(table.rows) > 1 and not table.competitors(ours, against):
            table.warnings.append(f"no baseline in this table (every other row is a `{table.methods[ours]}` "
                                  "ablation): no gain and no test; --against all compares with them")
        table.tests = significance(table, ours, test, against)
        md, rows_csv = render_table(table, metrics, ours, extras, cold, against)
        title = "## Results" + (f" — {group_by} = {table.group}" if table.group is not None else "")
        parts += [title, "", *protocol_block(table, ours, test, extras, against), "", md, "",
                  *unconverged_note(table.records)]
        if table.tests:
            parts += [f"Paired significance of `{ours}` vs {_competitor_words(table, ours, against)} per dataset:", "",
                      render_tests(table.tests), ""]
        cells += rows_csv
        tests += [{"group": table.group or "", **t} for t in table.tests]
    if tuned:
        parts += tuning_section(tuned)
    return "\n".join(parts), cells, tests


def write_csv(path: Path, rows: list[dict]) -> None:
    from spectran.io import write_text

    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())

