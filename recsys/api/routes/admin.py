"""The admin login form: a person opens the dashboard in a browser without a bearer header.

``POST /admin/login`` with the admin token sets the ``recsys_admin`` cookie (signed,
expiring after ``RECSYS_ADMIN_SESSION_SECONDS``, HttpOnly, SameSite=Strict, Secure over
https) and sends the browser back to where it came from (a path of this API only; the console's home ``/admin`` by
default). Each POST is an
admin attempt of the client's address (``admin_throttle.py``): past the limit, the form again with 429.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from recsys.api.admin_throttle import AdminAttemptsExceeded
from recsys.api.auth import ADMIN_COOKIE, Forbidden, admin_cookie, check_admin_token, check_same_origin
from recsys.api.errors import error_responses

router = APIRouter(prefix="/admin", tags=["admin"])
Next = Annotated[str, Query(max_length=512, description="path to return to after the login")]
_HTML = {"content": {"text/html": {}}}
STYLE = "body{font-family:system-ui,sans-serif;margin:48px;max-width:420px}input{margin:6px 0;padding:6px;width:100%}"


def safe_next(path: str) -> str:
    """Only a path of this API: no scheme, no host, no ``//`` (an open redirect would be a phishing aid)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(ord(c) < 32 for c in path):
        return "/admin"
    return path


def login_page(next_path: str, message: str = "") -> str:
    note = f'<p id="message" style="color:#b00">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recsys admin login</title>
<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<h1>recsys admin</h1>{note}
<form method="post" action="/admin/login">
<label for="token">Admin token (RECSYS_ADMIN_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{html.escape(safe_next(next_path))}">
<input id="login" type="submit" value="Log in">
</form></body></html>"""


@router.get("/login", response_class=HTMLResponse, responses={200: _HTML, **error_responses(422)})
async def login_form(next: Next = "/admin"):
    return HTMLResponse(login_page(next))


@router.post("/login", response_class=HTMLResponse, status_code=303,
             responses={303: {"description": "logged in: the cookie is set, back to `next`"},
                        401: {"description": "wrong token: the form again", **_HTML},
                        429: {"description": "too many attempts from this address: the form again, with "
                                              "Retry-After", **_HTML},
                        **error_responses(400, 403, 413, 422)})
async def login(request: Request, token: Annotated[str, Form(max_length=256)],
                next: Annotated[str, Form(max_length=512)] = "/admin"):
    settings = request.app.state.serving.settings
    try:
        await request.app.state.admin_throttle.attempt(request)
    except AdminAttemptsExceeded as exc:  # the form again, with the wait
        return HTMLResponse(login_page(next, str(exc)), status_code=exc.status_code, headers=exc.headers)
    try:
        check_admin_token(token, settings.admin_token)
    except Forbidden as exc:
        if not settings.admin_token:
            raise
        return HTMLResponse(login_page(next, str(exc)), status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(ADMIN_COOKIE, admin_cookie(settings.admin_token, settings.admin_session_seconds),
                        max_age=settings.admin_session_seconds, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout", status_code=303, response_class=RedirectResponse,
             responses={303: {"description": "the cookie is deleted, to the login form"}, **error_responses(403)})
async def logout(request: Request):
    if ADMIN_COOKIE in request.cookies:  # a write with the cookie: from this API's own pages only
        check_same_origin(request)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/", httponly=True, samesite="strict")
    return response
