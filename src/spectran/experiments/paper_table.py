"""The grid as the paper prints it (``spectran report DIR --paper-table``).

One table per text encoder and backbone (sasrec, bert4rec, hstu first): datasets as column groups
(office, beauty, toys, clothing first), test Recall@10, NDCG@10, Recall@20, NDCG@20 per dataset
and the number of seeds ``n``, one row per method (the paper's order; rows of the same method with
another label, such as a recipe, follow it; ``ours`` last). The paper's methods and ``ours`` stand in
every table; another label only in the tables of backbones it has a run on (a sweep leaves out a
recipe row where it would repeat its method's run). A cell is the mean over seeds; the best
mean of a column is bold; a cell with no finished run is "–". ``n`` counts the runs that stopped
before early stopping could (at the epoch cap or the time budget: ``cap: k``), which may not
have converged.

Below each table, ``ours``'s relative gain per cell over three references, each the best row of
that cell by mean: every baseline (rows of another method than ours's), the paper's own kind of
baselines (:data:`PAPER_KIND`: the adapters, LLMInit = ``pca_init``, AlphaFuse), and
``svd_frozen``. A gain compares the two rows on the seeds both ran (all of either's seeds only where
they share none), so a row with three seeds is not set against one seed of another; the gain names
the seeds where that is fewer than a row's n. Each gain carries the result of a two-sided paired test
(Wilcoxon by default) on that cell's metric per user, averaged over those seeds, ours against that
best row: † p < 0.05, ‡ p < 0.01. The average gain over cells follows each table, and a summary table gives it per
encoder for every backbone and for the whole grid: the figure to set against the paper's +9.17 %.

Runs of a method that reads no text (``id``) do not depend on the encoder: such a run stands in
the table of every encoder that has no run of its own for that row, dataset, backbone and seed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spectran.errors import SpectranError
from spectran.eval.metrics import ndcg
from spectran.experiments.collect import RunRecord, assign_variants, shared_seeds
from spectran.experiments.stats import paired_test
from spectran.runfolder import RunFolder

PAPER_DATASETS = ["office", "beauty", "toys", "clothing"]
PAPER_BACKBONES = ["sasrec", "bert4rec", "hstu"]
PAPER_METHODS = ["id", "mlp", "moe", "whiten_mlp", "rlmrec", "llmesr", "pca_init", "svd_frozen", "alphafuse",
                 "spectran"]
PAPER_KIND = frozenset({"mlp", "moe", "whiten_mlp", "rlmrec", "llmesr", "pca_init", "alphafuse"})
PAPER_METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20"]
MARKS = ((0.01, "‡"), (0.05, "†"))  # the smallest threshold a p-value is under
SHORT = {"recall": "R", "ndcg": "N"}


def mean_user_metric(runs: list[RunRecord], metric: str) -> np.ndarray:
    """(U,) per-user test ``metric`` (recall@K or ndcg@K) averaged over the seeds ``runs``, checked
    against each run's metrics.json (the ranks must be the ones its metrics came from)."""
    name, _, k = metric.partition("@")
    if name not in SHORT or not k.isdigit():
        raise SpectranError(f"per-user {metric!r}: expected recall@K or ndcg@K")
    arrays = []
    for r in runs:
        ranks = r.ranks("test")
        a = (ranks <= int(k)).astype(np.float64) if name == "recall" else ndcg(ranks, int(k)).numpy()
        if abs(float(a.mean()) - r.value(metric)) > 1e-6:
            raise SpectranError(f"{r.ranks_path('test')}: per-user {metric} mean {a.mean():.6f} does not "
                                f"match {RunFolder.METRICS} {r.value(metric):.6f}")
        arrays.append(a)
    if len({a.shape for a in arrays}) > 1:
        raise SpectranError(f"{runs[0].folder}: seeds of one configuration have different user counts")
    return np.mean(arrays, axis=0)


def stopped_early(r: RunRecord) -> bool | None:
    """Whether early stopping ended the run (patience epochs without improvement); None if unknown."""
    done, best = r.metrics.get("epochs"), r.metrics.get("best_epoch")
    if not (isinstance(done, int) and isinstance(best, int)):
        return None
    return done - best >= r.settings.train.patience


@dataclass(frozen=True)
class Reference:
    """What ours is compared with: the best row of a cell among the rows ``admits`` lets in."""

    name: str
    admits: Callable[[str, str], bool]  # (row's method, ours's method) -> is a competitor


REFERENCES = [
    Reference("the best baseline", lambda m, ours: m != ours),
    Reference("the best of the paper's baselines", lambda m, ours: m in PAPER_KIND and m != ours),
    Reference("svd_frozen", lambda m, ours: m == "svd_frozen" and m != ours),
]


@dataclass
class Gain:
    encoder: str
    backbone: str
    reference: str
    dataset: str
    metric: str
    ours: float
    row: str  # the best competitor
    other: float
    p_value: float | None  # None: evaluated on other users, no test
    seeds: tuple[int, ...] = ()  # the seeds both rows ran (empty: none, each mean over all its own)
    note: str = ""  # the seeds where fewer than a row's n (collect.shared_seeds)
    rivals: int = 0  # the competing rows with a result in the cell (fewer: the best may be yet to come)

    @property
    def gain(self) -> float:
        return self.ours / self.other - 1.0

    @property
    def mark(self) -> str:
        return next((m for t, m in MARKS if self.p_value is not None and self.p_value < t), "")


