"""Embedding-dimension sensitivity: a test metric against d per method (``sweeps/dims.yaml``).

Runs are grouped by (dataset, row, ``model.dim``), where the row is the report row computed with
``model.dim`` ignored, so ``spectran [dim=32]`` and ``spectran [dim=64]`` form one curve. Each
point is the mean ± sample std (ddof = 1) over seeds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spectran.errors import SpectranError
from spectran.experiments.collect import RunRecord, assign_variants, filter_records, find_runs


def dimension_points(records: list[RunRecord], metric: str = "ndcg@10") -> list[dict[str, Any]]:
    assign_variants(records, ignore=["model.dim"])
    groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in records:
        groups[(r.dataset, r.row, r.settings.model.dim)].append(r.value(metric))
    points = [{"dataset": d, "row": row, "dim": dim, "mean": float(np.mean(v)), "n": len(v),
               "std": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")}
              for (d, row, dim), v in groups.items()]
    return sorted(points, key=lambda p: (p["dataset"], p["row"], p["dim"]))


def plot_dimension_sensitivity(paths: Iterable[str | Path], out: str | Path, metric: str = "ndcg@10",
                               filters: Iterable[str] = ()) -> list[dict]:
    from spectran.diagnostics.plots import plot_dims

    points = dimension_points(filter_records(find_runs(paths), filters), metric)
    if len({p["dim"] for p in points}) < 2:
        raise SpectranError("--plot-dim: the runs cover a single model.dim; run sweeps/dims.yaml first")
    plot_dims(points, out, metric)
    return points
