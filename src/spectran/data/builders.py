"""Build the canonical dataset folder from a set's downloaded source files.

Each builder reads the files named in :mod:`spectran.data.catalog` from ``src`` and writes
``sequences.txt``, ``items.jsonl``, ``users.tsv`` (where the source has user ids) and
``stats.json`` into ``out``; the formats are those :mod:`spectran.data.source` reads
(docs/data.md describes what each set's columns mean).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from spectran.errors import DataError

Items = dict[int, dict[str, Any]]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def _lines(path: Path) -> list[str]:
    return [line for line in _text(path).split("\n") if line.strip()]


def _json(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc})") from None


def _rows(path: Path, delimiter: str = ",", header: bool = True) -> list[Any]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter) if header else csv.reader(fh, delimiter=delimiter))


def _int_sequences(path: Path) -> list[tuple[str, list[int]]]:
    """``user item item ...`` lines (S3Rec/P5 format)."""
    out = []
    for n, line in enumerate(_lines(path), 1):
        user, *items = line.split()
        if not all(t.isdigit() for t in items):
            raise DataError(f"{path}:{n}: expected integer item ids")
        out.append((user, [int(t) for t in items]))
    return out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def clean(value: Any) -> str:
    """One line of text: tabs and newlines to spaces, runs of spaces collapsed."""
    return "" if value is None else " ".join(str(value).split())


def _keywords(path: Path) -> dict[str, str]:
    """IDGenRec ``item_generative_indexing``: ``<original id> word word ...`` per line."""
    out = {}
    for line in _lines(path):
        orig, _, words = line.partition(" ")
        out[orig] = clean(words)
    return out


def write_canonical(out: Path, seqs: list[list[int]], items: Items, users: list[str] | None,
                    notes: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the folder's files and return its statistics (also written to ``stats.json``,
    followed by the keys of ``extra``)."""
    n_items = len(items)
    _require(sorted(items) == list(range(1, n_items + 1)), f"{out.name}: item ids are not 1..{n_items}")
    used = {i for s in seqs for i in s}
    _require(used <= items.keys(), f"{out.name}: a sequence uses an item without an items.jsonl row")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sequences.txt", "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(f"{u} {' '.join(map(str, s))}\n" for u, s in enumerate(seqs, 1))
    with open(out / "items.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for i in range(1, n_items + 1):
            fh.write(json.dumps({"item": i, **items[i]}, ensure_ascii=False) + "\n")
    if users is not None:
        with open(out / "users.tsv", "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(f"{u}\t{orig}\n" for u, orig in enumerate(users, 1))
    lengths = [len(s) for s in seqs]
    total = sum(lengths)
    texts = [items[i].get("text", "") for i in range(1, n_items + 1)]
    stats: dict[str, Any] = {
        "users": len(seqs), "items": n_items, "items_in_sequences": len(used), "interactions": total,
        "avg_seq_len": round(total / len(seqs), 3), "min_seq_len": min(lengths), "max_seq_len": max(lengths),
        "density": round(total / (len(seqs) * n_items), 6),
        "items_with_text": sum(1 for t in texts if t),
        "avg_text_words": round(sum(len(t.split()) for t in texts) / n_items, 2),
        "repeated_consecutive": sum(1 for s in seqs for a, b in pairwise(s) if a == b),
        "notes": notes,
        **(extra or {}),
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    return stats


def _keyword_items(id2item: dict[str, str], kw: dict[str, str]) -> Items:
    return {int(k): {"orig_id": a, "text": kw.get(a, ""), "text_source": "keywords", "title": "",
                     "keywords": kw.get(a, "")} for k, a in id2item.items()}


def build_beauty(src: Path, out: Path) -> dict[str, Any]:
    s3 = _int_sequences(src / "Beauty.txt")
    named = [line.split() for line in _lines(src / "user_sequence.txt")]
    _require(len(s3) == len(named), f"{src / 'user_sequence.txt'}: {len(named)} lines, Beauty.txt has {len(s3)}")
    asin_of: dict[int, str] = {}
    users = []
    for n, ((_, ids), row) in enumerate(zip(s3, named, strict=True), 1):
        _require(len(ids) == len(row) - 1, f"{src / 'user_sequence.txt'}:{n}: length differs from Beauty.txt")
        users.append(row[0])
        for i, asin in zip(ids, row[1:], strict=True):
            _require(asin_of.setdefault(i, asin) == asin, f"{src / 'user_sequence.txt'}:{n}: item {i} maps "
                     f"to two ASINs")
    kw = _keywords(src / "item_generative_indexing_phase_0.txt")
    product_of = _json(src / "item_id_to_int.json")
    title_of = {int(r["global_product_id"]): clean(r["name"]) for r in _rows(src / "products_lookup.csv")}
    items: Items = {}
    for i, asin in asin_of.items():
        title = title_of.get(product_of.get(asin), "")
        items[i] = {"orig_id": asin, "text": title or kw.get(asin, ""),
                    "text_source": "title" if title else "keywords", "title": title, "keywords": kw.get(asin, "")}
    untitled = sum(1 for v in items.values() if not v["title"])
    return write_canonical(out, [ids for _, ids in s3], items, users,
                           f"ids identical to S3Rec/P5 Beauty.txt; titles for all but {untitled} items")


def _signature(seqs: list[list[int]]) -> Counter:
    """Per-user ordered item-frequency tuples: equal for two labellings of the same data."""
    freq = Counter(i for s in seqs for i in s)
    return Counter(tuple(freq[i] for i in s) for s in seqs)


def build_toys(src: Path, out: Path) -> dict[str, Any]:
    rd = _int_sequences(src / "sequential.txt")
    maps = _json(src / "datamaps.json")
    _require([int(u) for u, _ in rd] == list(range(1, len(rd) + 1)),
             f"{src / 'sequential.txt'}: users are not 1..{len(rd)} in order")
    items = _keyword_items(maps["id2item"], _keywords(src / "item_generative_indexing_phase_0.txt"))
    seqs = [ids for _, ids in rd]
    same = _signature(seqs) == _signature([ids for _, ids in _int_sequences(src / "Toys_and_Games.txt")])
    return write_canonical(out, seqs, items, [maps["id2user"][u] for u, _ in rd],
                           f"P5 ids (RDRec copy); equal to S3Rec Toys_and_Games.txt up to relabelling: {same}; "
                           "text = IDGenRec title/category keywords, no full titles")


def build_sports(src: Path, out: Path) -> dict[str, Any]:
    s3 = _int_sequences(src / "Sports_and_Outdoors.txt")
    maps = _json(src / "datamaps.json")
    items = _keyword_items(maps["id2item"], _keywords(src / "item_generative_indexing_phase_0.txt"))
    return write_canonical(out, [ids for _, ids in s3], items, [maps["id2user"][u] for u, _ in s3],
                           "ids identical to S3Rec/P5 Sports_and_Outdoors.txt; text = IDGenRec keywords, "
                           "no full titles")


def build_yelp(src: Path, out: Path) -> dict[str, Any]:
    s3 = _int_sequences(src / "Yelp.txt")
    maps = _json(src / "datamaps.json")
    letter = _json(src / "Yelp.item.json")
    kw = _keywords(src / "item_generative_indexing_phase_0.txt")
    items: Items = {}
    agree = 0
    for k, business in maps["id2item"].items():
        record = letter[str(int(k) - 1)]  # LETTER numbers items from 0
        name, cats = clean(record.get("title")), clean(record.get("description"))
        words = set(f"{name} {cats}".lower().replace(",", " ").split())
        agree += any(w in words for w in kw.get(business, "").split())
        items[int(k)] = {"orig_id": business, "text": f"{name}; {cats}" if cats else name,
                         "text_source": "name; categories", "title": name, "categories": cats,
                         "keywords": kw.get(business, "")}
    return write_canonical(out, [ids for _, ids in s3], items, [maps["id2user"][u] for u, _ in s3],
                           "ids identical to S3Rec/P5 Yelp.txt; LETTER item k -> P5 item k+1; "
                           f"IDGenRec keyword agreement {agree}/{len(items)} items")


def build_office(src: Path, out: Path) -> dict[str, Any]:
    asin_of = {int(r[1]): r[0] for r in _rows(src / "Office.item2index", "\t", header=False)}
    text_rows = _rows(src / "Office.text", "\t", header=False)
    _require(text_rows[:1] == [["id", "text"]], f"{src / 'Office.text'}:1: expected the header 'id<TAB>text'")
    text = {r[0]: clean(r[1]) for r in text_rows[1:]}
    events: dict[int, list[tuple[int, int, int, int]]] = {}
    for rank, split in enumerate(("train", "dev", "test")):
        for pos, r in enumerate(_rows(src / f"{split}.csv", "\t")):
            events.setdefault(int(r["user_id"]), []).append((rank, int(r["time"]), pos, int(r["item_id"])))
    uids = sorted(events)
    _require(uids == list(range(1, len(uids) + 1)), f"{src / 'train.csv'}: user ids are not 1..{len(uids)}")
    seqs = []
    for u in uids:
        ev = sorted(events[u])  # train rows by time (file order on ties), then dev, then test
        ranks = [e[0] for e in ev]
        _require(ranks.count(1) == 1 and ranks.count(2) == 1, f"{src}: user {u} needs one dev and one test row")
        seqs.append([e[3] for e in ev])
    items = {i: {"orig_id": a, "text": text.get(a, ""), "text_source": "title + category + brand"}
             for i, a in asin_of.items()}
    return write_canonical(out, seqs, items, None, "ReChorus-format leave-one-out split (dev = 2nd last, "
                           "test = last); user ids are the source's ints (no reviewer ids given)")


def _chain(windows: list[list[int]]) -> list[int] | None:
    """Join sliding windows at the longest suffix/prefix overlap; None if one does not overlap."""
    seq = list(windows[0])
    for w in windows[1:]:
        k = next((k for k in range(min(len(seq), len(w)), 0, -1) if seq[-k:] == w[:k]), None)
        if k is None:
            return None
        seq += w[k:]
    return seq


def build_clothing(src: Path, out: Path) -> dict[str, Any]:
    names = {int(k): clean(v) for k, v in _json(src / "id2name4Rec.json").items()}
    rows = [(int(r["user_id"]), split == "test", int(r["timestamp"]), json.loads(r["item_ids"]))
            for split in ("train", "test") for r in _rows(src / f"{split}.csv")]
    windows: dict[int, list[list[int]]] = {}
    for user, _, _, ids in sorted(rows, key=lambda r: r[:3]):  # train before test, then by time
        windows.setdefault(user, []).append(ids)
    seqs, users = [], []
    for user in sorted(windows):
        seq = _chain(windows[user])
        if seq is not None:
            seqs.append(seq)
            users.append(str(user))
    new: dict[int, int] = {}
    items: Items = {}
    for s in seqs:  # relabel 1..N in order of first appearance
        for i in s:
            if i not in new:
                new[i] = len(new) + 1
                items[new[i]] = {"orig_id": str(i), "text": names.get(i, ""), "text_source": "title",
                                 "title": names.get(i, "")}
    dropped = len(windows) - len(seqs)
    return write_canonical(out, [[new[i] for i in s] for s in seqs], items, users,
                           f"rebuilt from MSL/BIGRec sliding windows (<=10 history + target); {dropped} user(s) "
                           "dropped (windows did not chain); users/windows only in the absent valid split are "
                           "missing; orig_id = MSL item int (no ASIN)")


def _atomic_table(path: Path) -> list[dict[str, str]]:
    """RecBole atomic file: a tab-separated header ``name:type`` line, then rows."""
    lines = _lines(path)
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]


def build_ml100k(src: Path, out: Path) -> dict[str, Any]:
    events: dict[int, list[tuple[float, int, int]]] = {}
    for pos, r in enumerate(_atomic_table(src / "ml-100k.inter")):
        events.setdefault(int(r["user_id:token"]), []).append(
            (float(r["timestamp:float"]), pos, int(r["item_id:token"])))
    items: Items = {}
    for r in _atomic_table(src / "ml-100k.item"):
        title, year = clean(r.get("movie_title:token_seq")), clean(r.get("release_year:token"))
        genres = clean(r.get("class:token_seq"))
        text = title + (f" ({year})" if year else "") + (f"; {genres}" if genres else "")
        item = int(r["item_id:token"])
        items[item] = {"orig_id": str(item), "text": text,
                       "text_source": "title (year); genres", "title": title, "year": year, "genres": genres}
    uids = sorted(events)
    _require(uids == list(range(1, len(uids) + 1)), f"{src / 'ml-100k.inter'}: user ids are not 1..{len(uids)}")
    seqs = [[e[2] for e in sorted(events[u])] for u in uids]  # by time, file order on ties
    return write_canonical(out, seqs, items, [str(u) for u in uids],
                           "MovieLens-100K from the recbole 1.2.1 wheel; all ratings kept as interactions; "
                           "ties in timestamp keep file order")


BUILDERS: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "beauty": build_beauty, "toys": build_toys, "sports": build_sports, "yelp": build_yelp,
    "office": build_office, "clothing": build_clothing, "ml-100k": build_ml100k,
}
