"""The API's error answers: its own typed errors (``ApiError``) and the handlers that turn them and the
serving core's (``recsys.serving.errors``) into JSON answers.

Every error answer has the same shape: ``{"detail": str, "field": str | None,
"errors": [...], "request_id": str}``; a validation error names the field
(``num_items: Input should be less than or equal to 100``). A body that is not
UTF-8 is a 422 too (``field: "body"``), like any other body that is not valid JSON.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from recsys.api.schemas import ErrorBody
from recsys.serving.errors import ServingError

log = logging.getLogger(__name__)


class OrjsonResponse(Response):
    """JSON rendered by orjson (FastAPI's ORJSONResponse is deprecated in 0.13x)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class ApiError(ServingError):
    """An error of the HTTP layer itself (credentials, rate limits), with answer ``headers`` of its own."""

    headers: dict[str, str] | None = None


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def field_of(loc) -> str:
    """``("query", "num_items")`` -> ``num_items``; ``("body", "price")`` -> ``price``;
    ``("body", "events", 3, "timestamp")`` -> ``events[3].timestamp``."""
    field = ""
    for p in loc:
        if isinstance(p, int):
            field += f"[{p}]"
        elif p not in ("query", "body", "path", "header"):
            field += f".{p}" if field else str(p)
    return field or "body"


def error_body(request: Request, detail: str, field: str | None, errors: list | None = None) -> dict:
    return {"detail": detail, "field": field, "errors": errors or [], "request_id": request_id_of(request)}


async def _validation_handler(request: Request, exc: RequestValidationError) -> Response:
    errors = [{"field": field_of(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    field = errors[0]["field"] if errors else None
    return OrjsonResponse(error_body(request, detail, field, errors), status_code=422)


async def _error_handler(request: Request, exc: ServingError) -> Response:
    errors = [{"field": exc.field, "message": exc.message}] if exc.field else []
    headers = {"Retry-After": "1"} if exc.status_code == 503 else exc.headers if isinstance(exc, ApiError) else None
    return OrjsonResponse(error_body(request, exc.message, exc.field, errors), status_code=exc.status_code,
                          headers=headers)


def unreadable_body_message(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return (f"body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at position {cause.start}): "
                "JSON bodies must be UTF-8 encoded")
    return f"body could not be read as JSON: {cause}"


async def _http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's and FastAPI's own errors (unknown path, 405, a body cut off at the limit) in the same
    shape. FastAPI answers a body it cannot decode (not UTF-8) with an undocumented 400: that becomes
    the documented 422 of every body route, with a message."""
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        detail = unreadable_body_message(exc.__cause__)
        return OrjsonResponse(error_body(request, detail, "body", [{"field": "body", "message": detail}]),
                              status_code=422)
    return OrjsonResponse(error_body(request, str(exc.detail), None), status_code=exc.status_code,
                          headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ServingError, _error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)


def error_responses(*codes: int) -> dict:
    """OpenAPI ``responses=`` entries for the error codes a route may answer."""
    json = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    # the content is explicit: on an HTML route FastAPI would document the model as text/html only
    return {code: {"model": ErrorBody, "content": json} for code in codes}
