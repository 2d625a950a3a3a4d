"""``spectran sweep``, ``spectran archive`` and ``spectran report``; auto-registered by :mod:`spectran.cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spectran.errors import ConfigError
from spectran.runfolder import RunFolder
from spectran.textable import format_table

if TYPE_CHECKING:
    from spectran.experiments.execute import Outcome

_STATUS = {"ok": "finished", "done": "finished before", "busy": "running elsewhere", "failed": "FAILED"}


def outcome_table(outcomes: list[Outcome]) -> str:
    """One row per run: label, status, seconds, test NDCG@10 / Recall@10 (finished runs), folder."""
    rows = []
    for o in outcomes:
        test: dict[str, float] = {}
        folder = RunFolder(o.run.folder)
        if o.status in ("ok", "done") and folder.finished:
            test = folder.read_metrics().get("test", {})
        cell = {m: f"{test[m]:.4f}" if m in test else "-" for m in ("ndcg@10", "recall@10")}
        rows.append([o.run.label, _STATUS.get(o.status, o.status), f"{o.seconds:.0f}" if o.seconds else "-",
                     cell["ndcg@10"], cell["recall@10"], o.run.folder])
    return format_table(["run", "status", "s", "test NDCG@10", "test Recall@10", "folder"], rows,
                        [False, False, True, True, True, False])


def _cmd_sweep(args: argparse.Namespace) -> int:
    from spectran.experiments.execute import run_all, summarise, threads_per_worker
    from spectran.experiments.sweep import (
        apply_filters,
        drop_repeats,
        expand,
        load_sweep,
        repeated_runs,
        run_state,
    )
    from spectran.settings import apply_override

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    spec = load_sweep(args.sweep)
    for assignment in args.overrides:
        apply_override(spec.base, assignment)
    every = expand(spec, args.out, threads=threads_per_worker(args.workers))
    runs, left_out = drop_repeats(apply_filters(every, args.filter), repeated_runs(every))
    if left_out:
        print(left_out, file=sys.stderr)
    if args.claims:
        return _sweep_claimed(args, runs, list(spec.rows) or None)
    if args.dry_run:
        for run in runs:
            print(f"{run_state(run.folder):<20} {run.label:<28} {run.folder}")
        print(f"{len(runs)} runs", file=sys.stderr)
        return 0
    outcomes = run_all(runs, args.out, workers=args.workers, progress=not args.no_progress,
                       rows=list(spec.rows) or None)
    print(outcome_table(outcomes))
    print(summarise(outcomes))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _sweep_claimed(args: argparse.Namespace, runs: list, rows: list[str] | None) -> int:
    """``sweep --claims URL``: this worker's share of a grid whose cells live in a database."""
    from spectran.experiments.claimed import cell_name, grid_line, run_claimed
    from spectran.experiments.claims import ClaimBoard
    from spectran.experiments.execute import summarise
    from spectran.experiments.sweep import run_state

    board = ClaimBoard(args.claims, args.grid or Path(args.out).resolve().name,
                       heartbeat_timeout=args.heartbeat_timeout, max_attempts=args.max_attempts)
    try:
        if args.dry_run:
            cells = board.rows()
            for run in runs:
                row = cells.get(cell_name(Path(args.out), run))
                held = "not registered" if row is None else \
                    f"{row.state} ({row.attempts} attempts{f', {row.worker}' if row.worker else ''})"
                print(f"{run_state(run.folder):<20} {held:<40} {run.label:<28} {run.folder}")
            print(f"{len(runs)} runs", file=sys.stderr)
            return 0
        outcomes = run_claimed(runs, args.out, board, workers=args.workers, rows=rows,
                               retry_failed=args.retry_failed)
        print(outcome_table(outcomes))
        print(summarise(outcomes))
        print(grid_line(board))
    finally:
        board.close()
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _paper_table(args: argparse.Namespace) -> int:
    """``report --paper-table``: the grid as the paper prints it."""
    from spectran.experiments.paper_report import paper_report
    from spectran.experiments.report import write_csv

    for flag, given in (("--group-by", args.group_by), ("--extras", args.extras), ("--cold", args.cold),
                        ("--rows", args.rows), ("--plot-dim", args.plot_dim), ("--against all", args.against == "all")):
        if given:
            raise ConfigError(f"--paper-table does not take {flag} (tables per encoder and backbone, "
                              "rows in the paper's order, gains over the baselines)")
    metrics = [m.strip().lower() for m in args.metrics.split(",")] if args.metrics else None
    markdown, cells, gains = paper_report(args.paths, args.ours, metrics, args.test, args.filter)
    if not args.out:
        print(markdown)
        return 0
    from spectran.io import write_text

    out = Path(args.out)
    write_text(out, markdown)
    write_csv(out.with_suffix(".csv"), cells)
    write_csv(out.with_name(out.stem + "_gains.csv"), gains)
    print(f"wrote {out}, {out.with_suffix('.csv')} and {out.with_name(out.stem + '_gains.csv')}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from spectran.experiments.report import report, write_csv

    if args.paper_table:
        return _paper_table(args)
    metrics = [m.strip().lower() for m in args.metrics.split(",")] if args.metrics else None
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    markdown, cells, tests = report(args.paths, metrics, ours=args.ours, group_by=args.group_by,
                                    test=args.test, extras=args.extras, rows=rows,
                                    cold=args.cold, filters=args.filter, against=args.against)
    if args.out:
        from spectran.io import write_text

        out = Path(args.out)
        write_text(out, markdown)
        write_csv(out.with_suffix(".csv"), cells)
        write_csv(out.with_name(out.stem + "_significance.csv"), tests)
        print(f"wrote {out} and {out.with_suffix('.csv')}", file=sys.stderr)
    else:
        print(markdown)
    if args.plot_dim:
        from spectran.diagnostics.dims import plot_dimension_sensitivity

        plot_dimension_sensitivity(args.paths, args.plot_dim, metric=args.dim_metric, filters=args.filter)
        print(f"wrote {args.plot_dim}", file=sys.stderr)
    return 0


def _cmd_archive(args: argparse.Namespace) -> int:
    from spectran.experiments.archive import archive_runs

    done = archive_runs(args.runs, args.out)
    for a in done:
        if a.status != "same" or args.verbose:
            print(f"{a.status:<8} {a.target}")
    counts = {status: sum(a.status == status for a in done) for status in ("new", "updated", "same")}
    print(f"archived {len(done)} finished runs into {args.out}: "
          + ", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of runs from a sweep file (resumable)")
    p.add_argument("sweep", help="sweep YAML file (sections: base, grid, rows)")
    p.add_argument("--out", required=True, help="root folder of the sweep's run folders")
    p.add_argument("--workers", type=int, default=1,
                   help="runs in parallel (subprocesses), each with train.threads = cpus // workers "
                        "unless the sweep sets it")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1[,V2]",
                   help="run only runs whose KEY (label, a dotted setting, or dataset, backbone, method, dim, "
                        "seed) is one of the values (repeatable)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a setting of every run (applied to the sweep's base)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--claims", metavar="URL",
                   help="claim runs from this database (sqlite:///PATH, or postgresql://user@host/db for "
                        "workers on several machines) instead of file locks; see docs/scaling.md")
    p.add_argument("--grid", help="the grid's name in the --claims database (default: the --out folder's name)")
    p.add_argument("--heartbeat-timeout", type=float, default=300.0, metavar="S",
                   help="with --claims: a running run whose worker sent no heartbeat for S seconds is "
                        "handed on to another worker")
    p.add_argument("--max-attempts", type=int, default=3,
                   help="with --claims: a run whose worker died this many times is marked failed")
    p.add_argument("--retry-failed", action="store_true", help="with --claims: try failed runs again")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("archive", help="copy the finished runs' results (no weights) into a folder to commit")
    p.add_argument("runs", help="a sweep folder (or any folder of run folders)")
    p.add_argument("--out", required=True,
                   help="the archive: same relative paths, config/metrics/env/data/log and ranks.npz per run; "
                        "spectran report reads it like the runs")
    p.add_argument("--verbose", action="store_true", help="also list the runs already archived unchanged")
    p.set_defaults(func=_cmd_archive)

    p = sub.add_parser("report", help="table of mean ± std over seeds, gain and significance")
    p.add_argument("paths", nargs="+", help="sweep folders or run folders")
    p.add_argument("--out", help="Markdown file (a CSV of the cells and of the tests is written beside it)")
    p.add_argument("--metrics", help="comma-separated test metrics (default recall@10,recall@20,ndcg@10,ndcg@20)")
    p.add_argument("--ours", default="spectran", help="row whose gain and significance are reported")
    p.add_argument("--against", default="baselines", choices=["baselines", "all"],
                   help="what ours's gain and test compare with: the best baseline (a row of another "
                        "method; ours's ablations are not baselines) or the best of all other rows")
    p.add_argument("--group-by", help="one table per value of this setting (backbone, dim, or a dotted key)")
    p.add_argument("--test", default="wilcoxon", choices=["wilcoxon", "t-test"], help="paired test")
    p.add_argument("--extras", action="store_true", help="also valid NDCG@10 and median seconds per epoch")
    p.add_argument("--cold", action="store_true",
                   help="also test Recall@10/NDCG@10 of the users whose target never occurs in training")
    p.add_argument("--rows", help="comma-separated row order (default: the sweep file's, ours last)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=V1[,V2]",
                   help="only runs whose KEY (label, a dotted setting like train.seed, or dataset, "
                        "backbone, method, dim, seed) is one of the values (repeatable)")
    p.add_argument("--plot-dim", metavar="FILE.png",
                   help="also plot test metric against model.dim per method (dimension sensitivity)")
    p.add_argument("--dim-metric", default="ndcg@10", help="metric of --plot-dim")
    p.add_argument("--paper-table", action="store_true",
                   help="the grid as the paper prints it: a table per text encoder and backbone, datasets as "
                        "column groups, n per cell, gains of --ours over the baselines with significance "
                        "marks and their averages")
    p.set_defaults(func=_cmd_report)
