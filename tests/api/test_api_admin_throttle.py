"""Admin attempts (a bearer admin token, POST /admin/login) are throttled per client address, in every
environment; the login cookie is not counted; Redis down: checked unthrottled, counted (README "Security")."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from api_helpers import metric, open_client, write_lists
from asgi_client import KEY_HEADERS
from recsys.api.app import create_app
from recsys.api.auth import admin_cookie

TOKEN = "throttle-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer wrong-admin-token-0123456789"}


@pytest.fixture
async def admin_api(catalog_engine, redis_client, api_settings):
    """``await admin_api(**settings)``: (app, client from 127.0.0.1) with the admin token and 3 attempts a minute."""
    write_lists(redis_client)
    closers = []

    async def build(**update):
        settings = api_settings.model_copy(update={"admin_token": TOKEN, "admin_attempts_per_minute": 3, **update})
        app = create_app(settings, refresh_in_background=False)
        client, close = await open_client(app, headers={})
        closers.append(close)
        return app, client

    yield build
    for close in closers:
        await close()


def from_address(app, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 4321)), base_url="http://api.test")


@pytest.mark.anyio
@pytest.mark.parametrize("environment", ["production", "development"])
async def test_bearer_attempts_are_throttled_per_client_address(admin_api, environment):
    app, api = await admin_api(environment=environment)
    codes = [(await api.get("/ab-tests", headers=WRONG)).status_code for _ in range(3)]
    assert codes == [403, 403, 403]
    r = await api.get("/ab-tests", headers=BEARER)  # the right token, but the address used its attempts
    assert r.status_code == 429 and r.headers["retry-after"] == "20" and "admin token attempts" in r.json()["detail"]
    async with from_address(app, "10.1.2.3") as other:  # another address has its own bucket
        assert (await other.get("/ab-tests", headers=BEARER)).status_code == 200
    assert (await api.get("/recommendations/trending", headers=KEY_HEADERS)).status_code == 200  # keys: not admin
    text = (await api.get("/metrics", headers=KEY_HEADERS)).text
    assert metric(text, 'recsys_rate_limited_total{key="admin"}') == 1


@pytest.mark.anyio
async def test_the_login_form_counts_and_answers_the_form_with_429(admin_api):
    app, api = await admin_api()
    for _ in range(3):
        r = await api.post("/admin/login", data={"token": "guess-0123456789abcdef", "next": "/ab-tests"})
        assert r.status_code == 401
    r = await api.post("/admin/login", data={"token": TOKEN, "next": "/ab-tests"})
    assert r.status_code == 429 and r.headers["retry-after"] == "20" and "set-cookie" not in r.headers
    assert 'id="token"' in r.text and "too many admin token attempts" in r.text
    assert (await api.get("/ab-tests", headers=BEARER)).status_code == 429  # one bucket for both ways in


@pytest.mark.anyio
async def test_the_login_cookie_is_not_counted(admin_api):
    app, api = await admin_api()
    for _ in range(3):
        await api.get("/ab-tests", headers=WRONG)
    cookie = {"recsys_admin": admin_cookie(TOKEN, 600)}
    assert {(await api.get("/ab-tests", cookies=cookie)).status_code for _ in range(5)} == {200}


@pytest.mark.anyio
async def test_redis_down_checks_the_token_unthrottled_and_leaves_serving_breaker_alone(admin_api):
    app, api = await admin_api()
    throttle, breaker = app.state.admin_throttle, app.state.serving.redis.breaker
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    throttle._script = dead.register_script("return {0, 1000}")
    codes = [(await api.get("/ab-tests", headers=WRONG)).status_code for _ in range(5)]
    assert codes == [403] * 5 and (await api.get("/ab-tests", headers=BEARER)).status_code == 200
    assert breaker.available()
    text = (await api.get("/metrics", headers=KEY_HEADERS)).text
    assert metric(text, "recsys_rate_limit_unavailable_total") == 6
    await dead.aclose()


def test_the_admin_endpoints_document_429(api_settings):
    paths = create_app(api_settings.model_copy(update={"admin_token": TOKEN})).openapi()["paths"]
    assert "429" in paths["/ab-tests"]["get"]["responses"] and "429" in paths["/admin/login"]["post"]["responses"]
