"""Who may call: API keys (``X-API-Key``) for the service endpoints, the admin token for the admin ones.

API keys follow Gorse's ``api_key``: a service credential per caller, configured as
``RECSYS_API_KEYS=name:key,...``. The caller is a shop's backend that has already
authenticated its user; the API trusts the ``user_id`` the key holder passes. Keys
are compared in constant time (every configured key is compared, no early exit) and
never logged: the key's *name* goes on the request's log line and metrics. A key that
passes is charged one token of its bucket (``rate_limit.py``).

The admin endpoints (A/B tests, the dashboard) take ``Authorization: Bearer
<RECSYS_ADMIN_TOKEN>`` (scripts) or the ``recsys_admin`` cookie that the login form
sets (a person in a browser): ``{expiry}.{HMAC(token, expiry)}``, HttpOnly,
SameSite=Strict, so changing the admin token logs every browser out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recsys.api.errors import ApiError

API_KEY_HEADER = "X-API-Key"
ADMIN_COOKIE = "recsys_admin"
ADMIN_KEY_NAME = "admin"  # the key name of admin requests in logs and metrics
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKey",
                        description="the caller's key from RECSYS_API_KEYS")
_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="RECSYS_ADMIN_TOKEN")
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


# --- admin ---------------------------------------------------------------------------------------
def _cookie_key(token: str) -> bytes:
    return hashlib.sha256(b"recsys-admin-cookie:" + token.encode()).digest()


def admin_cookie(token: str, lifetime_seconds: int, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + lifetime_seconds)
    mac = hmac.new(_cookie_key(token), str(expires).encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def valid_admin_cookie(value: str | None, token: str, now: float | None = None) -> bool:
    if not value or not token or value.count(".") != 1:
        return False
    expires, mac = value.split(".")
    if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        return False
    expected = hmac.new(_cookie_key(token), expires.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode())


def check_admin_token(given: str, token: str) -> None:
    if not token:
        raise Forbidden("admin endpoints are disabled: RECSYS_ADMIN_TOKEN is not set on the server")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden("wrong admin token")


def _admin(request: Request, credentials: HTTPAuthorizationCredentials | None, cookie: str | None,
           *, page: bool) -> None:
    token = request.app.state.serving.settings.admin_token
    if credentials is not None:
        check_admin_token(credentials.credentials, token)
    elif not valid_admin_cookie(cookie, token):
        if page:
            raise LoginRequired(request.url.path)
        raise Unauthorized("admin endpoint: send 'Authorization: Bearer <RECSYS_ADMIN_TOKEN>' "
                           "(or log in at /admin/login)")
    request.state.api_key_name = ADMIN_KEY_NAME


async def require_admin(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                        cookie: Annotated[str | None, Security(_cookie)]) -> None:
    """Bearer admin token or the login cookie (401 without either, 403 with a wrong token)."""
    _admin(request, credentials, cookie, page=False)


async def require_admin_page(request: Request,
                             credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                             cookie: Annotated[str | None, Security(_cookie)]) -> None:
    """As ``require_admin``, but a browser without credentials is sent to the login form."""
    _admin(request, credentials, cookie, page=True)


API_KEY = [Depends(require_api_key)]
ADMIN = [Depends(require_admin)]
ADMIN_PAGE = [Depends(require_admin_page)]
