"""Who may call: API keys (``X-API-Key``) for the service endpoints, the admin token for the admin ones.

API keys follow Gorse's ``api_key``: a service credential per caller, configured as
``RECSYS_API_KEYS=name:key,...``. The caller is a shop's backend that has already
authenticated its user; the API trusts the ``user_id`` the key holder passes. Keys
are compared in constant time (every configured key is compared, no early exit) and
never logged: the key's *name* goes on the request's log line and metrics. A key that
passes is charged one token of its bucket (``rate_limit.py``). ``/metrics`` also takes the key as a
bearer token, the header a Prometheus scrape config can fill from a file.

The admin endpoints (A/B tests, the dashboard) take ``Authorization: Bearer
<RECSYS_ADMIN_TOKEN>`` (scripts) or the ``recsys_admin`` cookie that the login form
sets (a person in a browser): ``{expiry}.{HMAC(token, expiry)}``, HttpOnly,
SameSite=Strict, so changing the admin token logs every browser out. SameSite ignores
ports, so a page of another tool on the same host (Grafana, Airflow, MinIO...) counts
as same-site: a write (any method but GET/HEAD/OPTIONS) authenticated by the cookie must
also come from this API's own pages (``Sec-Fetch-Site: same-origin``, or without Fetch
Metadata an ``Origin`` equal to the API's), else 403. Bearer requests are not checked for
their origin; each bearer check is an admin attempt of the client's address (``admin_throttle.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recsys.api.errors import ApiError

API_KEY_HEADER = "X-API-Key"
ADMIN_COOKIE = "recsys_admin"
ADMIN_KEY_NAME = "admin"  # the key name of admin requests in logs and metrics
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # what a cookie may do from any page
_COOKIE_SHAPE = re.compile(r"([0-9]{1,16})\.([0-9a-f]{64})")  # expiry (ASCII digits only) . HMAC-SHA256 hex
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKey",
                        description="the caller's key from RECSYS_API_KEYS")
_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="RECSYS_ADMIN_TOKEN")
_metrics_bearer = HTTPBearer(auto_error=False, scheme_name="MetricsKey",
                             description="/metrics only: a key of RECSYS_API_KEYS as a bearer token (what "
                                         "Prometheus's `authorization` scrape option sends)")
_cookie = APIKeyCookie(name=ADMIN_COOKIE, auto_error=False, scheme_name="AdminCookie",
                       description="set by POST /admin/login")


class Unauthorized(ApiError):
    status_code = 401

    def __init__(self, message: str, scheme: str = "Bearer"):
        super().__init__(message)
        self.headers = {"WWW-Authenticate": scheme}


class Forbidden(ApiError):
    status_code = 403


class LoginRequired(ApiError):
    """A browser without the admin cookie: 303 to the login form, back here after it."""

    status_code = 303

    def __init__(self, path: str):
        super().__init__("log in first: /admin/login")
        self.headers = {"Location": f"/admin/login?next={quote(path, safe='/')}"}


class ApiKeys:
    """The configured keys; ``name_of`` compares a presented key with every one of them."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._pairs = [(name, key.encode()) for name, key in pairs]

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self._pairs))

    def name_of(self, presented: str | None) -> str | None:
        if not presented:
            return None
        given, found = presented.encode(), None
        for name, key in self._pairs:
            if hmac.compare_digest(given, key) and found is None:
                found = name
        return found


async def require_api_key(request: Request, key: Annotated[str | None, Security(_api_key)]) -> str:
    """The caller's key name (401 without a known key; 429 past its rate)."""
    name = request.app.state.api_keys.name_of(key)
    if name is None:
        detail = "unknown API key" if key else f"send your API key in the {API_KEY_HEADER} header"
        raise Unauthorized(detail, scheme=f'ApiKey header="{API_KEY_HEADER}"')
    request.state.api_key_name = name
    await request.app.state.rate_limiter.charge(name)
    return name


async def require_metrics_key(request: Request, key: Annotated[str | None, Security(_api_key)],
                              bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_metrics_bearer)]) -> str:
    """``/metrics``: an API key in ``X-API-Key``, or the same key as ``Authorization: Bearer`` (a Prometheus
    scrape config has no other way to send a secret from a file)."""
    return await require_api_key(request, key or (bearer.credentials if bearer is not None else None))


# --- admin ---------------------------------------------------------------------------------------
def _cookie_key(token: str) -> bytes:
    return hashlib.sha256(b"recsys-admin-cookie:" + token.encode()).digest()


def admin_cookie(token: str, lifetime_seconds: int, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + lifetime_seconds)
    mac = hmac.new(_cookie_key(token), str(expires).encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def valid_admin_cookie(value: str | None, token: str, now: float | None = None) -> bool:
    """Any value but the exact shape (ASCII digits, a dot, 64 hex digits: ``'²'.isdigit()`` is true, and
    ``int('²')`` raises) is simply not a login."""
    shape = _COOKIE_SHAPE.fullmatch(value or "")
    if shape is None or not token:
        return False
    expires, mac = shape.groups()
    if int(expires) < (now if now is not None else time.time()):
        return False
    expected = hmac.new(_cookie_key(token), expires.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode())


def check_same_origin(request: Request) -> None:
    """A cookie-authenticated write comes from this API's own pages (module docstring), else 403."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site == "same-origin":
            return
        why = f"Sec-Fetch-Site is {site!r}"
    else:
        origin, own = request.headers.get("origin"), f"{request.url.scheme}://{request.url.netloc}"
        if origin is not None and origin.lower() == own.lower():
            return
        why = f"Origin {origin[:200]!r} is not {own!r}" if origin is not None else "no Sec-Fetch-Site, no Origin"
    raise Forbidden(f"cross-site request refused: a write with the admin cookie must come from this API's own "
                    f"pages ({why}); scripts send 'Authorization: Bearer <RECSYS_ADMIN_TOKEN>'")


def check_admin_token(given: str, token: str) -> None:
    if not token:
        raise Forbidden("admin endpoints are disabled: RECSYS_ADMIN_TOKEN is not set on the server")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden("wrong admin token")


async def _admin(request: Request, credentials: HTTPAuthorizationCredentials | None, cookie: str | None,
                 *, page: bool) -> None:
    token = request.app.state.serving.settings.admin_token
    if credentials is not None:
        await request.app.state.admin_throttle.attempt(request)  # 429 past the address's attempts
        check_admin_token(credentials.credentials, token)
    elif not valid_admin_cookie(cookie, token):
        if page:
            raise LoginRequired(request.url.path)
        raise Unauthorized("admin endpoint: send 'Authorization: Bearer <RECSYS_ADMIN_TOKEN>' "
                           "(or log in at /admin/login)")
    elif request.method not in SAFE_METHODS:
        check_same_origin(request)
    request.state.api_key_name = ADMIN_KEY_NAME


async def require_admin(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                        cookie: Annotated[str | None, Security(_cookie)]) -> None:
    """Bearer admin token or the login cookie (401 without either, 403 with a wrong token, 429 past the client
    address's attempts: ``admin_throttle``)."""
    await _admin(request, credentials, cookie, page=False)


async def require_admin_page(request: Request,
                             credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                             cookie: Annotated[str | None, Security(_cookie)]) -> None:
    """As ``require_admin``, but a browser without credentials is sent to the login form."""
    await _admin(request, credentials, cookie, page=True)


API_KEY = [Depends(require_api_key)]
METRICS_KEY = [Depends(require_metrics_key)]
ADMIN = [Depends(require_admin)]
ADMIN_PAGE = [Depends(require_admin_page)]
