"""The HTTP JSON service of ``spectran serve``: a Starlette application over one loaded run.

Endpoints (docs/serving.md has curl examples):

- ``GET /`` the page: search items, build a history, see the top-K (``page.html``)
- ``GET /health`` liveness, catalog size, queue length
- ``GET /meta`` the run: settings, metrics, catalog size, batching and limits
- ``GET /items?q=TEXT&limit=N`` items whose text holds every word of TEXT
- ``GET /items/{id}`` one item by id or original id
- ``POST /recommend`` top-K for a history (:mod:`spectran.serve.requests`), batched with other
  requests into one forward pass (:mod:`spectran.serve.batching`), the answer written from
  per-item JSON fragments (:mod:`spectran.serve.answer`) and sent ahead of Starlette's middleware
  and router (:mod:`spectran.serve.asgi`)
- ``POST /items`` add cold-start items from text: refused (403) unless the server was started
  with a token, then only with ``Authorization: Bearer TOKEN`` (401 otherwise)

Every item in an answer carries ``id``, ``original_id``, ``text`` (and ``score`` in a ranking).
Every error is JSON ``{"error": message, "field": name}`` with a 4xx status naming the field
(``body`` for the request as a whole); an unexpected failure is a 500 of the same form, and the
server keeps serving.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from spectran.runfolder import RunFolder
from spectran.serve.answer import AnswerEncoder
from spectran.serve.asgi import JSONEndpoint, Shortcut, read_body
from spectran.serve.batching import Batcher
from spectran.serve.recommend import Query, Recommender
from spectran.serve.requests import Limits, RequestError, parse_json, parse_new_items, parse_recommend

log = logging.getLogger("spectran.serve")
PAGE = Path(__file__).with_name("page.html")


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.as_dict(), status_code=exc.status)


def create_app(rec: Recommender, run_dir: str | Path, batcher_max: int = 64, max_wait: float = 0.002,
               token: str | None = None, limits: Limits | None = None) -> Shortcut:
    """The application; the model runs on one thread behind a :class:`Batcher`, and ``POST /recommend``
    skips Starlette's middleware and router (:mod:`spectran.serve.asgi`)."""
    limits = limits or Limits()
    catalog = rec.catalog
    folder = RunFolder(run_dir)
    answers = AnswerEncoder(catalog)

    def run_batch(queries: Sequence[Query]) -> list[bytes]:
        """On the model thread: the answers' JSON bytes, top-K and history, in one forward pass."""
        return [answers.recommend(top, q.history) for q, top in zip(queries, rec.top_rows(queries), strict=True)]

    batcher: Batcher[Query, bytes] = Batcher(run_batch, batcher_max, max_wait)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()  # after uvicorn has drained the in-flight requests

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "items": len(catalog), "queued": batcher.queued})

    async def meta(request: Request) -> Response:
        metrics = folder.read_metrics() if folder.finished else None
        return JSONResponse({
            "run": str(run_dir), "settings": rec.settings.to_dict() if rec.settings else None,
            "metrics": metrics,
            "catalog": {"items": len(catalog), "trained": catalog.num_trained,
                        "added": len(catalog) - catalog.num_trained},
            "batching": {"max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait * 1000}
            | batcher.stats.as_dict(),
            "limits": asdict(limits), "writes": token is not None})

    async def item(request: Request) -> Response:
        key = request.path_params["item_id"]
        row = catalog.find(key)
        if row is None:
            raise RequestError(404, "id", f"id: item {key!r} is not in the catalog ({catalog.expected()})")
        return JSONResponse(catalog.describe(row))

    async def search(request: Request) -> Response:
        q = request.query_params.get("q", "")
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= limits.max_search:
            raise RequestError(422, "limit", f"limit: expected an integer 1..{limits.max_search}, got {raw!r}")
        return JSONResponse({"items": [catalog.describe(r) for r in catalog.search(q, int(raw))]})

    async def recommend(body: bytes) -> bytes:
        return await batcher.submit(parse_recommend(parse_json(body), catalog, limits))

    recommend_endpoint = JSONEndpoint(recommend, limits.max_body)

    async def add(request: Request) -> Response:
        if token is None:
            raise RequestError(403, "authorization", "adding items is off: start the server with a token "
                                                     "(--token-file or $SPECTRAN_SERVE_TOKEN) to allow it")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise RequestError(401, "authorization", "authorization: expected 'Bearer <token>' with the "
                                                     "server's token")
        from spectran.errors import DataError
        from spectran.serve.add_items import add_rows

        raw = await read_body(request.scope, request.receive, limits.max_body)
        if raw is None:
            raise RequestError(400, "body", "body: the client went away before sending all of it")
        body = parse_json(raw)
        rows = parse_new_items(body, list(rec.settings.text.fields), rec.settings.text.separator, limits)
        try:
            added = await batcher.exclusive(lambda: add_rows(rec, run_dir, rows, "items"))
        except DataError as exc:
            raise RequestError(422, "items", str(exc)) from None
        return JSONResponse({"added": [catalog.describe(catalog.row_of[label]) for label in added]}, status_code=201)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def request_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return _error(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        field = "path" if exc.status_code == 404 else "method" if exc.status_code == 405 else "request"
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}", "field": field},
                            status_code=exc.status_code, headers=exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}", "field": None}, status_code=500)

    routes = [Route("/", page), Route("/health", health), Route("/meta", meta),
              Route("/items", search, methods=["GET"]), Route("/items", add, methods=["POST"]),
              Route("/items/{item_id:path}", item), Route("/recommend", recommend_endpoint, methods=["POST"])]
    handlers = {RequestError: request_error, HTTPException: http_error, Exception: internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.batcher = batcher
    return Shortcut(app, "POST", "/recommend", recommend_endpoint)
