"""The body of a ``POST /recommend`` answer, assembled from bytes.

An answer is ``{"items": [item, ...], "history": [item, ...]}`` where each item is the catalog's
description of a row (``id``, ``original_id``, ``text``; in ``items`` also ``score`` and
``rank``), written as Starlette's :class:`~starlette.responses.JSONResponse` writes it
(``json.dumps(..., ensure_ascii=False, allow_nan=False, separators=(",", ":"))`` in UTF-8).

Rather than building a dict per item and encoding the whole answer, :class:`AnswerEncoder` keeps
each row's ``{"id":...,"original_id":...,"text":...`` as JSON text (encoded the first time the row
is answered) and joins those fragments with the scores and ranks: the same bytes, at a fraction of
the cost (``tests/test_serve_answer.py`` checks the equality). A score that JSON cannot hold (NaN,
infinity) is a ``ValueError``, as it is for ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from spectran.serve.catalog import Catalog


def dumps(content: object) -> bytes:
    """``content`` as JSONResponse encodes it (the reference of this module)."""
    return _dumps(content).encode()


def _dumps(content: object) -> str:
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


class AnswerEncoder:
    """Answers of one catalog as bytes; rows are encoded once, on first use (a catalog only grows,
    so a row's fragment never changes)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._fragments: dict[int, str] = {}

    def fragment(self, row: int) -> str:
        """``{"id":ID,"original_id":"...","text":"..."`` of ``row``, without the closing brace."""
        out = self._fragments.get(row)
        if out is None:
            c = self.catalog
            out = (f'{{"id":{_dumps(c.item_id(row))},"original_id":{_dumps(c.originals[row])},'
                   f'"text":{_dumps(c.texts[row])}')
            self._fragments[row] = out
        return out

    def items(self, top: Sequence[tuple[int, float]]) -> str:
        """``[{...,"score":S,"rank":R}, ...]`` of a ranking of (row, score), best first."""
        for _, score in top:
            if not math.isfinite(score):
                raise ValueError(f"Out of range float values are not JSON compliant: {score!r}")
        fragment = self.fragment
        return "[" + ",".join([f'{fragment(row)},"score":{float.__repr__(score)},"rank":{rank}}}'
                               for rank, (row, score) in enumerate(top, start=1)]) + "]"

    def history(self, rows: Sequence[int]) -> str:
        """``[{"id":...,"original_id":...,"text":...}, ...]`` of the history's rows."""
        fragment = self.fragment
        return "[" + ",".join([fragment(row) + "}" for row in rows]) + "]"

    def recommend(self, top: Sequence[tuple[int, float]], history: Sequence[int]) -> bytes:
        """The whole answer in UTF-8: ``{"items":[...],"history":[...]}``."""
        return f'{{"items":{self.items(top)},"history":{self.history(history)}}}'.encode()