@dataclass
class PaperTable:
    encoder: str
    backbone: str
    rows: list[str]
    datasets: list[str]
    records: dict[tuple[str, str], list[RunRecord]]  # (row, dataset) -> runs, by seed
    methods: dict[str, str]  # row -> model.method
    gains: list[Gain] = field(default_factory=list)

    def mean(self, row: str, dataset: str, metric: str) -> float | None:
        runs = self.records.get((row, dataset))
        return _mean(runs, metric) if runs else None


def encoder_of(r: RunRecord) -> str:
    return str(r.flat.get("text.encoder"))


def reads_text(r: RunRecord) -> bool:
    return r.protocol.get("encoder", "unknown") is not None


def _ordered(values: set[str], first: list[str]) -> list[str]:
    return [v for v in first if v in values] + sorted(values - set(first))


def _row_key(row: str, method: str, label: str, ours: str) -> tuple:
    rank = PAPER_METHODS.index(method) if method in PAPER_METHODS else PAPER_METHODS.index("spectran") - 0.5
    return (label == ours, rank, label != method, row)


def build(records: list[RunRecord], ours: str = "spectran") -> list[PaperTable]:
    """Tables per (encoder, backbone): the same datasets per encoder, the rows that stand on the backbone."""
    text_encoders = {encoder_of(r) for r in records if reads_text(r)}
    encoders = sorted(text_encoders or {encoder_of(r) for r in records})
    datasets = _ordered({r.dataset for r in records}, PAPER_DATASETS)
    backbones = _ordered({r.settings.model.backbone for r in records}, PAPER_BACKBONES)
    tables = []
    for encoder in encoders:
        own = [r for r in records if encoder_of(r) == encoder]
        have = {(r.label, r.settings.model.backbone, r.dataset, r.seed) for r in own if not reads_text(r)}
        borrowed = {}
        for r in records:  # text-free runs of other encoders fill what this encoder lacks
            key = (r.label, r.settings.model.backbone, r.dataset, r.seed)
            if not reads_text(r) and encoder_of(r) != encoder and key not in have:
                borrowed.setdefault(key, r)
        runs = own + list(borrowed.values())
        assign_variants(runs, "model.backbone")
        labels = {r.row: r.label for r in runs}
        methods = {r.row: r.settings.model.method for r in runs}
        for m in PAPER_METHODS:  # the paper's rows stand even before any of their runs finished
            if m not in labels.values():
                labels[m] = methods[m] = m
        rows = sorted(labels, key=lambda row: _row_key(row, methods[row], labels[row], ours))
        for backbone in backbones:
            cells: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
            for r in runs:
                if r.settings.model.backbone == backbone:
                    cells[(r.row, r.dataset)].append(r)
            for cell in cells.values():
                cell.sort(key=lambda r: r.seed)
            here = {row for row, _ in cells}
            standing = [row for row in rows if row in here or labels[row] == ours
                        or (labels[row] == methods[row] and methods[row] in PAPER_METHODS)]
            tables.append(PaperTable(encoder, backbone, standing, datasets, dict(cells), methods))
    return tables


def compute_gains(table: PaperTable, ours: str, metrics: list[str], test: str = "wilcoxon") -> None:
    """Fill ``table.gains``: per reference, dataset and metric, ours vs the best competing row."""
    if ours not in table.methods:
        return
    users: dict[tuple[str, str, str, tuple[int, ...]], np.ndarray] = {}

    def per_user(runs: list[RunRecord], row: str, dataset: str, metric: str) -> np.ndarray:
        key = (row, dataset, metric, tuple(r.seed for r in runs))
        if key not in users:
            users[key] = mean_user_metric(runs, metric)
        return users[key]

    for ref in REFERENCES:
        rivals = [row for row in table.rows if row != ours and ref.admits(table.methods[row], table.methods[ours])]
        for dataset in table.datasets:
            for metric in metrics:
                mine = table.mean(ours, dataset, metric)
                scored = [(m, row) for row in rivals if (m := table.mean(row, dataset, metric)) is not None]
                if mine is None or not scored or max(scored)[0] <= 0:
                    continue
                best = max(scored)[1]
                a, b, note = shared_seeds(table.records[(ours, dataset)], table.records[(best, dataset)],
                                          lambda r: r.seed)
                x, y = per_user(a, ours, dataset, metric), per_user(b, best, dataset, metric)
                p = paired_test(test, x, y).p_value if x.shape == y.shape else None
                seeds = tuple(sorted({r.seed for r in a} & {r.seed for r in b}))
                table.gains.append(Gain(table.encoder, table.backbone, ref.name, dataset, metric,
                                        _mean(a, metric), best, _mean(b, metric), p, seeds, note, len(scored)))


def _mean(runs: list[RunRecord], metric: str) -> float:
    return float(np.mean([r.value(metric) for r in runs]))


def average(gains: list[Gain]) -> str:
    """'+a.b % over n cells (k better, j worse at p < 0.05)' or '–'."""
    if not gains:
        return "–"
    mean = statistics.fmean(g.gain for g in gains) * 100
    better = sum(g.gain > 0 and g.mark != "" for g in gains)
    worse = sum(g.gain < 0 and g.mark != "" for g in gains)
    return f"{mean:+.2f} % over {len(gains)} cells ({better} better, {worse} worse at p < 0.05)"
