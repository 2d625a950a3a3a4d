"""Markdown and CSV of the paper's tables (:mod:`spectran.experiments.paper_table`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.collect import RunRecord, filter_records, find_runs, unfinished_runs
from spectran.experiments.paper_table import (
    PAPER_KIND,
    PAPER_METRICS,
    REFERENCES,
    SHORT,
    Gain,
    PaperTable,
    average,
    build,
    compute_gains,
    stopped_early,
)
from spectran.runfolder import RunFolder

PAPER_GAIN = 9.17  # %, the paper's average gain of SpecTran over the best baseline


def _short(metric: str) -> str:
    name, _, k = metric.partition("@")
    return f"{SHORT.get(name, name)}@{k}"


def _n(runs: list) -> str:
    if not runs:
        return "–"
    capped = sum(stopped_early(r) is False for r in runs)
    return f"{len(runs)}" + (f" (cap: {capped})" if capped else "")


def render_table(table: PaperTable, ours: str, metrics: list[str]) -> list[str]:
    head = ["method"] + [h for d in table.datasets for h in [*(f"{d} {_short(m)}" for m in metrics), f"{d} n"]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    best = {(d, m): max(values) for d in table.datasets for m in metrics  # a lone row is not "best"
            if len(values := [v for row in table.rows if (v := table.mean(row, d, m)) is not None]) > 1}
    for row in table.rows:
        cells = [row]
        for d in table.datasets:
            for m in metrics:
                v = table.mean(row, d, m)
                cells.append("–" if v is None else f"**{v:.4f}**" if v == best.get((d, m)) else f"{v:.4f}")
            cells.append(_n(table.records.get((row, d), [])))
        lines.append("| " + " | ".join(cells) + " |")
    for ref in REFERENCES:
        by_cell = {(g.dataset, g.metric): g for g in table.gains if g.reference == ref.name}
        cells = [f"gain over {ref.name}"]
        for d in table.datasets:
            cells += [f"{g.gain * 100:+.1f}%{g.mark}{g.note}" if (g := by_cell.get((d, m))) else "–"
                      for m in metrics]
            cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- average gain of `{ours}` over {ref.name}: "
              f"{average([g for g in table.gains if g.reference == ref.name])}" for ref in REFERENCES]
    return lines


def legend(ours: str, test: str, metrics: list[str]) -> list[str]:
    kind = ", ".join(sorted(PAPER_KIND))
    return [
        f"- cells: test {', '.join(metrics)}, mean over seeds; **bold**: the best mean of the column (where it "
        "has two or more); –: no finished run yet",
        "- n: finished runs (seeds) of the cell; cap: k = k of them stopped at the epoch cap or the time "
        "budget before early stopping could end them, so they may not have converged",
        f"- gain: relative gain of `{ours}`'s mean over the best mean, in that cell, of: every baseline (a row of "
        f"another method); the paper's kind of baselines ({kind}); `svd_frozen`; both means over the seeds "
        "the two rows share, named after the gain where that is fewer than one of them ran (\"(seed 0)\"; where "
        "they share none, each row's mean over its own seeds: \"(no shared seed)\")",
        f"- significance: {'Wilcoxon signed-rank test' if test == 'wilcoxon' else 'paired t-test'}, two-sided, "
        f"on the cell's metric per test user averaged over those seeds, `{ours}` vs that best row: "
        "† p < 0.05, ‡ p < 0.01",
        "- methods that read no text (id) are the same run under every encoder: such a run stands in each "
        "encoder's table that has none of its own",
    ]


def summary(tables: list[PaperTable], ours: str) -> list[str]:
    head = ["encoder", "backbone"] + [f"gain over {ref.name}" for ref in REFERENCES]
    lines = [f"## Average gain of `{ours}` (the paper reports +{PAPER_GAIN} % over the best baseline)", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---|" * len(REFERENCES)]
    for encoder in dict.fromkeys(t.encoder for t in tables):
        mine = [t for t in tables if t.encoder == encoder]
        for backbone, gains in [(t.backbone, t.gains) for t in mine] + [("all", [g for t in mine for g in t.gains])]:
            cells = [average([g for g in gains if g.reference == ref.name]) for ref in REFERENCES]
            name = "**all**" if backbone == "all" else backbone
            lines.append(f"| {encoder} | {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def per_cell(tables: list[PaperTable], ours: str, metric: str) -> list[str]:
    """One line per encoder and backbone, one column per dataset: ours's ``metric`` against the best
    baseline's, the gain and its mark, over the seeds both ran (the grid at a glance)."""
    datasets = list(dict.fromkeys(d for t in tables for d in t.datasets))
    lines = [f"## `{ours}` against the best baseline, cell by cell (test {metric})", "",
             "n: the seeds both rows ran; baselines: the rows of other methods the cell has results of (a "
             "cell with fewer than the other cells of its line may not have met its best baseline yet).", "",
             "| encoder | backbone | " + " | ".join(datasets) + " |", "|---|---|" + "---|" * len(datasets)]
    for t in tables:
        by = {g.dataset: g for g in t.gains if g.reference == REFERENCES[0].name and g.metric == metric}
        cells = [f"{g.ours:.4f} vs {g.other:.4f} `{g.row}`: {g.gain * 100:+.1f}%{g.mark} (n "
                 f"{len(g.seeds) or 'unpaired'}, {g.rivals} baseline{'s' if g.rivals != 1 else ''})"
                 if (g := by.get(d)) else "–" for d in datasets]
        lines.append(f"| {t.encoder} | {t.backbone} | " + " | ".join(cells) + " |")
    return lines + [""]


