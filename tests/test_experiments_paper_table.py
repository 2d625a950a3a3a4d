"""report --paper-table on hand-made run folders: rows in the paper's order, missing cells, n per
cell with the runs stopped at the epoch cap, bold best, gains over three references with their
significance marks and averages, one table set per text encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spectran.cli import main
from spectran.experiments.paper_report import paper_report
from test_experiments_report import FAR, make_run

U = 20  # users


def hits(n: int, last: int | None = None) -> list[int]:
    """Ranks of U users: the first n at rank 1, the rest far; ``last``: user n-1's rank instead."""
    ranks = [1] * n + [FAR] * (U - n)
    if last is not None:
        ranks[n - 1] = last
    return ranks


def set_fit(folder: Path, epochs: int, best: int) -> None:
    path = folder / "metrics.json"
    metrics = json.loads(path.read_text())
    path.write_text(json.dumps({**metrics, "epochs": epochs, "best_epoch": best}))


def set_encoder(folder: Path, encoder: str) -> None:
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["text"]["encoder"] = encoder
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture()
def grid(tmp_path: Path) -> Path:
    for seed in (0, 1):
        make_run(tmp_path, "office", "id", seed, hits(5))
        make_run(tmp_path, "office", "mlp", seed, hits(8))
        set_fit(make_run(tmp_path, "office", "spectran", seed, hits(20)), 30, 12)  # stopped early
        make_run(tmp_path, "beauty", "id", seed, hits(10))
        make_run(tmp_path, "beauty", "spectran", seed, hits(10, last=15))
    make_run(tmp_path, "office", "mlp tuned", 0, hits(6), method="mlp")  # a recipe row of mlp
    set_fit(make_run(tmp_path, "office", "svd_frozen", 0, hits(10)), 200, 198)  # at the cap of 200 epochs
    make_run(tmp_path, "office", "id", 0, hits(5), backbone="bert4rec")
    # a second encoder: spectran only; the id runs (no text) stand in its table too
    set_encoder(make_run(tmp_path / "llm", "office", "spectran", 0, hits(4)), "hf:decoder")
    return tmp_path


def table_lines(md: str, heading: str) -> list[str]:
    part = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("| ")]


def row(lines: list[str], name: str) -> list[str]:
    return next(line for line in lines if line.startswith(f"| {name} |")).strip("| ").split(" | ")


def test_cells_rows_n_and_bold(grid: Path):
    md, cells, _ = paper_report([grid])
    lines = table_lines(md, "sasrec — text encoder minilm")
    assert lines[0] == ("| method | office R@10 | office N@10 | office R@20 | office N@20 | office n "
                        "| beauty R@10 | beauty N@10 | beauty R@20 | beauty N@20 | beauty n |")
    names = [line.split(" | ")[0][2:] for line in lines[1:] if not line.startswith("| gain")]
    assert names == ["id", "mlp", "mlp tuned", "moe", "whiten_mlp", "rlmrec", "llmesr", "pca_init",
                     "svd_frozen", "alphafuse", "spectran"]  # the paper's order, recipes after their method
    assert row(lines, "spectran")[1:6] == ["**1.0000**"] * 4 + ["2"]
    assert row(lines, "svd_frozen")[1:6] == ["0.5000"] * 4 + ["1 (cap: 1)"]  # best epoch within patience of the cap
    assert row(lines, "mlp")[6:] == ["–"] * 5 and row(lines, "moe")[1:] == ["–"] * 10  # not run yet
    assert row(lines, "id")[6] == "**0.5000**" and row(lines, "spectran")[6] == "0.4500"
    assert "clothing" not in md  # datasets where present
    bert = table_lines(md, "bert4rec — text encoder minilm")
    assert row(bert, "id")[1:6] == ["0.2500"] * 4 + ["1"] and row(bert, "spectran")[1:] == ["–"] * 10
    bert_names = [line.split(" | ")[0][2:] for line in bert[1:] if not line.startswith("| gain")]
    assert "mlp tuned" not in bert_names and "moe" in bert_names  # a recipe row only where it has runs
    by = {(c["backbone"], c["row"], c["dataset"], c["metric"]): c for c in cells}
    assert by[("sasrec", "svd_frozen", "office", "ndcg@10")]["at_cap"] == 1
    assert by[("sasrec", "spectran", "office", "ndcg@10")]["at_cap"] == 0


