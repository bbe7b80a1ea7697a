"""The request body limit (``RECSYS_MAX_BODY_BYTES``), enforced while the body streams in.

A ``Content-Length`` over the limit is answered 413 before a byte of the body is
read; a body without one (chunked) is counted as it arrives and cut off with a 413
as soon as it passes the limit, so no request makes a worker hold more than the
limit in memory. Pure ASGI, inside ``RequestContextMiddleware`` (the answer carries
the request id and is counted).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from recsys.api.middleware import send_error


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body; FastAPI lets an HTTPException through its body parsing."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=body_limit_message(limit))


def body_limit_message(limit: int) -> str:
    return f"request body larger than {limit} bytes (RECSYS_MAX_BODY_BYTES)"


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope.get("headers", []))
        if length is not None and length > self.max_bytes:
            await send_error(send, 413, body_limit_message(self.max_bytes), scope["state"]["request_id"])
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
