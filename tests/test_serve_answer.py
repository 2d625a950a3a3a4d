"""The ``POST /recommend`` answer written from per-item fragments (byte for byte what
``JSONResponse`` wrote from dicts), and the plain ASGI endpoint that serves it ahead of Starlette."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from spectran.serve.answer import AnswerEncoder, dumps
from spectran.serve.asgi import JSONEndpoint, Shortcut
from spectran.serve.catalog import Catalog
from spectran.serve.requests import RequestError

TEXTS = ["Stapler", 'Quote " and \\ backslash', "Ünïcödé — ✓ 🙂", "", "tab\tnew\nline \x01 ctrl", "</script>"]


def catalog(int_ids: bool) -> Catalog:
    n = len(TEXTS)
    labels = [str(i) for i in range(1, n + 1)] if int_ids else [f"0{i}7" for i in range(n)]
    records = [{"orig_id": f"B00{i}X", "title": t} for i, t in enumerate(TEXTS)]
    return Catalog.from_records(labels, records, int_ids=int_ids)


def old_answer(cat: Catalog, top: list[tuple[int, float]], history: list[int]) -> bytes:
    """The answer as the server built it before fragments: dicts encoded by JSONResponse."""
    from starlette.responses import JSONResponse

    items = [cat.describe(row, score) | {"rank": rank} for rank, (row, score) in enumerate(top, start=1)]
    return bytes(JSONResponse({"items": items, "history": [cat.describe(r) for r in history]}).body)


@pytest.mark.parametrize("int_ids", [True, False])
def test_fragments_give_the_bytes_of_the_dict_answer(int_ids):
    pytest.importorskip("starlette")
    cat = catalog(int_ids)
    rng = random.Random(0)
    enc = AnswerEncoder(cat)
    scores = [0.0, -0.0, 1.0, -3.25, 1e-7, 123456789.123, 9.73, 1 / 3, 5e-324, 1e300]
    for _ in range(50):
        top = [(rng.randrange(len(cat)), rng.choice(scores) * rng.choice([1, -1])) for _ in range(rng.randrange(0, 8))]
        history = [rng.randrange(len(cat)) for _ in range(rng.randrange(1, 6))]
        got = enc.recommend(top, history)
        assert got == old_answer(cat, top, history)
        assert json.loads(got)["items"] == [cat.describe(r, s) | {"rank": k} for k, (r, s) in enumerate(top, 1)]


def test_fragments_follow_items_added_to_the_catalog():
    cat = catalog(True)
    enc = AnswerEncoder(cat)
    enc.recommend([(0, 1.0)], [1])
    cat.extend(["NEW-1", "99"], ["an added item", "another"])
    assert enc.recommend([(len(cat) - 2, 2.0)], [len(cat) - 1]) == dumps(
        {"items": [cat.describe(len(cat) - 2, 2.0) | {"rank": 1}], "history": [cat.describe(len(cat) - 1)]})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_score_json_cannot_hold_is_an_error_as_with_json_dumps(bad):
    enc = AnswerEncoder(catalog(True))
    with pytest.raises(ValueError, match="not JSON compliant"):
        enc.recommend([(0, 1.0), (1, bad)], [2])


def call(app, method: str, path: str, body: bytes, headers=None, chunks=None, disconnect=False):
    """One request through an ASGI app: (status, headers, body) of what it sent, None if nothing."""
    scope = {"type": "http", "method": method, "path": path,
             "headers": headers if headers is not None else [(b"content-length", b"%d" % len(body))]}
    chunks = chunks or [body]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    if disconnect:
        messages = messages[:1] + [{"type": "http.disconnect"}]
        messages[0]["more_body"] = True
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    if not sent:
        return None
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_the_endpoint_answers_as_the_starlette_handlers_did():
    async def handle(body: bytes) -> bytes:
        if body == b"bad":
            raise RequestError(422, "history", "history: bad")
        if body == b"boom":
            raise KeyError("x")
        return b'{"echo":' + body + b"}"

    ep = JSONEndpoint(handle, limit=10)
    status, headers, body = call(ep, "POST", "/r", b"[1,2]")
    assert (status, body) == (200, b'{"echo":[1,2]}')
    assert headers == {b"content-type": b"application/json", b"content-length": b"14"}
    assert call(ep, "POST", "/r", b"bad")[::2] == (422, b'{"error":"history: bad","field":"history"}')
    status, _, body = call(ep, "POST", "/r", b"boom")  # logged, answered 500, nothing raised
    assert status == 500 and json.loads(body) == {"error": "internal error: KeyError", "field": None}
    status, _, body = call(ep, "POST", "/r", b"x" * 11)
    assert status == 413 and json.loads(body)["field"] == "body"
    status, _, body = call(ep, "POST", "/r", b"", headers=[], chunks=[b"x" * 6, b"x" * 6])  # no Content-Length
    assert status == 413 and json.loads(body)["error"] == "body: more than 10 bytes"
    assert call(ep, "POST", "/r", b"", headers=[], chunks=[b"[1,", b"2]"])[2] == b'{"echo":[1,2]}'
    assert call(ep, "POST", "/r", b"[1]", disconnect=True) is None  # the client went away: no answer


def test_the_shortcut_takes_one_method_and_path_only():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["type"], scope.get("method"), scope.get("path")))

    async def endpoint(scope, receive, send):
        seen.append(("endpoint", scope["method"], scope["path"]))

    sc = Shortcut(app, "POST", "/recommend", endpoint)
    for scope in ({"type": "http", "method": "POST", "path": "/recommend"},
                  {"type": "http", "method": "GET", "path": "/recommend"},
                  {"type": "http", "method": "POST", "path": "/recommend/"},
                  {"type": "lifespan"}):
        asyncio.run(sc(scope, None, None))
    assert seen == [("endpoint", "POST", "/recommend"), ("http", "GET", "/recommend"),
                    ("http", "POST", "/recommend/"), ("lifespan", None, None)]
