"""Pure ASGI middleware: a request id on every answer, latency and error metrics.

The id is the client's ``X-Request-ID`` when it is a sane token, else a new
one; it is put in ``request.state.request_id`` and in the ``X-Request-ID``
answer header. An exception that escapes a route becomes a 500 JSON answer
here, so even that answer carries the id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

import orjson
from starlette.datastructures import MutableHeaders

from recsys.api.metrics import ServingMetrics

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


def endpoint_label(scope: dict) -> str:
    """The route template (``/recommendations``), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope.get("headers", [])) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message):
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error, request %s", request_id)
            status = 500
            if not response_started:
                await _send_500(send, request_id)
        finally:
            self.metrics.observe_request(endpoint_label(scope), time.perf_counter() - started, status)


async def _send_500(send, request_id: str) -> None:
    body = orjson.dumps({"detail": "internal error", "field": None, "errors": [], "request_id": request_id})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (REQUEST_ID_HEADER.encode(), request_id.encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