def test_gains_marks_and_averages(grid: Path):
    md, _, gains = paper_report([grid])
    lines = table_lines(md, "sasrec — text encoder minilm")
    # office: ours 1.0 everywhere; best baseline svd_frozen 0.5 (10 users, all better: p < 0.01), seed 0
    # only: the gain is over the one seed both ran
    best = row(lines, "gain over the best baseline")
    assert best[1:5] == ["+100.0%‡ (seed 0)"] * 4
    # beauty vs id: user 9 at rank 15 instead of 1 (one difference: not significant)
    ndcg20 = (9 + 1 / 4) / U / 0.5 - 1  # 1/log2(16) = 1/4
    assert best[6:10] == ["-10.0%", "-10.0%", "+0.0%", f"{ndcg20 * 100:+.1f}%"]
    assert row(lines, "gain over the best of the paper's baselines")[1:5] == ["+150.0%‡"] * 4  # mlp 0.4
    assert row(lines, "gain over the best of the paper's baselines")[6:10] == ["–"] * 4  # none on beauty
    assert row(lines, "gain over svd_frozen")[1] == "+100.0%‡ (seed 0)"
    mean = (4 * 1.0 - 0.1 - 0.1 + 0.0 + ndcg20) / 8 * 100
    assert f"average gain of `spectran` over the best baseline: {mean:+.2f} % over 8 cells (4 better, 0 worse" in md
    summary = md.split("## Average gain", 1)[1].split("\n## ", 1)[0]
    assert f"| minilm | **all** | {mean:+.2f} % over 8 cells" in summary
    assert "| minilm | bert4rec | – | – | – |" in summary
    assert "+9.17 %" in summary
    glance = md.split("against the best baseline, cell by cell (test ndcg@10)", 1)[1].split("\n## ", 1)[0]
    assert ("| minilm | sasrec | 1.0000 vs 0.5000 `svd_frozen`: +100.0%‡ (n 1, 4 baselines) "
            "| 0.4500 vs 0.5000 `id`: -10.0% (n 2, 1 baseline) |"
            in glance)
    assert "| minilm | bert4rec | – | – |" in glance
    office = [g for g in gains if g["reference"] == "the best baseline" and g["dataset"] == "office"
              and g["backbone"] == "sasrec" and g["encoder"] == "minilm"]
    assert {g["compared_with"] for g in office} == {"svd_frozen"} and all(g["p_value"] < 0.01 for g in office)
    assert {g["baselines_run"] for g in office} == {4}  # id, mlp, mlp tuned, svd_frozen


def test_one_table_set_per_encoder_with_the_text_free_runs_in_each(grid: Path):
    md, _, _ = paper_report([grid])
    lines = table_lines(md, "sasrec — text encoder hf:decoder")
    assert row(lines, "id")[1:6] == ["**0.2500**"] * 4 + ["2"]  # the minilm sweep's id runs stand here too
    assert row(lines, "spectran")[1:6] == ["0.2000"] * 4 + ["1"] and row(lines, "mlp")[1] == "–"
    assert row(lines, "gain over the best baseline")[1] == "-20.0% (seed 0)"  # id ran seeds 0 and 1
    md, _, _ = paper_report([grid], filters=["text.encoder=minilm"])
    assert "hf:decoder" not in md


def test_cli_writes_tables_and_refuses_other_layouts(grid: Path, tmp_path: Path, capsys):
    out = tmp_path / "paper" / "table.md"
    assert main(["report", str(grid), "--paper-table", "--out", str(out)]) == 0
    assert out.read_text().startswith("# The paper's table")
    assert out.with_suffix(".csv").read_text().splitlines()[0].startswith("encoder,backbone,row,method,dataset")
    assert "compared_with" in (out.parent / "table_gains.csv").read_text()
    assert main(["report", str(grid), "--paper-table", "--group-by", "backbone"]) == 2
    assert "--paper-table does not take --group-by" in capsys.readouterr().err


def test_ours_split_by_a_setting_is_named(grid: Path):
    make_run(grid, "office", "spectran", 0, hits(20), dim=32)
    md, _, _ = paper_report([grid])
    assert "runs labelled `spectran` differ in their settings (spectran [dim=32], spectran [dim=64])" in md
    md, _, _ = paper_report([grid], filters=["dim=64"])
    assert "differ in their settings" not in md and "+100.0%‡" in md


def test_wall_time_sums_each_runs_epochs_per_dataset(tmp_path: Path):
    for seed, per_epoch in ((0, 60.0), (1, 120.0)):
        folder = make_run(tmp_path, "office", "spectran", seed, hits(4))
        epochs = [{"epoch": e, "train_seconds": per_epoch - 6, "valid_seconds": 6.0} for e in (1, 2, 3)]
        epochs.append(epochs[-1])  # epoch 3 logged again by a resume: counted once
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in epochs))
        (folder / "env.json").write_text(json.dumps({"device": "cpu", "threads": 1}))
    make_run(tmp_path, "beauty", "spectran", 0, hits(4))  # no epoch log: not timed
    md, _, _ = paper_report([tmp_path])
    section = md[md.index("## Wall time"):]
    # 3 and 6 minutes: median 4.5, total 9 minutes = 0.15 h
    assert "| minilm | sasrec | office | 2 | 4.5 | 0.15 | cpu, 1 thread |" in section
    assert "| beauty |" not in section


def test_gains_compare_the_seeds_both_rows_ran(tmp_path: Path):
    make_run(tmp_path, "office", "spectran", 0, hits(10))
    make_run(tmp_path, "office", "spectran", 1, hits(20))  # ours: 0.5, 1.0 (mean 0.75)
    make_run(tmp_path, "office", "svd_frozen", 0, hits(10))  # 0.5 at seed 0 only
    make_run(tmp_path, "office", "pca_init", 2, hits(5))  # 0.25 at a seed ours did not run
    md, _, gains = paper_report([tmp_path])
    lines = table_lines(md, "sasrec — text encoder minilm")
    assert row(lines, "spectran")[2] == "**0.7500**" and row(lines, "spectran")[5] == "2"  # the cell: every seed
    assert row(lines, "gain over svd_frozen")[2] == "+0.0% (seed 0)"  # 0.5 vs 0.5, not 0.75 vs 0.5
    assert row(lines, "gain over the best of the paper's baselines")[2] == "+200.0%‡ (no shared seed)"
    by = {(g["reference"], g["metric"]): g for g in gains}
    assert by[("svd_frozen", "ndcg@10")]["ours"] == 0.5 and by[("svd_frozen", "ndcg@10")]["seeds"] == "0"
    assert by[("the best of the paper's baselines", "ndcg@10")]["seeds"] == ""
    assert "over 4 cells (0 better, 0 worse at p < 0.05)" in md.split("over svd_frozen: ", 1)[1].splitlines()[0]
