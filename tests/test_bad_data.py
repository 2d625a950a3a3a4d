"""Bad data is refused at read time with one line naming the file, the row and what was expected,
or read correctly; ids keep their exact string form end to end (issue classes 1, 5, 6, 7).

Most cases call the CLI's ``main`` in-process (fast); the ones that matter most for users run
the real ``spectran`` command in a subprocess.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectran.cli import main
from spectran.serve.recommend import Recommender

SEQS = "1 1 2 3 4\n2 2 3 4 5\n3 3 4 5 1\n4 4 5 1 2\n"
ITEMS = [{"item": i, "text": f"item number {i}"} for i in range(1, 6)]
IDS = ["0067", "0100", "A7", "0003", "12"]  # ids a table source may hold: leading zeros kept


def _canonical(root: Path, seqs: str = SEQS, items: list | None = None) -> Path:
    folder = root / "shop"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequences.txt").write_text(seqs)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (items or ITEMS)))
    return folder


def _rows(users: int = 6, length: int = 5) -> list[tuple[str, str, int]]:
    """(user, item, timestamp) rows: user u sees IDS rotated by u, one per time step."""
    return [(f"u{u}", IDS[(u + t) % len(IDS)], 100 * u + t) for u in range(users) for t in range(length)]


def _table(root: Path, rows: list | None = None, encoding: str = "utf-8", prefix: str = "") -> Path:
    folder = root / "tab"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user,item,timestamp"] + [f"{u},{i},{t}" for u, i, t in (rows or _rows())]
    (folder / "interactions.csv").write_bytes((prefix + "\n".join(lines) + "\n").encode(encoding))
    items = ["item,text"] + [f"{i},thing {i} café" for i in IDS]
    (folder / "items.csv").write_bytes(("\n".join(items) + "\n").encode(encoding))
    return folder


def _fails(capsys, args: list[str], *expected: str, out: Path | None = None) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for part in expected:
        assert part in err[0], (part, err[0])
    if out is not None:
        assert not out.exists(), "a run folder was created for a failed run"
    return err[0]


def _spectran(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spectran", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=180, check=False)


def _cache_entries() -> list[Path]:
    return sorted(Path(os.environ["SPECTRAN_CACHE"]).rglob("*.json"))


def _train_args(folder: Path | str, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", str(folder), "--encoder", "fake", "--epochs", "1", "--no-progress",
            "--set", "model.dim=8", "--set", "train.threads=1", "--out", str(out), *extra]


# -- class 1: silent corruption ------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", ""])
def test_a_non_finite_timestamp_is_refused(tmp_path, capsys, bad):
    rows = _rows()
    rows[7] = (rows[7][0], rows[7][1], bad)
    folder = _table(tmp_path, rows)
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'interactions.csv'}:9",
           f"expected a finite numeric timestamp, got {bad!r}")
    assert _cache_entries() == []


def test_parquet_null_ids_and_non_finite_timestamps_are_refused(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = _rows()
    folder = _table(tmp_path, rows)
    (folder / "interactions.csv").unlink()
    users = [u for u, _, _ in rows]
    users[4] = None
    columns = {"user": users, "item": [i for _, i, _ in rows], "timestamp": [float(t) for _, _, t in rows]}
    pq.write_table(pa.table(columns), folder / "interactions.parquet")
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'interactions.parquet'}:5",
           "user id is null (expected a non-empty id)")
    columns["user"][4] = "u0"
    columns["timestamp"][2] = float("inf")
    pq.write_table(pa.table(columns), folder / "interactions.parquet")
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'interactions.parquet'}:3",
           "expected a finite numeric timestamp, got inf")


def test_a_user_with_two_lines_is_refused(tmp_path, capsys):
    folder = _canonical(tmp_path, SEQS + "2 5 4 3\n")
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'sequences.txt'}:5",
           "user 2 already has a line (row 2); expected one line per user")


@pytest.mark.parametrize("item, expected", [(True, "got True"), (2.0, "got 2.0"), ("3", "got '3'")])
def test_an_item_id_that_is_not_an_integer_is_refused(tmp_path, capsys, item, expected):
    items = [dict(r) for r in ITEMS]
    items[2]["item"] = item
    folder = _canonical(tmp_path, items=items)
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'items.jsonl'}:3",
           "expected an object with an integer 'item'", expected)


def test_a_float64_matrix_beyond_float32_range_is_refused_at_read_time(tmp_path, capsys):
    folder = _canonical(tmp_path)
    E = np.ones((5, 4), dtype=np.float64)
    E[3, 2] = 1e39
    npy = tmp_path / "E.npy"
    np.save(npy, E)
    out = tmp_path / "run"
    _fails(capsys, _train_args(folder, out, "--method", "mlp", "--encoder", f"npy:{npy}"), str(npy),
           "row 3 (item 4), column 2", "float32 range", out=out)
    assert not list(Path(os.environ["SPECTRAN_CACHE"]).rglob("embeddings/*.npy"))


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A 1-epoch run on a CSV dataset whose ids have leading zeros (trained once per module)."""
    root = tmp_path_factory.mktemp("tablerun")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAN_CACHE", str(root / "cache"))
        folder = _table(root)
        out = root / "run"
        assert main(_train_args(folder, out)) == 0
    return out, root / "cache"


