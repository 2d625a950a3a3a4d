"""Report aggregation on hand-made run folders: means, sample std, bold, gain, significance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectran.cli import main
from spectran.errors import SpectranError
from spectran.eval.metrics import metrics_from_ranks
from spectran.experiments.report import report

FAR = 100  # a rank outside every cut-off: NDCG@10 = recall@10 = 0


def make_run(root: Path, dataset: str, label: str, seed: int, ranks: list[int], method: str | None = None,
             dim: int = 64, backbone: str = "sasrec", items: int = 500, **protocol) -> Path:
    folder = root / dataset / backbone / label / f"dim{dim}" / f"seed{seed}"
    folder.mkdir(parents=True)
    method = method or label
    config = {"data": {"dataset": dataset}, "model": {"backbone": backbone, "method": method, "dim": dim,
                                                      "label": label},
              "train": {"seed": seed, "threads": 1}, "text": {"encoder": "minilm"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    r = np.array(ranks, dtype=np.int64)
    np.save(folder / "test_ranks.npy", r)
    proto = {"split": "loo", "ties": "pessimistic", "exclude_history": False, "select": "valid ndcg@10",
             "max_len": 50, "dim": dim, "backbone": backbone, "dataset": dataset, "users": len(r),
             "items": items, "users_dropped": 0, "candidates": f"all {items}", "seed": seed,
             "encoder": None if method == "id" else "minilm", **protocol}
    metrics = {"test": metrics_from_ranks(r, [5, 10, 20]), "valid": metrics_from_ranks(r, [5, 10, 20]),
               "train_seconds_per_epoch": 1.0 + seed, "protocol": proto}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    # per-seed test NDCG@10 = recall@10 of 4 users: id 0.5 / 0.25 / 0.75, mlp 0.25 / 0.25 / 0.5,
    # spectran 0.75 / 1.0 / 0.75 (a rank-1 user contributes 1, a far user 0)
    make_run(tmp_path, "office", "id", 0, [1, 1, FAR, FAR])
    make_run(tmp_path, "office", "id", 1, [1, FAR, FAR, FAR])
    make_run(tmp_path, "office", "id", 2, [1, 1, 1, FAR])
    make_run(tmp_path, "office", "mlp", 0, [1, FAR, FAR, FAR])
    make_run(tmp_path, "office", "mlp", 1, [FAR, 1, FAR, FAR])
    make_run(tmp_path, "office", "mlp", 2, [1, 1, FAR, FAR])
    make_run(tmp_path, "office", "spectran", 0, [1, 1, 1, FAR])
    make_run(tmp_path, "office", "spectran", 1, [1, 1, 1, 1])
    make_run(tmp_path, "office", "spectran", 2, [1, 1, FAR, 1])
    return tmp_path


def test_mean_and_sample_std_match_hand_computation(runs: Path):
    _, cells, _ = report([runs], ["ndcg@10", "recall@10"])
    by = {(c["row"], c["metric"]): c for c in cells}
    assert by[("id", "ndcg@10")]["mean"] == pytest.approx(0.5)
    assert by[("id", "ndcg@10")]["std"] == pytest.approx(0.25)  # sqrt(((0)^2 + .25^2 + .25^2) / 2)
    assert by[("mlp", "recall@10")]["mean"] == pytest.approx(1 / 3)
    assert by[("mlp", "recall@10")]["std"] == pytest.approx(np.std([0.25, 0.25, 0.5], ddof=1))
    assert by[("spectran", "ndcg@10")]["mean"] == pytest.approx(2.5 / 3)
    assert by[("spectran", "ndcg@10")]["n"] == 3 and by[("id", "ndcg@10")]["seeds"] == "0 1 2"


def test_markdown_bold_gain_and_protocol(runs: Path):
    md, _, tests = report([runs], ["ndcg@10"], test="t-test")
    lines = md.splitlines()
    row = next(line for line in lines if line.startswith("| spectran "))
    assert "**0.8333 ± 0.1443**" in row  # best mean in its column is bold
    assert "**" not in next(line for line in lines if line.startswith("| id "))
    gain = next(line for line in lines if line.startswith("| gain of spectran"))
    assert f"{(2.5 / 3 / 0.5 - 1) * 100:+.1f}%" in gain  # over the best other row (id, 0.5)
    assert "sample std (ddof=1)" in md and "pessimistic" in md and "seeds: 0, 1, 2" in md
    assert lines.index(row) > next(i for i, line in enumerate(lines) if line.startswith("- split"))
    # rows: alphabetical, ours last
    order = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "±" in line]
    assert order == ["id", "mlp", "spectran"]
    assert tests[0]["baseline"] == "id"


def test_ablations_of_ours_are_not_baselines_unless_against_all(runs: Path):
    # an ablation of spectran (same method, another label) better than every baseline: the gain
    # and the test still compare with the best baseline (id); against="all" compares with it
    for seed in (0, 1, 2):
        make_run(runs, "office", "spectran w/o x", seed, [1, 1, 1, 1], method="spectran")
    md, _, (t,) = report([runs], ["ndcg@10"])
    gain = next(line for line in md.splitlines() if line.startswith("| gain of spectran"))
    assert f"{(2.5 / 3 / 0.5 - 1) * 100:+.1f}%" in gain and t["baseline"] == "id"
    assert "its ablations are not baselines" in md
    md, _, (t,) = report([runs], ["ndcg@10"], against="all")
    gain = next(line for line in md.splitlines() if line.startswith("| gain of spectran"))
    assert f"{(2.5 / 3 - 1) * 100:+.1f}%" in gain and t["baseline"] == "spectran w/o x"
    assert main(["report", str(runs), "--against", "all", "--metrics", "ndcg@10"]) == 0
    md, _, tests = report([runs], ["ndcg@10"], filters=["label=spectran,spectran w/o x"])
    assert "no baseline in this table" in md and "| gain of" not in md and tests == []


def test_significance_uses_seed_averaged_per_user_ndcg(runs: Path):
    _, _, tests = report([runs], ["ndcg@10"], test="t-test")
    (t,) = tests
    # per-user NDCG@10 averaged over seeds: spectran (1, 1, 2/3, 2/3), id (1, 2/3, 1/3, 0)
    d = np.array([0.0, 1 / 3, 1 / 3, 2 / 3])
    expected_t = d.mean() / (d.std(ddof=1) / 2)
    assert t["statistic"] == pytest.approx(expected_t)
    assert t["ours_ndcg@10"] == pytest.approx(2.5 / 3) and t["users"] == 4
    _, _, (w,) = report([runs], ["ndcg@10"], test="wilcoxon")
    # non-zero differences 1/3, 1/3, 2/3 (tied ranks 1.5, 1.5, 3), all positive: W- = 0, normal approx.
    z = (0 - 3 * 4 / 4) / np.sqrt(3 * 4 * 7 / 24 - (2 ** 3 - 2) / 48)
    from math import erfc, sqrt
    assert w["p_value"] == pytest.approx(erfc(abs(z) / sqrt(2)))


def test_test_over_seeds_pairs_the_seeds_both_rows_ran(runs: Path, tmp_path: Path):
    from scipy import stats

    _, _, (t,) = report([runs], ["ndcg@10"])
    # per-seed test NDCG@10: spectran 0.75 / 1.0 / 0.75, id 0.5 / 0.25 / 0.75
    d = np.array([0.25, 0.75, 0.0])
    expected = 2 * stats.t.sf(d.mean() / (d.std(ddof=1) / np.sqrt(3)), df=2)
    assert t["seeds_paired"] == 3 and t["seed_mean_difference"] == pytest.approx(d.mean())
    assert t["seed_p_value"] == pytest.approx(expected)
    md, _, _ = report([runs], ["ndcg@10"])
    assert f"| 3 | {d.mean():+.4f} | {expected:.3g} |" in md
    # one seed in common (id ran seed 0 only): no test over seeds, the per-user test still runs
    only = tmp_path / "only"
    make_run(only, "office", "id", 0, [1, 1, FAR, FAR])
    make_run(only, "office", "spectran", 0, [1, 1, 1, FAR])
    make_run(only, "office", "spectran", 1, [1, 1, 1, 1])
    md, _, (t,) = report([only], ["ndcg@10"])
    assert t["seeds_paired"] == 1 and np.isnan(t["seed_p_value"]) and "| 1 | – | – |" in md


def test_variants_split_rows_and_protocol_warning(tmp_path: Path):
    for dim in (16, 32):
        for seed in (0, 1):
            make_run(tmp_path, "office", "id", seed, [1, FAR, 2, 3], dim=dim)
    md, cells, _ = report([tmp_path], ["ndcg@10"])
    assert {c["row"] for c in cells} == {"id [dim=16]", "id [dim=32]"}
    assert all(c["n"] == 2 for c in cells)  # dims never mixed as seeds
    assert "warning**: runs in this table differ in dim: 16, 32" in md


def test_group_by_backbone_gives_one_table_each(tmp_path: Path):
    for bb in ("sasrec", "bert4rec"):
        make_run(tmp_path, "office", "id", 0, [1, FAR], backbone=bb)
        make_run(tmp_path, "office", "spectran", 0, [1, 1], backbone=bb)
    md, cells, tests = report([tmp_path], ["ndcg@10"], group_by="backbone")
    assert "## Results — backbone = bert4rec" in md and "## Results — backbone = sasrec" in md
    assert {c["group"] for c in cells} == {"sasrec", "bert4rec"}
    assert {c["row"] for c in cells} == {"id", "spectran"}  # backbone is the table, not a variant
    assert len(tests) == 2


def test_group_by_backbone_ignores_each_backbones_own_settings(tmp_path: Path):
    for bb, dropout in (("sasrec", 0.5), ("bert4rec", 0.2)):
        for label in ("id", "spectran"):
            folder = make_run(tmp_path, "office", label, 0, [1, FAR], backbone=bb)
            config = yaml.safe_load((folder / "config.yaml").read_text())
            config["backbone"] = {"dropout": dropout}
            (folder / "config.yaml").write_text(yaml.safe_dump(config))
    _, cells, _ = report([tmp_path], ["ndcg@10"], group_by="backbone")
    assert {c["row"] for c in cells} == {"id", "spectran"}
    _, cells, _ = report([tmp_path], ["ndcg@10"])  # one table: the dropouts are real variants
    assert any("dropout" in c["row"] for c in cells)


def test_uneven_seed_counts_are_marked(tmp_path: Path):
    make_run(tmp_path, "office", "id", 0, [1, FAR])
    make_run(tmp_path, "office", "id", 1, [1, FAR])
    make_run(tmp_path, "office", "mlp", 0, [1, 1])
    make_run(tmp_path, "office", "spectran", 0, [1, 1])
    make_run(tmp_path, "office", "spectran", 1, [1, 1])
    md, _, _ = report([tmp_path], ["ndcg@10"])
    assert "| mlp | **1.0000** (n=1) |" in md


def test_ranks_not_matching_metrics_are_refused(runs: Path):
    np.save(runs / "office" / "sasrec" / "id" / "dim64" / "seed0" / "test_ranks.npy", np.ones(4, dtype=np.int64))
    with pytest.raises(SpectranError, match=r"does not match metrics\.json"):
        report([runs], ["ndcg@10"])


def test_missing_metric_and_empty_folder_errors(runs: Path, tmp_path: Path):
    with pytest.raises(SpectranError, match="no test metric 'ndcg@7'"):
        report([runs], ["ndcg@7"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpectranError, match="no finished runs"):
        report([empty])


def test_cli_writes_markdown_and_csv(runs: Path, tmp_path: Path, capsys):
    out = tmp_path / "out" / "table.md"
    assert main(["report", str(runs), "--out", str(out), "--extras", "--rows", "mlp,id"]) == 0
    md = out.read_text()
    assert "office valid ndcg@10" in md and "office s/epoch" in md
    assert md.index("| mlp ") < md.index("| id ") < md.index("| spectran ")
    header = out.with_suffix(".csv").read_text().splitlines()[0]
    assert header == "group,row,label,dataset,metric,split,mean,std,n,seeds"
    assert (tmp_path / "out" / "table_significance.csv").is_file()
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "error:" in capsys.readouterr().err


def test_cold_columns_average_only_runs_with_cold_targets(runs: Path):
    """--cold: test_cold metrics per row; runs without cold-start targets are left out of the cell."""
    for seed, value in [(0, 0.2), (1, 0.4)]:
        path = runs / "office" / "sasrec" / "spectran" / "dim64" / f"seed{seed}" / "metrics.json"
        m = json.loads(path.read_text())
        m["test_cold"] = {"ndcg@10": value, "recall@10": 2 * value, "users": 3}
        path.write_text(json.dumps(m))
    md, cells, _ = report([runs], ["ndcg@10"], cold=True)
    by = {(c["row"], c["metric"], c["split"]): c for c in cells}
    cold = by[("spectran", "ndcg@10", "test_cold")]
    assert cold["mean"] == pytest.approx(0.3) and cold["n"] == 2 and cold["seeds"] == "0 1"
    assert by[("spectran", "recall@10", "test_cold")]["mean"] == pytest.approx(0.6)
    assert ("id", "ndcg@10", "test_cold") not in by  # no cold block in any id run
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert "office cold ndcg@10" in header


def test_a_setting_missing_from_an_older_config_takes_its_default(tmp_path: Path):
    """Runs made before a setting existed are the same configuration as runs at its default."""
    make_run(tmp_path, "office", "svd_frozen", 0, [1, FAR])  # written before model.unseen_ids existed
    new = make_run(tmp_path, "office", "svd_frozen", 1, [1, 1])
    zero = make_run(tmp_path, "office", "svd_frozen", 2, [FAR, FAR])
    for folder, value in [(new, "learn"), (zero, "zero")]:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["model"]["unseen_ids"] = value
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    _, cells, _ = report([tmp_path], ["ndcg@10"])
    rows = {c["row"]: c for c in cells}
    assert set(rows) == {"svd_frozen [unseen_ids=learn]", "svd_frozen [unseen_ids=zero]"}
    assert rows["svd_frozen [unseen_ids=learn]"]["seeds"] == "0 1"  # the old run joins the default's row


def test_group_by_dim_orders_tables_numerically(tmp_path: Path):
    for dim in (128, 16, 32):
        make_run(tmp_path, "office", "id", 0, [1, FAR], dim=dim)
    md, _, _ = report([tmp_path], ["ndcg@10"], group_by="dim")
    titles = [line for line in md.splitlines() if line.startswith("## Results")]
    assert titles == [f"## Results — dim = {d}" for d in (16, 32, 128)]


def test_filter_keeps_matching_seeds_and_labels(runs: Path, capsys):
    _, cells, _ = report([runs], ["ndcg@10"], filters=["train.seed=0,2"])
    by = {c["row"]: c for c in cells}
    assert by["id"]["seeds"] == "0 2" and by["id"]["mean"] == pytest.approx((0.5 + 0.75) / 2)
    _, cells, _ = report([runs], ["ndcg@10"], filters=["label=id,spectran", "seed=1"])
    assert {(c["row"], c["seeds"]) for c in cells} == {("id", "1"), ("spectran", "1")}
    with pytest.raises(SpectranError, match="no such setting"):
        report([runs], ["ndcg@10"], filters=["train.sed=0"])
    with pytest.raises(SpectranError, match=r"--filter train.seed=7: matches no run \(known values: 0, 1, 2\)"):
        report([runs], ["ndcg@10"], filters=["train.seed=7"])
    assert main(["report", str(runs), "--filter", "label=spectrn"]) == 2
    err = capsys.readouterr().err
    assert "--filter label=spectrn: matches no run (known values:" in err and "spectran" in err


def test_a_corrupt_sweep_summary_is_an_error_naming_the_file(runs: Path):
    (runs / "sweep_summary.json").write_text('{"rows": ["id",')
    with pytest.raises(SpectranError, match=r"sweep_summary\.json: not valid JSON"):
        report([runs], ["ndcg@10"])
    (runs / "sweep_summary.json").write_text('{"rows": ["spectran", "mlp", "id"]}')
    md, _, _ = report([runs], ["ndcg@10"])
    assert md.index("| mlp ") < md.index("| id ") < md.index("| spectran ")  # sweep order, ours last


def test_unconverged_runs_are_flagged_and_each_row_names_its_recipe(tmp_path: Path):
    for seed in (0, 1):
        make_run(tmp_path, "office", "id", seed, [1, FAR, 1, FAR])
        folder = make_run(tmp_path, "office", "svd_frozen", seed, [1, 1, 1, FAR])
        metrics = json.loads((folder / "metrics.json").read_text())
        # seed 0 ran 3 epochs and its best was the last (the "+878 %" case); seed 1 stopped by patience
        metrics |= {"epochs": 3, "best_epoch": 3} if seed == 0 else {"epochs": 40, "best_epoch": 30}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    md, _, _ = report([tmp_path], ["ndcg@10"], ours="svd_frozen")
    assert "| svd_frozen † |" in md and "| id |" in md
    assert "**Not converged**" in md and "`svd_frozen` office seed 0: best epoch is the last one trained (3)" in md
    assert "seed 1" not in md.split("**Not converged**")[1].splitlines()[0]
    assert "- defaults of the method settings: `id`: shared defaults; `svd_frozen`: svd_frozen's sasrec recipe" in md


def test_gain_compares_the_seeds_both_rows_ran(runs: Path):
    # a baseline with seed 0 only (1.0): the gain sets spectran's seed 0 (0.75) against it, not its mean
    make_run(runs, "office", "svd_frozen", 0, [1, 1, 1, 1])
    md, _, (t,) = report([runs], ["ndcg@10"])
    gain = next(line for line in md.splitlines() if line.startswith("| gain of spectran"))
    assert "-25.0% (seed 0)" in gain and "(n=1)" in md
    assert t["baseline"] == "svd_frozen" and t["ours_ndcg@10"] == 0.75 and t["baseline_ndcg@10"] == 1.0  # seed 0
    make_run(runs, "office", "svd_frozen", 1, [1, 1, 1, 1])
    make_run(runs, "office", "svd_frozen", 2, [1, 1, 1, 1])
    md, _, _ = report([runs], ["ndcg@10"])
    gain = next(line for line in md.splitlines() if line.startswith("| gain of spectran"))
    assert f"{(2.5 / 3 - 1) * 100:+.1f}% |" in gain and "seed" not in gain  # every seed of both: no note
