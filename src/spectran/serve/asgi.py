"""Plain ASGI pieces of the server: reading a bounded request body, and the endpoint of
``POST /recommend`` served ahead of Starlette's middleware and router.

``POST /recommend`` is the request a server answers many of; what Starlette does for every request
(exception middlewares wrapping ``send``, the route table matched in order, a ``Request`` and a
``Response`` object, headers parsed into a mapping) costs about as much event-loop time as the
rest of the request. :class:`Shortcut` hands that one method and path straight to a
:class:`JSONEndpoint` and everything else (other paths and methods, lifespan) to the Starlette
application, where the same endpoint is also routed (so ``GET /recommend`` is still Starlette's
405). The endpoint answers as Starlette's handlers would: the handler's JSON bytes with 200; a
:class:`~spectran.serve.requests.RequestError` as ``{"error", "field"}`` with its 4xx status; any
other exception logged and answered ``500 {"error": "internal error: TYPE", "field": null}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from spectran.serve.answer import dumps
from spectran.serve.requests import RequestError

log = logging.getLogger("spectran.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, at most ``limit`` bytes (else a 413 naming ``body``); None when the client
    went away before sending all of it."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit() or int(value) > limit:
                raise RequestError(413, "body", f"body: {value.decode('latin-1')} bytes (at most {limit})")
            break
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body", f"body: more than {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class JSONEndpoint:
    """An ASGI endpoint: ``handle(body) -> JSON bytes`` with the request body read under ``limit``."""

    def __init__(self, handle: Callable[[bytes], Awaitable[bytes]], limit: int):
        self.handle, self.limit = handle, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(scope, receive, self.limit)
            if body is None:
                return  # nobody to answer
            status, payload = 200, await self.handle(body)
        except RequestError as exc:
            status, payload = exc.status, dumps(exc.as_dict())
        except Exception as exc:  # answered 500; the server keeps serving
            log.exception("internal error on %s %s", scope["method"], scope["path"], exc_info=exc)
            status, payload = 500, dumps({"error": f"internal error: {type(exc).__name__}", "field": None})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"%d" % len(payload)), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


class Shortcut:
    """``app`` (the Starlette application), except that ``method path`` goes straight to ``endpoint``."""

    def __init__(self, app: ASGIApp, method: str, path: str, endpoint: ASGIApp):
        self.app, self.method, self.path, self.endpoint = app, method, path, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == self.method:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