def test_ids_keep_their_exact_form_in_recommend_and_the_api(table_run, monkeypatch):
    run, cache = table_run
    monkeypatch.setenv("SPECTRAN_CACHE", str(cache))
    proc = _spectran("recommend", str(run), "--history", "0067 0003", "--k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    got = [r["item"] for r in json.loads(proc.stdout)]
    assert len(got) == 3 and set(got) <= set(IDS) - {"0067", "0003"}
    rec = Recommender.from_run(run)
    api = [i for i, _ in rec.recommend(["0067", "0003"], k=3)]
    assert api == got and all(isinstance(i, str) for i in api)
    bad = _spectran("recommend", str(run), "--history", "67")
    assert bad.returncode == 2 and "item '67' (position 1) is not in the catalog" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- class 5: parsing ----------------------------------------------------------------------------

def test_a_csv_with_a_byte_order_mark_is_read(tmp_path, capsys):
    folder = _table(tmp_path, prefix="\ufeff")
    assert main(["prepare", "--dataset", str(folder)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert (meta["users_after"], meta["num_items"]) == (6, 5)


def test_a_numeric_text_is_text(tmp_path, capsys):
    items = [dict(r) for r in ITEMS]
    items[1]["text"] = 1984
    folder = _canonical(tmp_path, items=items)
    assert main(["prepare", "--dataset", str(folder)]) == 0
    capsys.readouterr()
    items[1]["text"] = [1984]
    folder = _canonical(tmp_path / "b", items=items)
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'items.jsonl'}:2",
           "item 2 has no text (expected a non-empty 'text', got [1984])")


# -- class 6: one line instead of a traceback ---------------------------------------------------

def test_gzip_content_is_read_whatever_the_name(tmp_path, capsys):
    plain = _canonical(tmp_path / "plain")
    assert main(["prepare", "--dataset", str(plain)]) == 0
    expected = json.loads(capsys.readouterr().out)
    zipped = _canonical(tmp_path / "zipped")
    for name in ("sequences.txt", "items.jsonl"):
        (zipped / name).write_bytes(gzip.compress((plain / name).read_bytes()))
    assert main(["prepare", "--dataset", str(zipped)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {k: got[k] for k in ("users_after", "interactions_after", "num_items")} == \
        {k: expected[k] for k in ("users_after", "interactions_after", "num_items")}
    (zipped / "sequences.txt").rename(zipped / "sequences.txt.gz")  # named as what it is: read too
    assert main(["prepare", "--dataset", str(zipped)]) == 0
    assert json.loads(capsys.readouterr().out)["users_after"] == expected["users_after"]
    (zipped / "sequences.txt.gz").write_bytes(b"BZh91AY&SY" + b"\0" * 20)
    _fails(capsys, ["prepare", "--dataset", str(zipped)], f"{zipped / 'sequences.txt.gz'}: is a bzip2 file",
           "expected UTF-8 text, plain or gzip-compressed")


def test_latin1_text_is_refused_with_its_row(tmp_path):
    folder = _table(tmp_path, encoding="latin-1")
    proc = _spectran("prepare", "--dataset", str(folder))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: {folder / 'items.csv'}:2: byte 0xe9 is not UTF-8 (expected UTF-8 "
                                   "text; re-save the file as UTF-8)")


def test_a_csv_named_parquet_is_refused(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    folder = _table(tmp_path)
    (folder / "interactions.csv").rename(folder / "interactions.parquet")
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'interactions.parquet'}: not a Parquet file",
           "looks like text (CSV?)")
    (folder / "interactions.parquet").write_bytes(gzip.compress(b"user,item,timestamp\n"))
    _fails(capsys, ["prepare", "--dataset", str(folder)], "looks like gzip data")


@pytest.mark.parametrize("item", ["12345678901234567890123456", "-3", "0"])
def test_an_item_id_out_of_range_in_sequences_is_refused(tmp_path, capsys, item):
    folder = _canonical(tmp_path, SEQS + f"5 1 {item} 2\n")
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'sequences.txt'}:5",
           f"item id {int(item)} out of range 1..5")


