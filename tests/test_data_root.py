"""Where datasets are found: a path is that path; a name is looked up in --data-dir, then
$SPECTRAN_DATA, then the per-user data folder; the tests never see the developer's data root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spectran.cli import main
from spectran.data.prepare import locate, user_data_root
from spectran.errors import DataError
from spectran.settings import DataSettings


def _staged(root: Path, name: str = "shop") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "sequences.txt").write_text("1 1 2 3\n2 2 3 1\n3 3 1 2\n")
    (folder / "items.jsonl").write_text("".join(json.dumps({"item": i, "text": f"t{i}"}) + "\n"
                                                for i in (1, 2, 3)))
    return folder


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real ``spectran`` command in a subprocess (it inherits the test's environment)."""
    return subprocess.run([sys.executable, "-m", "spectran", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120, check=False)


def test_tests_see_an_empty_data_root():
    assert "SPECTRAN_DATA" not in os.environ
    assert not user_data_root().exists()


def test_a_path_is_that_path_whatever_the_data_root_holds(tmp_path, monkeypatch):
    root = tmp_path / "root"
    _staged(root, "nope")  # a staged dataset of the same name must not be used
    monkeypatch.setenv("SPECTRAN_DATA", str(root))
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}: dataset folder not found"):
        locate(DataSettings(dataset=str(tmp_path / "nope")))
    mine = _staged(tmp_path / "elsewhere", "nope")
    assert locate(DataSettings(dataset=str(mine))) == mine.resolve()


def test_resolution_order_data_dir_then_env_then_user_folder(tmp_path, monkeypatch):
    flag, env, user = (_staged(tmp_path / n, "shop") for n in ("flag", "env", "xdg/spectran/data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert locate(DataSettings(dataset="shop")) == user.resolve()
    monkeypatch.setenv("SPECTRAN_DATA", str(tmp_path / "env"))
    assert locate(DataSettings(dataset="shop")) == env.resolve()
    assert locate(DataSettings(dataset="shop", data_dir=str(tmp_path / "flag"))) == flag.resolve()


def test_a_missing_root_and_a_missing_name_say_where_they_looked(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"office: dataset folder not found \(data root .*spectran/data "
                                        r"from the per-user data folder does not exist"):
        locate(DataSettings(dataset="office"))
    _staged(tmp_path / "env", "shop")
    monkeypatch.setenv("SPECTRAN_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError, match=r"office: dataset folder not found .*from \$SPECTRAN_DATA holds: shop"
                                        r"; `spectran data fetch office` downloads it\)"):
        locate(DataSettings(dataset="office"))
    with pytest.raises(DataError, match=r"mine: dataset folder not found .*`spectran data list` shows the sets"):
        locate(DataSettings(dataset="mine"))


@pytest.mark.parametrize("name, subprocess_run", [("file.csv", True), ("interactions.parquet", False)])
def test_dataset_given_as_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys, name, subprocess_run):
    (tmp_path / name).write_text("user,item,timestamp\n1,1,1\n")
    out = tmp_path / "run"
    if subprocess_run:
        proc = _cli("train", "--dataset", name, "--out", str(out), cwd=tmp_path)
        code, err = proc.returncode, proc.stderr
    else:
        monkeypatch.chdir(tmp_path)
        code, err = main(["train", "--dataset", name, "--out", str(out)]), capsys.readouterr().err
    assert code == 2, err
    assert err.strip() == (f"error: {name}: --dataset takes a dataset folder, not a file (expected a "
                           "folder holding sequences.txt + items.jsonl, or interactions.csv|parquet "
                           "+ items.csv|parquet)")
    assert not out.exists()


def test_a_bare_name_in_the_working_directory_is_pointed_at(tmp_path, monkeypatch, capsys):
    _staged(tmp_path, "mine")
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "--dataset", "mine"]) == 2
    assert "./mine is the folder in the working directory" in capsys.readouterr().err
    ok = _cli("prepare", "--dataset", "./mine", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["users_after"] == 3


def test_staged_office_prepares_by_name(real_data: Path):
    """Needs the real staged data ($SPECTRAN_DATA); reads and filters office, trains nothing."""
    stats = json.loads((real_data / "office" / "stats.json").read_text())
    proc = _cli("prepare", "--dataset", "office")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    assert (meta["users_after"], meta["num_items"], meta["interactions_after"]) == \
        (stats["users"], stats["items"], stats["interactions"])
