"""``spectran recommend`` (header, item text, original ids in and out), the unknown-id message after
add-items, ``export`` under the umask, and ``spectran score`` (batch top-K to CSV / Parquet)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat

import pytest

from spectran.cli import main
from spectran.data.synthetic import make_synthetic
from spectran.serve.catalog import Catalog
from spectran.serve.recommend import Recommender


@pytest.fixture(scope="module")
def asin_run(tmp_path_factory):
    """The synthetic data as a dataset folder whose items have original ids (ASIN-like), trained
    1 epoch; returns (run folder, cache folder)."""
    raw = make_synthetic()
    folder = tmp_path_factory.mktemp("asin-data") / "asin"
    folder.mkdir()
    (folder / "sequences.txt").write_text(
        "".join(f"{u + 1} {' '.join(map(str, s))}\n" for u, s in enumerate(raw.sequences)))
    (folder / "items.jsonl").write_text("".join(
        json.dumps({"item": i + 1, "orig_id": f"B{i + 1:09d}", "text": r["text"]}) + "\n"
        for i, r in enumerate(raw.items)))
    cache = tmp_path_factory.mktemp("asin-cache")
    out = tmp_path_factory.mktemp("asin-run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAN_CACHE", str(cache))
        assert main(["train", "--dataset", str(folder), "--encoder", "fake", "--method", "spectran", "--epochs", "1",
                     "--set", "train.threads=1", "--no-progress", "--out", str(out)]) == 0
    return out, cache


@pytest.fixture
def run(asin_run, monkeypatch):
    monkeypatch.setenv("SPECTRAN_CACHE", str(asin_run[1]))
    return asin_run[0]


def test_recommend_prints_a_header_texts_and_original_ids(run, capsys):
    rec = Recommender.from_run(run)
    assert main(["recommend", str(run), "--history", "3 B000000011 19", "--k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("top 4 of 120 items for a history of 3")
    assert lines[1].split() == ["rank", "id", "original_id", "score", "text"]
    want = rec.recommend([3, 11, 19], k=4)
    assert len(lines) == 6
    for line, (item, score) in zip(lines[2:], want, strict=True):
        _, item_id, original, value, text = line.split(maxsplit=4)
        full = rec.catalog.texts[rec.catalog.row_of[str(item)]]
        assert (int(item_id), original, float(value)) == (item, f"B{item:09d}", pytest.approx(score, abs=1e-4))
        assert text == (full if len(full) <= 80 else full[:79] + "…") and text
    assert main(["recommend", str(run), "--history", "B000000003 B000000011 B000000019", "--original-ids",
                 "--k", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [i for i, _ in want]
    assert [r["original_id"] for r in rows] == [f"B{i:09d}" for i, _ in want] and all(r["text"] for r in rows)
    assert main(["recommend", str(run), "--history", "3", "--original-ids"]) == 2  # 3 is an id, not an ASIN
    assert "'3' (position 1) is not in the catalog (expected one of 120 original ids" in capsys.readouterr().err


def test_an_unknown_id_after_add_items_names_what_is_known(run, tmp_path, capsys):
    before = tmp_path / "before"
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"item": 90001, "text": "red lamp"}) + "\n"
                   + json.dumps({"item": 90002, "text": "blue mug"}) + "\n")
    shutil.copytree(run, before)
    assert main(["add-items", str(before), "--items", str(new)]) == 0
    capsys.readouterr()
    assert main(["recommend", str(before), "--history", "3 555"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --history: item '555' (position 2) is not in the catalog (expected ids 1..120, "
                   "or one of 2 added ids such as '90001', or original ids such as 'B000000001')")
    assert main(["recommend", str(before), "--history", "90002 3", "--k", "2"]) == 0  # added ids are accepted
    assert "90002" not in capsys.readouterr().out.splitlines()[2]


def test_catalog_prefers_ids_over_original_ids():
    cat = Catalog(["1", "2"], ["2", "X"], ["a", "b"], int_ids=True, num_trained=2)
    assert cat.rows(["2"]) == [1] and cat.rows(["2"], kind="original") == [0] and cat.rows(["X"]) == [1]
    assert cat.find(True) is None and cat.search("B", 5) == [1]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_export_honours_the_umask_for_every_file(run, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    finally:
        os.umask(old)
    files = sorted((tmp_path / "exp").iterdir())
    assert [f.name for f in files] == ["item_embeddings.safetensors", "model.json", "model.safetensors"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name


def test_score_writes_every_users_top_k(run, tmp_path, capsys):
    rec = Recommender.from_run(run)
    out = tmp_path / "top.csv"
    assert main(["score", str(run), "--out", str(out), "--k", "3", "--batch-size", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert summary["users"] == 300 and summary["rows"] == len(rows) == 900
    assert list(rows[0]) == ["user", "rank", "id", "original_id", "score"]
    raw = make_synthetic()
    for user in (0, 77, 299):
        mine = [r for r in rows if r["user"] == str(user)]
        want = rec.recommend(raw.sequences[user].tolist(), k=3)
        assert [int(r["id"]) for r in mine] == [i for i, _ in want]
        assert [r["original_id"] for r in mine] == [f"B{i:09d}" for i, _ in want]
        assert [float(r["score"]) for r in mine] == pytest.approx([s for _, s in want], rel=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["top.csv"]  # no temporary file left


def test_score_a_file_of_histories_to_parquet(run, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    rec = Recommender.from_run(run)
    hist = tmp_path / "h.jsonl"
    hist.write_text(json.dumps({"user": "ann", "history": [1, "B000000002"]}) + "\n"
                    + json.dumps({"user": 7, "history": [40]}) + "\n")
    out = tmp_path / "top.parquet"
    assert main(["score", str(run), "--out", str(out), "--histories", str(hist), "--k", "5"]) == 0
    assert "user" in capsys.readouterr().err  # the progress bar
    table = pq.read_table(out).to_pydict()
    assert table["user"] == ["ann"] * 5 + ["7"] * 5 and table["rank"] == [1, 2, 3, 4, 5] * 2
    assert table["id"][:5] == [str(i) for i, _ in rec.recommend([1, 2], k=5)]
    hist.write_text(json.dumps({"user": "bob", "history": [1, 999]}) + "\n")
    assert main(["score", str(run), "--out", str(tmp_path / "bad.csv"), "--histories", str(hist)]) == 2
    err = capsys.readouterr().err
    assert f"{hist}:1: history: item 999 (position 2) is not in the catalog" in err
    assert not (tmp_path / "bad.csv").exists()
    assert main(["score", str(run), "--out", str(tmp_path / "x.txt")]) == 2
    assert "expected a .parquet or .csv" in capsys.readouterr().err