def test_an_npz_named_npy_is_refused(tmp_path, capsys):
    folder = _canonical(tmp_path)
    npy = tmp_path / "E.npy"
    with open(npy, "wb") as fh:
        np.savez(fh, E=np.ones((5, 4), dtype=np.float32))
    out = tmp_path / "run"
    _fails(capsys, _train_args(folder, out, "--method", "mlp", "--encoder", f"npy:{npy}"),
           f"{npy}: is an .npz archive, not a .npy array", out=out)


def test_a_checkpoint_of_other_settings_is_refused(table_run, tmp_path, monkeypatch):
    run, cache = table_run
    monkeypatch.setenv("SPECTRAN_CACHE", str(cache))
    other = tmp_path / "other"
    shutil.copytree(run, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["model"]["dim"] = 16
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    for command in (["evaluate", str(other)], ["recommend", str(other), "--history", "0067"]):
        proc = _spectran(*command)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1
        assert f"{other / 'checkpoints' / 'best.pt'}: checkpoint does not fit the model" in proc.stderr
        assert re.search(r"is \((\d+, )*8,?\) in the checkpoint, \((\d+, )*16,?\) in the model", proc.stderr)


def test_export_onto_an_existing_file_is_refused(table_run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("safetensors")
    run, cache = table_run
    monkeypatch.setenv("SPECTRAN_CACHE", str(cache))
    target = tmp_path / "model.bin"
    target.write_bytes(b"keep me")
    _fails(capsys, ["export", str(run), "--out", str(target)], f"--out {target}: is a file")
    assert target.read_bytes() == b"keep me"
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    assert json.loads((tmp_path / "exp" / "model.json").read_text())["ids"] == IDS


# -- class 7: resources ------------------------------------------------------------------------

@pytest.mark.parametrize("huge", [10**12, 6])
def test_an_item_id_far_beyond_the_item_count_is_refused_without_allocating(tmp_path, capsys, huge):
    items = [dict(r) for r in ITEMS]
    items[3]["item"] = huge
    folder = _canonical(tmp_path, items=items)
    _fails(capsys, ["prepare", "--dataset", str(folder)], f"{folder / 'items.jsonl'}: item 4 has no row",
           f"the largest id is {huge} (expected ids 1..5 for 5 items")


def test_a_size_beyond_memory_is_one_line(tmp_path):
    out = tmp_path / "run"
    proc = _spectran(*_train_args("synthetic", out, "--set", "data.max_len=1000000000000"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: train: out of memory (a size setting such as model.dim, data.max_len "
                                   "or a batch size may be too large for this machine)")
    assert not out.exists()


def test_huge_table_ids_are_mapped_not_used_as_sizes(tmp_path, capsys):
    huge = {i: str(10**25 + k) for k, i in enumerate(IDS)}  # 26-digit ids
    folder = _table(tmp_path, [(u, huge[i], t) for u, i, t in _rows()])
    (folder / "items.csv").write_text("item,text\n" + "".join(f"{huge[i]},thing {i}\n" for i in IDS))
    assert main(["prepare", "--dataset", str(folder)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["num_items"] == 5
    items = json.loads((Path(meta["cache"]) / "items.json").read_text())
    assert items["item_ids"] == list(huge.values())


@pytest.mark.parametrize("item", [True, None, 1.5, ""])
def test_added_items_need_a_string_or_integer_id(tmp_path, item):
    from spectran.errors import DataError
    from spectran.serve.new_items import read_items_jsonl

    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps({"item": "0042", "text": "a new thing"}) + "\n"
                    + json.dumps({"item": item, "text": "another"}) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: expected an object with an 'item' id (a string "
                                                  f"or an integer), got {item!r}")):
        read_items_jsonl(path, ["text"], " ")
    path.write_text(json.dumps({"item": "0042", "text": "a new thing"}) + "\n")
    assert read_items_jsonl(path, ["text"], " ") == [("0042", "a new thing")]
