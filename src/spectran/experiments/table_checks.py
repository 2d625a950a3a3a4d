"""What a comparison table warns about: runs that disagree on the evaluation protocol or on the
environment that makes a run reproducible (env.json), and runs that did not converge (stopped
before validation stopped improving). Used by :mod:`spectran.experiments.report`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from spectran.experiments.collect import RunRecord
from spectran.runfolder import not_converged

# protocol fields that must agree within a table (per-dataset ones are checked per dataset)
_TABLE_PROTOCOL = ["split", "ties", "exclude_history", "select", "max_len", "dim", "backbone"]
_DATASET_PROTOCOL = ["users", "items", "users_dropped", "candidates"]


def protocol_warnings(runs: list[RunRecord]) -> list[str]:
    out = []
    for name in _TABLE_PROTOCOL:
        values = sorted({str(r.protocol.get(name)) for r in runs})
        if len(values) > 1:
            out.append(f"runs in this table differ in {name}: {', '.join(values)}")
    encoders = sorted({str(r.protocol.get("encoder")) for r in runs if r.protocol.get("encoder") is not None})
    if len(encoders) > 1:
        out.append(f"runs in this table differ in encoder: {', '.join(encoders)}")
    out += environment_warnings(runs)
    for dataset in sorted({r.dataset for r in runs}):
        for name in _DATASET_PROTOCOL:
            values = sorted({str(r.protocol.get(name)) for r in runs if r.dataset == dataset})
            if len(values) > 1:
                out.append(f"{dataset}: runs differ in {name}: {', '.join(values)}")
    return out


# what makes two runs of one command give the same numbers bitwise (recorded in env.json)
_REPRODUCIBILITY = ("threads", "torch", "device", "cpu", "deterministic")


def environment_warnings(runs: list[RunRecord]) -> list[str]:
    """One warning per env.json field in which the table's runs differ: their numbers are not
    comparable bitwise, so differences below the run-to-run spread are not findings."""
    out = []
    for name in _REPRODUCIBILITY:
        values = sorted({str(r.environment[name]) for r in runs if name in r.environment})
        if len(values) > 1:
            out.append(f"runs in this table were made with different {name} ({', '.join(values)}): the same "
                       "command gives different numbers under each, so compare gains against the seed spread")
    return out


def unconverged_runs(records: Mapping[tuple[str, str], list[RunRecord]]) -> dict[str, list[str]]:
    """row -> "dataset seed S: why" for each of its runs that did not stop by patience."""
    out: dict[str, list[str]] = defaultdict(list)
    for (row, dataset), runs in records.items():
        for r in runs:
            why = not_converged(r.metrics, r.settings.train.patience)
            if why is not None:
                out[row].append(f"{dataset} seed {r.seed}: {why}")
    return out


def unconverged_note(records: Mapping[tuple[str, str], list[RunRecord]]) -> list[str]:
    flagged = unconverged_runs(records)
    if not flagged:
        return []
    runs = "; ".join(f"`{row}` {', '.join(items)}" for row, items in flagged.items())
    return [f"**Not converged** (rows marked †; their figures are provisional, the runs stopped before "
            f"validation stopped improving): {runs}", ""]
