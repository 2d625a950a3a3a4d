"""A run folder knows what it was trained on (issue class 4), and the small things users notice
(class 8): file modes follow the umask, no empty lock files, duplicates counted, unfinished
runs named by the report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from spectran.cli import main
from spectran.experiments.execute import run_all
from spectran.experiments.sweep import expand, parse_sweep
from spectran.io import write_json
from test_experiments_report import make_run

SEQS = "1 1 2 3 4\n2 2 3 4 5\n3 3 4 5 1\n4 4 5 1 2\n"
ITEMS = "".join(json.dumps({"item": i, "text": f"item number {i}"}) + "\n" for i in range(1, 6))


def _dataset(root: Path) -> Path:
    folder = root / "shop"
    folder.mkdir(parents=True)
    (folder / "sequences.txt").write_text(SEQS)
    (folder / "items.jsonl").write_text(ITEMS)
    return folder


def _train(dataset: str, out: Path, epochs: int) -> list[str]:
    return ["train", "--dataset", dataset, "--encoder", "fake", "--epochs", str(epochs), "--no-progress", "--json",
            "--set", "model.dim=8", "--set", "train.threads=1", "--out", str(out)]


def _one_error(capsys, code: int, *expected: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for part in expected:
        assert part in err[0], (part, err[0])
    return err[0]


# -- class 4: stale or mixed results -------------------------------------------------------------

def test_more_epochs_train_on_and_fewer_are_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train("synthetic", out, 1)) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    assert main(_train("synthetic", out, 2)) == 0  # a finished run asked for more: resumes and trains on
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    before = (out / "metrics.json").read_bytes()
    assert main(_train("synthetic", out, 2)) == 0  # the same again: the finished metrics
    capsys.readouterr()
    _one_error(capsys, main(_train("synthetic", out, 1)), f"{out}: the finished run trained 2 epochs",
               "train.epochs=1 asks for fewer")
    assert (out / "metrics.json").read_bytes() == before


def test_a_sweep_with_more_epochs_trains_its_finished_runs_on(tmp_path):
    tiny = {"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"}, "model": {"dim": 8},
            "backbone": {"layers": 1, "heads": 1, "inner": 16}, "train": {"epochs": 1, "batch_size": 128}}
    spec = {"base": tiny, "grid": {"train.seed": [0]}, "rows": {"id": {"model.method": "id"}}}
    (run,) = expand(parse_sweep(spec), tmp_path, threads=1)
    assert [o.status for o in run_all([run], tmp_path, progress=False)] == ["ok"]
    spec["base"]["train"]["epochs"] = 2
    (longer,) = expand(parse_sweep(spec), tmp_path, threads=1)
    assert longer.folder == run.folder
    assert [o.status for o in run_all([longer], tmp_path, progress=False)] == ["ok"]  # trained on, not "done"
    assert json.loads((run.folder / "metrics.json").read_text())["epochs"] == 2
    assert [o.status for o in run_all([longer], tmp_path, progress=False)] == ["done"]


@pytest.mark.parametrize("finished", [True, False])
def test_changed_data_is_refused_saying_what_changed(tmp_path, capsys, finished):
    folder = _dataset(tmp_path)
    out = tmp_path / "run"
    assert main(_train(str(folder), out, 1)) == 0
    capsys.readouterr()
    if not finished:  # an interrupted run: checkpoints but no metrics
        (out / "metrics.json").unlink()
    last = (out / "checkpoints" / "last.pt").read_bytes()
    (folder / "items.jsonl").write_text(ITEMS + json.dumps({"item": 6, "text": "a new item"}) + "\n")
    (folder / "sequences.txt").write_text(SEQS + "5 6 1 6 2\n")
    _one_error(capsys, main(_train(str(folder), out, 2)), f"{out}: the data changed since this run was trained",
               "items.jsonl changed, sequences.txt changed", "users 4 -> 5", "items 5 -> 6")
    assert (out / "checkpoints" / "last.pt").read_bytes() == last
    assert (out / "metrics.json").is_file() == finished


# -- class 8: small things users notice ---------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_follow_the_umask(tmp_path, umask):
    out = tmp_path / "run"
    code = (f"import os, sys; os.umask({umask}); from spectran.cli import main; "
            f"sys.exit(main({_train('synthetic', out, 1)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert proc.returncode == 0, proc.stderr
    files = [out / n for n in ("metrics.json", "config.yaml", "test_ranks.npy", "checkpoints/best.pt")]
    assert {p.name: _mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
    old = os.umask(umask)
    try:
        write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.json") == 0o666 & ~umask


def test_no_lock_file_stays_in_the_cache(tmp_path, capsys):
    folder = _dataset(tmp_path)
    for encoder in ("fake", "fake"):  # encoded, then loaded from the cache
        assert main(["encode", "--dataset", str(folder), "--encoder", encoder, "--no-progress"]) == 0
    capsys.readouterr()
    cache = Path(os.environ["SPECTRAN_CACHE"])
    assert list(cache.rglob("*.npy")), "nothing was cached"
    assert list(cache.rglob("*.lock")) == []


def test_duplicate_interaction_rows_are_dropped_and_counted(tmp_path, capsys):
    folder = tmp_path / "tab"
    folder.mkdir()
    rows = [f"u{u},i{(u + t) % 5},{t}" for u in range(4) for t in range(4)]
    dupes = [rows[1], rows[1], rows[6]]  # the same user, item and time again
    repeat = ["u0,i1,99"]  # the same item later: a real repeat, kept
    (folder / "interactions.csv").write_text("user,item,timestamp\n" + "\n".join(rows + dupes + repeat) + "\n")
    (folder / "items.csv").write_text("item,text\n" + "".join(f"i{i},thing {i}\n" for i in range(5)))
    assert main(["prepare", "--dataset", str(folder)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["duplicate_rows_dropped"] == 3
    assert meta["interactions_before"] == len(rows) + 1


def test_report_names_the_runs_a_half_finished_sweep_lacks(tmp_path):
    sweep = tmp_path / "sweep"
    done = make_run(sweep, "office", "id", 0, [1, 2, 3])
    partial = done.parent / "seed1"
    partial.mkdir()
    (partial / "config.yaml").write_text((done / "config.yaml").read_text())
    (partial / "log.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    pending = done.parent / "seed2"
    write_json(sweep / "sweep_summary.json", {"rows": ["id"], "runs": [
        {"label": "id", "folder": str(folder), "status": "not run"} for folder in (done, partial, pending)]})
    proc = subprocess.run([sys.executable, "-m", "spectran", "report", str(sweep), "--ours", "id"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    note = proc.stderr.strip().splitlines()
    assert note == [f"note: 2 run(s) not finished, missing from the report: {partial} (partial (2 epochs)), "
                    f"{pending} (pending)"]
    assert "**Not finished: 2 run(s), missing from the tables below:**" in proc.stdout


def test_report_names_only_the_unfinished_runs_its_filter_keeps(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_run(sweep, "office", "id", 0, [1, 2, 3])
    mlp = make_run(sweep, "office", "mlp", 0, [1, 2, 3])
    for done, seed in ((sweep / "office" / "sasrec" / "id" / "dim64" / "seed0", 1), (mlp, 1)):
        partial = done.parent / f"seed{seed}"
        partial.mkdir()
        config = (done / "config.yaml").read_text().replace("seed: 0", f"seed: {seed}")
        (partial / "config.yaml").write_text(config)
        (partial / "log.jsonl").write_text('{"epoch": 1}\n')
    out = tmp_path / "report.md"
    assert main(["report", str(sweep), "--ours", "id", "--filter", "label=id", "--out", str(out)]) == 0
    note = capsys.readouterr().err
    assert "1 run(s) not finished" in note and "id/dim64/seed1" in note and "mlp" not in note
    assert main(["report", str(sweep), "--ours", "id", "--out", str(out)]) == 0
    assert "2 run(s) not finished" in capsys.readouterr().err
