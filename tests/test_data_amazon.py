"""spectran data import-amazon on small hand-made dumps in the 2014 and 2018 formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from spectran.cli import main
from spectran.data.amazon import k_core
from spectran.data.source import read_dataset


def _gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def _meta_2014(path: Path, asins: list[str], skip: tuple[str, ...] = ()) -> Path:
    rows = [repr({"asin": a, "title": f"Title {a}", "brand": "Acme",
                  "categories": [["Beauty", "Skin"], ["Beauty"]]}) for a in asins if a not in skip]
    return _gz(path, rows)


def _import(tmp_path: Path, ratings: Path, meta: Path, *extra: str) -> Path:
    out = tmp_path / "out" / "set"
    assert main(["data", "import-amazon", "--ratings", str(ratings), "--meta", str(meta), "--out", str(out),
                 "--core", "2", *extra]) == 0
    return out


def _sequences(folder: Path) -> list[list[str]]:
    return [line.split()[1:] for line in (folder / "sequences.txt").read_text().splitlines()]


def test_2014_csv_and_python_literal_meta(tmp_path):
    # u1..u3 rate A, B, C; u4 rates only D once (dropped by the 2-core, and so is D)
    rows = ["user,item,rating,timestamp", "u1,A,5.0,100", "u1,B,4.0,200", "u1,C,5.0,300",
            "u2,A,5.0,100", "u2,C,3.0,150", "u2,B,5.0,400",
            "u3,B,5.0,10", "u3,C,4.0,20", "u4,D,5.0,5"]
    out = _import(tmp_path, _gz(tmp_path / "r.csv.gz", rows), _meta_2014(tmp_path / "m.json.gz", list("ABCD")))
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    ids = {r["orig_id"]: r["item"] for r in items}
    assert set(ids) == {"A", "B", "C"}
    assert items[0]["text"] == f"Title {items[0]['orig_id']}; Acme; Beauty, Skin"
    assert _sequences(out) == [[str(ids[a]) for a in "ABC"], [str(ids[a]) for a in "ACB"],
                               [str(ids[a]) for a in "BC"]]
    stats = json.loads((out / "stats.json").read_text())
    steps = {s["step"].split(" (")[0]: s["interactions"] for s in stats["filters"]}
    assert steps["read"] == 9 and steps["2-core"] == 8
    assert read_dataset(out).num_items == 3  # the reader accepts what import wrote


def test_2018_json_lines_min_rating_missing_meta_duplicates_and_ties(tmp_path):
    def review(u, a, r, t):
        return json.dumps({"reviewerID": u, "asin": a, "overall": r, "unixReviewTime": t, "reviewText": "..."})
    rows = [review("u1", "Z", 5, 50), review("u1", "Y", 5, 50),   # equal timestamps: ASIN order Y, Z
            review("u1", "X", 5, 60), review("u1", "Y", 4, 70),   # a duplicate review of Y: earliest kept
            review("u2", "Z", 5, 10), review("u2", "Y", 5, 20), review("u2", "X", 2, 5),  # X below 4: dropped
            review("u2", "W", 5, 30),                                # W has no metadata: dropped
            review("u3", "X", 5, 1), review("u3", "Z", 4, 2)]
    meta = [json.dumps({"asin": a, "title": f"T{a}", "category": ["Toys", "Games"]}) for a in "XYZ"]
    out = _import(tmp_path, _gz(tmp_path / "r.json.gz", rows), _gz(tmp_path / "m.json.gz", meta),
                  "--min-rating", "4", "--text", "title,categories")
    ids = {json.loads(x)["orig_id"]: json.loads(x)["item"] for x in (out / "items.jsonl").read_text().splitlines()}
    assert _sequences(out) == [[str(ids[a]) for a in "YZX"], [str(ids[a]) for a in "ZY"],
                               [str(ids[a]) for a in "XZ"]]
    steps = [(s["step"], s["interactions"]) for s in json.loads((out / "stats.json").read_text())["filters"]]
    assert steps[:4] == [("read", 10), ("duplicates removed (earliest review kept)", 9), ("rating >= 4", 8),
                         ("items with metadata text", 7)]
    assert steps[4][1] == 7


def test_shuffled_file_gives_the_same_folder(tmp_path):
    rows = ["u1,A,5,1", "u1,B,5,1", "u2,B,5,2", "u2,A,5,2", "u1,C,5,3", "u2,C,5,3"]
    meta = _meta_2014(tmp_path / "m.gz", list("ABC"))
    a = _import(tmp_path / "a", _gz(tmp_path / "a.gz", rows), meta)
    b = _import(tmp_path / "b", _gz(tmp_path / "b.gz", rows[::-1]), meta)
    for name in ("sequences.txt", "items.jsonl", "users.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_k_core_iterates_until_stable():
    # 2-core: dropping u3 (one review) leaves item C with one review, which then drops u2's C too
    reviews = [("u1", "A", 5.0, 1, 0), ("u1", "B", 5.0, 2, 1), ("u2", "A", 5.0, 1, 2), ("u2", "B", 5.0, 2, 3),
               ("u2", "C", 5.0, 3, 4), ("u3", "D", 5.0, 1, 5)]
    kept, rounds = k_core(reviews, 2)
    assert {(r[0], r[1]) for r in kept} == {("u1", "A"), ("u1", "B"), ("u2", "A"), ("u2", "B")}
    assert rounds == 2
    assert k_core(reviews, 3) == ([], 2)


@pytest.mark.parametrize("ratings, message", [
    (["u1,A,five,1"], "r.gz:1: expected 'user,item,rating,timestamp'"),
    (['{"reviewerID": "u1", "asin": "A"}'], "r.gz:1: expected a JSON review"),
    (["u1,A,5,1"], "no interactions left after the filters"),
])
def test_bad_input_is_one_line(tmp_path, capsys, ratings, message):
    out = tmp_path / "out"
    rc = main(["data", "import-amazon", "--ratings", str(_gz(tmp_path / "r.gz", ratings)),
               "--meta", str(_meta_2014(tmp_path / "m.gz", ["A"])), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.gz", "r.gz"]
