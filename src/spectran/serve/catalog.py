"""The recommendable items of a loaded run: ids, original ids, texts, and the lookups between them.

Every item (table row) has
- an *id*: the project's id as the user knows it, in its exact form (the integers of
  ``sequences.txt``, or the original ids of a table source; added items keep the id they were
  added with);
- an *original id*: the catalog's own id (an ASIN for the Amazon sets) from the item record's
  ``orig_id``, else the id itself;
- a *text*: the record's ``title`` or ``text`` (what a person reads), empty when there is none.

A query names an item by id or by original id (``kind="auto"``: the id first, then the original
id), or strictly by one of them (``kind="id"``, ``kind="original"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spectran.errors import DataError

ID_KINDS = ("auto", "id", "original")


class UnknownItem(DataError):
    """An item that is not in the catalog; ``field`` names where it came from (``history``)."""

    def __init__(self, message: str, field: str, position: int):
        super().__init__(message)
        self.field, self.position = field, position


@dataclass
class Catalog:
    labels: list[str]  # id of row i, as a string
    originals: list[str]  # original id of row i
    texts: list[str]  # display text of row i
    int_ids: bool = False  # ids are the integers of sequences.txt: returned as ints
    num_trained: int = 0  # rows before the added items
    row_of: dict[str, int] = field(init=False)
    row_of_original: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if not len(self.labels) == len(self.originals) == len(self.texts):
            raise DataError(f"catalog: {len(self.labels)} ids, {len(self.originals)} original ids and "
                            f"{len(self.texts)} texts (expected one of each per item)")
        self.row_of = {label: i for i, label in enumerate(self.labels)}
        self.row_of_original = {o: i for i, o in enumerate(self.originals)}

    @classmethod
    def from_records(cls, labels: list[str], records: Sequence[dict[str, Any]], int_ids: bool) -> Catalog:
        originals = [str(r.get("orig_id") or label) for label, r in zip(labels, records, strict=True)]
        texts = [str(r.get("title") or r.get("text") or "").strip() for r in records]
        return cls(labels, originals, texts, int_ids, len(labels))

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, labels: list[str], texts: list[str]) -> None:
        """Append added items (their original id is their id)."""
        start = len(self.labels)
        self.labels += labels
        self.originals += labels
        self.texts += texts
        for i, label in enumerate(labels, start=start):
            self.row_of[label] = i
            self.row_of_original.setdefault(label, i)

    def item_id(self, row: int) -> int | str:
        """The id of a row as the user knows it: an int for the integer ids of sequences.txt (and
        added ids in that same form), else the exact string."""
        label = self.labels[row]
        return int(label) if self.int_ids and label.isdigit() and str(int(label)) == label else label

    def describe(self, row: int, score: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.item_id(row), "original_id": self.originals[row], "text": self.texts[row]}
        if score is not None:
            out["score"] = score
        return out

    def find(self, item: object, kind: str = "auto") -> int | None:
        """Row of an id / original id, None when unknown (or not an id at all)."""
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            return None
        key = str(item)
        if kind in ("auto", "id") and key in self.row_of:
            return self.row_of[key]
        if kind in ("auto", "original"):
            return self.row_of_original.get(key)
        return None

    def rows(self, items: Sequence[object], field: str = "history", kind: str = "auto") -> list[int]:
        """Ids -> 0-based rows; an unknown one is an :class:`UnknownItem` naming it and ``field``."""
        out = []
        for pos, item in enumerate(items, start=1):
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise UnknownItem(f"{field}: item {item!r} (position {pos}) is a {type(item).__name__} "
                                  "(expected an id: a string, or an integer of sequences.txt)", field, pos)
            row = self.find(item, kind)
            if row is None:
                raise UnknownItem(f"{field}: item {item!r} (position {pos}) is not in the catalog "
                                  f"({self.expected(kind)})", field, pos)
            out.append(row)
        return out

    def expected(self, kind: str = "auto") -> str:
        """What a valid id looks like, from the catalog itself (never a misleading range)."""
        n, added = self.num_trained, len(self.labels) - self.num_trained
        if self.int_ids:
            ids = f"ids 1..{n}" if n else "no trained ids"
        else:
            ids = f"{n} trained ids such as {self.labels[0]!r}" if n else "no trained ids"
        if added:
            ids += f", or one of {added} added ids such as {self.labels[n]!r}"
        originals = f"original ids such as {self.originals[0]!r}" if n and self.originals[0] != self.labels[0] else ""
        if kind == "original":
            return f"expected one of {len(self.labels)} original ids" + (f": {originals}" if originals else "")
        if kind == "auto" and originals:
            return f"expected {ids}, or {originals}"
        return f"expected {ids}"

    def search(self, query: str, limit: int) -> list[int]:
        """Rows whose text (or id, or original id) holds every word of ``query``, case-insensitive;
        a row whose id or original id equals the query comes first."""
        words = query.lower().split()
        if not words:
            return []
        exact = self.find(query.strip())
        out = [exact] if exact is not None else []
        for row, text in enumerate(self.texts):
            if len(out) >= limit:
                break
            hay = f"{text} {self.labels[row]} {self.originals[row]}".lower()
            if row != exact and all(w in hay for w in words):
                out.append(row)
        return out[:limit]
