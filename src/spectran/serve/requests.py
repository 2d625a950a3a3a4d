"""The server's request bodies, read strictly: every bad request is a :class:`RequestError` that
names the field at fault and carries a 4xx status (never a 500).

``POST /recommend``::

    {"history": [12, "B0000AG93P", ...],   # required: ids or original ids, oldest first
     "k": 10,                              # 1..limits.max_k
     "exclude_history": true,
     "candidates": null,                   # or a list of ids: only these may be recommended
     "id_kind": "auto"}                    # auto (id, then original id) | id | original

``POST /items`` (adding cold-start items)::

    {"items": [{"item": "NEW-1", "text": "..."}, ...]}   # the run's text fields per item
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spectran.errors import DataError
from spectran.serve.catalog import ID_KINDS, Catalog, UnknownItem
from spectran.serve.recommend import Query


@dataclass(frozen=True)
class Limits:
    """Bounds on one request (defaults of ``spectran serve``)."""

    max_body: int = 1 << 20  # bytes
    max_history: int = 1000  # items in a history (the model reads the most recent data.max_len)
    max_k: int = 1000
    max_candidates: int = 100_000
    max_new_items: int = 1000  # items in one POST /items
    max_search: int = 100  # results of GET /items?q=


class RequestError(Exception):
    """A bad request: HTTP ``status``, the ``field`` at fault (``body`` for the request as a whole)."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "field": self.field}


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is a 400 naming ``body``."""
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise RequestError(400, "body", "body: not UTF-8 text (expected a JSON object)") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "body", f"body: malformed JSON ({exc.msg} at line {exc.lineno} column "
                                        f"{exc.colno}; expected a JSON object)") from None
    if not isinstance(body, dict):
        raise RequestError(400, "body", f"body: expected a JSON object, got {_kind(body)}")
    return body


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _check_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            raise RequestError(422, name, f"{name}: unknown field (expected {', '.join(allowed)})")


def _int(body: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(422, name, f"{name}: expected an integer {lo}..{hi}, got {_kind(value)} {value!r}")
    if not lo <= value <= hi:
        raise RequestError(422, name, f"{name}: expected an integer {lo}..{hi}, got {value}")
    return value


def _id_list(body: dict[str, Any], name: str, limit: int, required: bool) -> list[Any] | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, list):
        raise RequestError(422, name, f"{name}: expected a list of item ids, got {_kind(value)}")
    if required and not value:
        raise RequestError(422, name, f"{name}: empty (expected at least one item id)")
    if len(value) > limit:
        raise RequestError(422, name, f"{name}: {len(value)} items (at most {limit})")
    return value


def parse_recommend(body: dict[str, Any], catalog: Catalog, limits: Limits) -> Query:
    _check_fields(body, ("history", "k", "exclude_history", "candidates", "id_kind"))
    kind = body.get("id_kind", "auto")
    if kind not in ID_KINDS:
        raise RequestError(422, "id_kind", f"id_kind: expected one of {', '.join(ID_KINDS)}, got {kind!r}")
    history = _id_list(body, "history", limits.max_history, required=True)
    k = _int(body, "k", 10, 1, limits.max_k)
    exclude = body.get("exclude_history", True)
    if not isinstance(exclude, bool):
        raise RequestError(422, "exclude_history", f"exclude_history: expected true or false, got {_kind(exclude)}")
    candidates = _id_list(body, "candidates", limits.max_candidates, required=False)
    try:
        rows = catalog.rows(history, "history", kind)
        cand = None if candidates is None else catalog.rows(candidates, "candidates", kind)
    except UnknownItem as exc:
        raise RequestError(422, exc.field, str(exc)) from None
    return Query(rows, k, exclude, cand)


def parse_new_items(body: dict[str, Any], fields: list[str], separator: str,
                    limits: Limits) -> list[tuple[str, str]]:
    """(id, text) of each item of a POST /items body (the checks of ``spectran add-items``)."""
    from spectran.serve.new_items import items_from_records

    _check_fields(body, ("items",))
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise RequestError(422, "items", f"items: expected a non-empty list of objects, got {_kind(items)}")
    if len(items) > limits.max_new_items:
        raise RequestError(422, "items", f"items: {len(items)} items (at most {limits.max_new_items} per request)")
    try:
        return items_from_records(enumerate(items), fields, separator, "items")
    except DataError as exc:
        raise RequestError(422, "items", str(exc)) from None
