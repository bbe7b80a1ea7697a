"""Pure ASGI middleware: a request id on every answer, one log line, latency and error metrics.

The id is the client's ``X-Request-ID`` when it is a sane token, else a new
server-signed one (``recsys.abtest.request_ids``); it is put in
``request.state.request_id`` and in the ``X-Request-ID`` answer header (a route
may replace it before answering: ``/recommendations`` always answers with a signed
id). An exception that escapes a route becomes a 500 JSON answer here, so even
that answer carries the id. The log line and ``recsys_requests_total`` name the
caller's API key by its name (``request.state.api_key_name``), never the key.
The log line's path is the one the client sent, still percent-encoded (``raw_path``),
with any other byte escaped: a ``%0a`` in a path cannot forge a log line.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import quote_from_bytes

import orjson
from starlette.datastructures import MutableHeaders

from recsys.abtest.request_ids import RequestIdSigner
from recsys.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_PATH_CHARS = "/!$&'()*+,;=:@-._~%"  # with the letters and digits: what a path may hold, percent signs kept as sent


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


def logged_path(scope: dict) -> str:
    """The path as sent (``raw_path``, without its query), every byte but an RFC 3986 path character escaped
    ``%XX``: no control character, space or non-ASCII byte reaches the log line."""
    raw = scope.get("raw_path")
    if raw is None:  # a server that does not give it: the decoded path, escaped all the same
        raw = scope.get("path", "").encode("utf-8", "surrogateescape")
    return quote_from_bytes(raw.split(b"?", 1)[0], safe=_PATH_CHARS)


def endpoint_label(scope: dict) -> str:
    """The route template (``/recommendations``), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app, metrics: ServingMetrics, signer: RequestIdSigner):
        self.app = app
        self.metrics = metrics
        self.signer = signer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        client_id = incoming_request_id(scope.get("headers", []))
        state["client_request_id"] = client_id
        state["request_id"] = client_id or self.signer.new()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message):
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = state["request_id"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error, request %s", state["request_id"])
            status = 500
            if not response_started:
                await send_error(send, 500, "internal error", state["request_id"])
        finally:
            seconds, endpoint = time.perf_counter() - started, endpoint_label(scope)
            key_name = state.get("api_key_name") or "-"
            self.metrics.observe_request(endpoint, seconds, status, key_name)
            log.info("%s %s %d %.1fms key=%s request_id=%s client_request_id=%s", scope.get("method"),
                     logged_path(scope), status, 1000 * seconds, key_name, state["request_id"], client_id or "-")


async def send_error(send, status: int, detail: str, request_id: str) -> None:
    """An error answer in the API's error shape, sent by a middleware (no route ran)."""
    body = orjson.dumps({"detail": detail, "field": None, "errors": [], "request_id": request_id})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (REQUEST_ID_HEADER.encode(), request_id.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
