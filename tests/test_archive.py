"""spectran archive: the results of finished runs without their weights, read back by the report as
the runs themselves; idempotent, refusing ranks that do not reproduce metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spectran.cli import main
from spectran.errors import SpectranError
from spectran.experiments.archive import archive_runs, rank_dtype
from spectran.experiments.paper_report import paper_report
from spectran.experiments.report import report
from spectran.runfolder import RunFolder
from test_experiments_report import FAR, make_run


def with_valid(folder: Path, ranks: list[int]) -> Path:
    """Give a hand-made run (test ranks only) valid ranks matching its metrics.json."""
    np.save(folder / "valid_ranks.npy", np.array(ranks, dtype=np.int64))
    return folder


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for seed, (a, b) in enumerate([([1, 1, FAR, FAR], [1, 1, 1, FAR]), ([1, FAR, FAR, FAR], [1, 1, 1, 1])]):
        with_valid(make_run(root, "office", "id", seed, a), a)
        with_valid(make_run(root, "office", "spectran", seed, b), b)
    return root


def test_a_trained_run_archives_without_weights_and_reports_the_same(tmp_path: Path):
    runs = tmp_path / "runs"
    for method in ("id", "spectran"):
        assert main(["train", "--dataset", "synthetic", "--method", method, "--encoder", "fake", "--epochs", "1",
                     "--dim", "16", "--set", "train.threads=1", "--no-progress", "--out", str(runs / method)]) == 0
    assert main(["archive", str(runs), "--out", str(tmp_path / "kept")]) == 0
    kept = RunFolder(tmp_path / "kept" / "spectran")
    names = sorted(p.name for p in kept.path.iterdir())
    assert names == ["config.yaml", "data.json", "env.json", "log.jsonl", "metrics.json", "ranks.npz"]
    with np.load(kept.path / "ranks.npz") as z:
        assert z["test"].dtype == np.uint16  # the synthetic catalog fits 16 bits
    original = RunFolder(runs / "spectran")
    for split in ("valid", "test"):
        assert np.array_equal(kept.read_ranks(split), original.read_ranks(split))
    _, cells_runs, tests_runs = report([runs], ["ndcg@10", "recall@10"])
    _, cells_kept, tests_kept = report([tmp_path / "kept"], ["ndcg@10", "recall@10"])
    assert [(c["row"], c["metric"], c["mean"]) for c in cells_kept] == \
        [(c["row"], c["metric"], c["mean"]) for c in cells_runs]
    assert [t["p_value"] for t in tests_kept] == [t["p_value"] for t in tests_runs]
    # which text matrix the run read is recorded (re-encoding on another machine may differ); id reads none
    assert len(json.loads(kept.metrics.read_text())["protocol"]["embeddings_sha256"]) == 64
    assert "embeddings_sha256" not in json.loads((runs / "id" / "metrics.json").read_text())["protocol"]


def test_the_paper_table_reads_an_archive(sweep: Path, tmp_path: Path):
    archive_runs(sweep, tmp_path / "kept")
    md_runs, cells_runs, gains_runs = paper_report([sweep], "spectran", ["ndcg@10"])
    md_kept, cells_kept, gains_kept = paper_report([tmp_path / "kept"], "spectran", ["ndcg@10"])
    assert md_kept == md_runs
    assert cells_kept == cells_runs
    assert gains_kept == gains_runs and gains_runs


def test_archiving_again_skips_the_same_and_replaces_a_changed_run(sweep: Path, tmp_path: Path):
    first = archive_runs(sweep, tmp_path / "kept")
    assert [a.status for a in first] == ["new"] * 4
    assert [a.status for a in archive_runs(sweep, tmp_path / "kept")] == ["same"] * 4
    changed = sweep / "office" / "sasrec" / "id" / "dim64" / "seed0"
    metrics = json.loads((changed / "metrics.json").read_text())
    (changed / "metrics.json").write_text(json.dumps({**metrics, "epochs": 7}))
    statuses = {a.source: a.status for a in archive_runs(sweep, tmp_path / "kept")}
    assert statuses[changed] == "updated" and sorted(statuses.values()).count("same") == 3
    kept = tmp_path / "kept" / changed.relative_to(sweep) / "metrics.json"
    assert json.loads(kept.read_text())["epochs"] == 7


def test_ranks_that_do_not_give_the_metrics_are_refused_and_nothing_is_written(sweep: Path, tmp_path: Path):
    bad = sweep / "office" / "sasrec" / "spectran" / "dim64" / "seed1"
    np.save(bad / "test_ranks.npy", np.array([FAR] * 4, dtype=np.int64))
    with pytest.raises(SpectranError, match=r"test_ranks.npy: the ranks give .* metrics.json says"):
        archive_runs(sweep, tmp_path / "kept")
    assert not (tmp_path / "kept" / bad.relative_to(sweep) / "metrics.json").exists()


def test_the_archive_cannot_lie_inside_its_runs(sweep: Path, capsys):
    with pytest.raises(SpectranError, match="outside the runs"):
        archive_runs(sweep, sweep / "archive")
    assert main(["archive", str(sweep / "nowhere"), "--out", str(sweep.parent / "kept")]) != 0
    assert "nowhere: not a folder" in capsys.readouterr().err


def test_rank_dtype_is_the_smallest_that_holds_the_catalog():
    assert rank_dtype(np.array([1, 65535])) == np.uint16
    assert rank_dtype(np.array([1, 65536])) == np.uint32
    with pytest.raises(SpectranError, match="positive"):
        rank_dtype(np.array([0, 3]))


def test_the_archive_keeps_the_sweeps_row_order(tmp_path: Path):
    first, second, kept = tmp_path / "a", tmp_path / "b", tmp_path / "kept"
    for label, ranks in (("mlp", [1, FAR]), ("id", [FAR, 1]), ("spectran", [1, 1])):
        with_valid(make_run(first, "office", label, 0, ranks), ranks)
    (first / "sweep_summary.json").write_text(json.dumps({"rows": ["mlp", "id", "spectran"], "runs": []}))
    archive_runs(first, kept)
    _, cells, _ = report([kept], ["ndcg@10"])
    assert [c["row"] for c in cells] == ["mlp", "id", "spectran"]  # not alphabetical
    # a later sweep adds its labels after the archive's own; archiving it again changes nothing
    with_valid(make_run(second, "office", "alphafuse", 0, [1, FAR]), [1, FAR])
    (second / "sweep_summary.json").write_text(json.dumps({"rows": ["id", "alphafuse"], "runs": []}))
    for _ in range(2):
        archive_runs(second, kept)
        assert json.loads((kept / "sweep_summary.json").read_text())["rows"] == ["mlp", "id", "spectran", "alphafuse"]
    _, cells, _ = report([kept], ["ndcg@10"])
    assert [c["row"] for c in cells] == ["mlp", "id", "alphafuse", "spectran"]  # ours last