def wall_time(tables: list[PaperTable]) -> list[str]:
    """Training time per encoder x backbone x dataset: the epochs' seconds of each finished run
    (:meth:`RunFolder.seconds_logged`), with the threads and devices the runs used."""
    lines = ["## Wall time per dataset and backbone", "",
             "Training and validation seconds summed over each finished run's epochs (start-up and the "
             "test evaluation not counted), on the machines the runs used.", "",
             "| encoder | backbone | dataset | runs | median minutes per run | total hours | where |",
             "|---|---|---|---:|---:|---:|---|"]
    for t in tables:
        for d in t.datasets:
            runs = [r for row in t.rows for r in t.records.get((row, d), [])]
            seconds = [s for r in runs if (s := RunFolder(r.folder).seconds_logged()) is not None]
            if not seconds:
                continue
            where = sorted({_where(r) for r in runs})
            lines.append(f"| {t.encoder} | {t.backbone} | {d} | {len(seconds)} | {float(np.median(seconds)) / 60:.1f} "
                         f"| {sum(seconds) / 3600:.2f} | {'; '.join(where)} |")
    return lines + [""]


def _where(r: RunRecord) -> str:
    """"cpu, 1 thread" or the device's name, from the run's env.json."""
    device = r.environment.get("device") or "unknown device"
    threads = r.environment.get("threads")
    return f"{device}, {threads} thread{'s' if threads != 1 else ''}" if device == "cpu" and threads else str(device)


def paper_report(paths: Iterable[str | Path], ours: str = "spectran", metrics: list[str] | None = None,
                 test: str = "wilcoxon", filters: Iterable[str] = ()) -> tuple[str, list[dict], list[dict]]:
    """Markdown of the paper's tables, their cells and their gains as CSV rows."""
    paths, filters, metrics = list(paths), list(filters), metrics or PAPER_METRICS
    records = filter_records(find_runs(paths), filters)
    if not records:
        raise SpectranError(f"no finished run under {', '.join(map(str, paths))} matches "
                            f"--filter {' --filter '.join(filters)}")
    tables = build(records, ours)
    for table in tables:
        compute_gains(table, ours, metrics, test)
    parts = ["# The paper's table, cell by cell", "", *legend(ours, test, metrics), ""]
    missing = unfinished_runs(paths, filters)
    if missing:
        parts += [f"**{len(missing)} run(s) started or planned but not finished** (not in the tables; "
                  "`spectran sweep ... --dry-run` lists them)", ""]
        print(f"note: {len(missing)} run(s) not finished, missing from the tables", file=sys.stderr)
    split = sorted({r.row for t in tables for runs in t.records.values() for r in runs
                    if r.label == ours and r.row != ours})
    if split:  # e.g. two dims of ours in one table: no row is ours itself
        parts += [f"**note**: runs labelled `{ours}` differ in their settings ({', '.join(split)}); gains "
                  f"compare only a row named exactly `{ours}` (--filter one configuration)", ""]
    parts += summary(tables, ours)
    parts += per_cell(tables, ours, "ndcg@10" if "ndcg@10" in metrics else metrics[0])
    for table in tables:
        parts += [f"## {table.backbone} — text encoder {table.encoder}", "", *render_table(table, ours, metrics), ""]
    parts += wall_time(tables)
    return "\n".join(parts), cell_rows(tables, metrics), [gain_row(g) for t in tables for g in t.gains]


def cell_rows(tables: list[PaperTable], metrics: list[str]) -> list[dict[str, Any]]:
    out = []
    for t in tables:
        for (row, dataset), runs in sorted(t.records.items()):
            for m in metrics:
                out.append({"encoder": t.encoder, "backbone": t.backbone, "row": row, "method": t.methods[row],
                            "dataset": dataset, "metric": m, "mean": t.mean(row, dataset, m), "n": len(runs),
                            "at_cap": sum(stopped_early(r) is False for r in runs),
                            "seeds": " ".join(str(r.seed) for r in runs)})
    return out


def gain_row(g: Gain) -> dict[str, Any]:
    return {"encoder": g.encoder, "backbone": g.backbone, "reference": g.reference, "dataset": g.dataset,
            "metric": g.metric, "ours": g.ours, "compared_with": g.row, "other": g.other, "gain": g.gain,
            "p_value": "" if g.p_value is None else g.p_value, "seeds": " ".join(map(str, g.seeds)),
            "baselines_run": g.rivals}
