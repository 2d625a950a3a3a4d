"""``spectran data import-amazon``: a canonical dataset folder from an Amazon review dump.

Reads the files as the Amazon review data site publishes them: 2014 ratings CSV
(``user,item,rating,timestamp``, no header) or 2018 reviews JSON lines (``reviewerID``, ``asin``,
``overall``, ``unixReviewTime``), and metadata with one Python-literal (2014) or JSON (2018)
object per line; gzip is detected from the file's first bytes. The filters run in this order:
duplicate reviews of one item by one user keep the earliest; ``min_rating``; items without
metadata text are dropped; iterative k-core (users and items alternately until both have at
least k interactions). Each user's items are ordered by timestamp, ties by ASIN, so the result
does not depend on the order of the file. Users are numbered in order of reviewer id, items in
order of first appearance in those sequences. ``stats.json`` records the counts after each step.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spectran.data.builders import clean, write_canonical
from spectran.data.fetch import is_complete, swap_into_place
from spectran.errors import ConfigError, DataError

Review = tuple[str, str, float, int, int]  # user, item, rating, timestamp, file position
FIELD_ALIASES = {"categories": ("categories", "category"), "category": ("category", "categories")}


@dataclass(frozen=True)
class ImportSettings:
    ratings: str
    meta: str
    min_rating: float | None = None
    core: int = 5
    text_fields: tuple[str, ...] = ("title", "brand", "categories")

    def validate(self) -> None:
        if self.core < 1:
            raise ConfigError(f"--core: expected an integer >= 1, got {self.core}")
        if not self.text_fields:
            raise ConfigError("--text: expected at least one metadata field")
        for path in (self.ratings, self.meta):
            if not Path(path).is_file():
                raise DataError(f"{path}: file not found")


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield n, line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_reviews(path: Path) -> list[Review]:
    """Every review line of a 2014 ratings CSV or a 2018 JSON-lines file."""
    reviews: list[Review] = []
    for n, line in _numbered_lines(path):
        if line.lstrip().startswith("{"):
            try:
                r = json.loads(line)
                reviews.append((str(r["reviewerID"]), str(r["asin"]), float(r["overall"]),
                                int(r["unixReviewTime"]), len(reviews)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}:{n}: expected a JSON review with reviewerID, asin, overall, "
                                f"unixReviewTime ({type(exc).__name__}: {exc})") from None
            continue
        row = next(csv.reader([line]))
        if n == 1 and len(row) == 4 and row[2].strip().lower() == "rating":
            continue  # a header line, as some re-published copies have
        try:
            user, item, rating, ts = row
            reviews.append((user, item, float(rating), int(float(ts)), len(reviews)))
        except ValueError:
            raise DataError(f"{path}:{n}: expected 'user,item,rating,timestamp' with a numeric rating and "
                            f"timestamp, got {line.strip()[:80]!r}") from None
    if not reviews:
        raise DataError(f"{path}: no reviews")
    return reviews


def _field(record: dict[str, Any], name: str) -> str:
    for key in FIELD_ALIASES.get(name, (name,)):
        value = record.get(key)
        if isinstance(value, list):
            flat = [clean(v) for v in _flatten(value)]
            return ", ".join(dict.fromkeys(v for v in flat if v))
        if value is not None:
            return clean(value)
    return ""


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def read_meta(path: Path, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """ASIN -> {"text", "title", ...}: the named fields, joined by "; " into the text."""
    out: dict[str, dict[str, str]] = {}
    for n, line in _numbered_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            try:
                record = ast.literal_eval(line.strip())
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise DataError(f"{path}:{n}: expected a JSON or Python-literal object") from None
        if not isinstance(record, dict) or "asin" not in record:
            raise DataError(f"{path}:{n}: expected an object with an 'asin' field")
        values = {f: _field(record, f) for f in fields}
        out[str(record["asin"])] = {"text": "; ".join(v for v in values.values() if v), **values}
    return out


def _counts(reviews: list[Review], step: str) -> dict[str, Any]:
    return {"step": step, "users": len({r[0] for r in reviews}), "items": len({r[1] for r in reviews}),
            "interactions": len(reviews)}


def k_core(reviews: list[Review], k: int) -> tuple[list[Review], int]:
    """Drop users and items with fewer than k interactions until none is left; return (kept, rounds)."""
    rounds = 0
    while True:
        users, items = Counter(r[0] for r in reviews), Counter(r[1] for r in reviews)
        kept = [r for r in reviews if users[r[0]] >= k and items[r[1]] >= k]
        rounds += 1
        if len(kept) == len(reviews):
            return kept, rounds
        reviews = kept


def filter_reviews(reviews: list[Review], meta: dict[str, dict[str, str]], s: ImportSettings
                   ) -> tuple[list[Review], list[dict[str, Any]]]:
    steps = [_counts(reviews, "read")]
    first: dict[tuple[str, str], Review] = {}
    for r in sorted(reviews, key=lambda r: (r[3], r[4])):  # earliest review of each (user, item)
        first.setdefault((r[0], r[1]), r)
    reviews = sorted(first.values(), key=lambda r: r[4])
    steps.append(_counts(reviews, "duplicates removed (earliest review kept)"))
    if s.min_rating is not None:
        reviews = [r for r in reviews if r[2] >= s.min_rating]
        steps.append(_counts(reviews, f"rating >= {s.min_rating:g}"))
    reviews = [r for r in reviews if meta.get(r[1], {}).get("text")]
    steps.append(_counts(reviews, "items with metadata text"))
    reviews, rounds = k_core(reviews, s.core)
    steps.append(_counts(reviews, f"{s.core}-core ({rounds} rounds)"))
    if not reviews:
        trail = "; ".join(f"{st['step']}: {st['interactions']}" for st in steps)
        raise DataError(f"{s.ratings}: no interactions left after the filters ({trail})")
    return reviews, steps


def import_amazon(s: ImportSettings, out: str | Path, force: bool = False) -> dict[str, Any]:
    """Build the dataset folder ``out`` (atomically) and return its stats."""
    s.validate()
    target = Path(out)
    if target.exists() and not force:
        state = "a dataset" if is_complete(target) else "something"
        raise DataError(f"{target}: already holds {state}; pass --force to replace it")
    meta = read_meta(Path(s.meta), s.text_fields)
    reviews, steps = filter_reviews(read_reviews(Path(s.ratings)), meta, s)
    by_user: dict[str, list[Review]] = {}
    for r in reviews:
        by_user.setdefault(r[0], []).append(r)
    users = sorted(by_user)
    number: dict[str, int] = {}
    seqs = []
    for u in users:
        seq = [r[1] for r in sorted(by_user[u], key=lambda r: (r[3], r[1]))]  # time, ties by ASIN
        for asin in seq:
            number.setdefault(asin, len(number) + 1)
        seqs.append([number[a] for a in seq])
    items = {i: {"orig_id": a, "text": meta[a]["text"], "text_source": " + ".join(s.text_fields),
                 **{f: meta[a][f] for f in s.text_fields}} for a, i in number.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        stats = write_canonical(work, seqs, items, users, f"imported from {Path(s.ratings).name} and "
                                f"{Path(s.meta).name} by spectran data import-amazon",
                                extra={"filters": steps, "min_rating": s.min_rating, "core": s.core})
        swap_into_place(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return stats
