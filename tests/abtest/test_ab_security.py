"""A/B integrity: forged request ids credit no arm, reads serve stored results, the admin login cookie."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from ab_helpers import TOKEN, auth, now_ms, start
from recsys.abtest import results, service
from recsys.serving.assignment import assign_arm
from recsys.api.auth import admin_cookie, valid_admin_cookie
from recsys.db.models import UserEvent

pytestmark = pytest.mark.anyio


async def _treatment_list(ab_api, test_id):
    user = next(u for u in range(1, 100) if assign_arm(test_id, u, 0.5) == "treatment")
    body = (await ab_api.get("/recommendations", params={"user_id": user, "num_items": 4})).json()
    return user, body


async def test_a_click_with_a_forged_request_id_is_stored_but_credits_no_arm(ab_api, ab_world):
    test_id = (await start(ab_api)).json()["test_id"]
    user, body = await _treatment_list(ab_api, test_id)
    shown = body["items"][0]["product_id"]
    real = body["request_id"]
    for forged in ("0" * 32, real[:16] + real[16:][::-1], "made-up-id"):  # none signed by the server
        click = {"user_id": user, "product_id": shown, "timestamp": now_ms(), "request_id": forged}
        r = await ab_api.post("/events/click", json=click)
        assert r.status_code == 200 and r.json()["status"] == "logged"
    view = (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())).json()
    arm = view["results"]["arms"]["treatment"]
    assert (arm["impressions"], arm["clicks"], arm["ctr"]) == (1, 0, 0.0)  # the CTR does not move
    with ab_world.connect() as conn:
        stored = conn.execute(select(UserEvent.request_id).where(UserEvent.event_type == "CLICK")).scalars().all()
    assert len(stored) == 3  # kept as events (training data, audit)
    click = {"user_id": user, "product_id": shown, "timestamp": now_ms(), "request_id": real}
    assert (await ab_api.post("/events/click", json=click)).status_code == 200
    view = (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())).json()
    assert view["results"]["arms"]["treatment"]["ctr"] == 1.0  # the signed id does count


async def test_reads_serve_stored_results_and_only_refresh_recomputes(ab_api, ab_world, monkeypatch):
    test_id = (await start(ab_api)).json()["test_id"]
    await _treatment_list(ab_api, test_id)
    calls = []
    original = results.compute_results

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(results, "compute_results", counting)
    for path in ("/ab-tests", f"/ab-tests/{test_id}", f"/ab-tests/{test_id}/dashboard"):
        for _ in range(3):
            assert (await ab_api.get(path, headers=auth())).status_code == 200
    assert calls == []
    before = (await ab_api.get(f"/ab-tests/{test_id}", headers=auth())).json()
    assert "arms" not in before["results"]  # nothing computed yet
    view = (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())).json()
    assert calls == [test_id] and view["results"]["arms"]["treatment"]["impressions"] == 1
    assert (await ab_api.get(f"/ab-tests/{test_id}", headers=auth())).json()["results"] == view["results"]
    assert (await ab_api.post("/ab-tests/999/refresh", headers=auth())).status_code == 404


async def test_login_form_sets_a_strict_httponly_cookie_that_opens_the_admin_endpoints(ab_api, ab_world):
    test_id = (await start(ab_api)).json()["test_id"]
    r = await ab_api.get(f"/ab-tests/{test_id}/dashboard")
    assert r.status_code == 303 and r.headers["location"] == f"/admin/login?next=/ab-tests/{test_id}/dashboard"
    form = await ab_api.get("/admin/login", params={"next": f"/ab-tests/{test_id}/dashboard"})
    assert form.status_code == 200 and 'name="token"' in form.text
    r = await ab_api.post("/admin/login", data={"token": "wrong", "next": "/ab-tests"})
    assert r.status_code == 401 and "wrong admin token" in r.text and "set-cookie" not in r.headers
    r = await ab_api.post("/admin/login", data={"token": TOKEN, "next": f"/ab-tests/{test_id}/dashboard"})
    assert r.status_code == 303 and r.headers["location"] == f"/ab-tests/{test_id}/dashboard"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    value = r.cookies["recsys_admin"]
    ab_api.cookies.clear()
    jar = {"recsys_admin": value}
    assert (await ab_api.get(f"/ab-tests/{test_id}/dashboard", cookies=jar)).status_code == 200
    assert (await ab_api.get("/ab-tests", cookies=jar)).status_code == 200
    same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": "http://api.test"}  # what a browser sends from /ab-tests
    assert (await ab_api.post(f"/ab-tests/{test_id}/refresh", cookies=jar, headers=same_origin)).status_code == 200
    forged = {"recsys_admin": value[:-1] + ("0" if value[-1] != "0" else "1")}
    assert (await ab_api.get("/ab-tests", cookies=forged)).status_code == 401
    expired = {"recsys_admin": admin_cookie(TOKEN, -10)}
    assert (await ab_api.get("/ab-tests", cookies=expired)).status_code == 401
    other_token = {"recsys_admin": admin_cookie("another-admin-token", 3600)}
    assert (await ab_api.get("/ab-tests", cookies=other_token)).status_code == 401
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = await ab_api.post("/admin/login", data={"token": TOKEN, "next": evil})
        assert r.headers["location"] == "/ab-tests", evil  # no open redirect
    ab_api.cookies.clear()
    r = await ab_api.post("/admin/logout")
    assert r.status_code == 303 and 'recsys_admin=""' in r.headers["set-cookie"]


def test_cookie_values():
    now = time.time()
    value = admin_cookie(TOKEN, 60, now=now)
    assert valid_admin_cookie(value, TOKEN, now=now + 59) and not valid_admin_cookie(value, TOKEN, now=now + 61)
    assert not valid_admin_cookie(value, "other", now=now) and not valid_admin_cookie(value, "", now=now)
    assert not any(valid_admin_cookie(v, TOKEN, now=now) for v in ("", "x", "1.2.3", "abc.def", None))
    for digits in ("\u2460" * 10, "\u00b2" * 10, "\uff11" * 10):  # str.isdigit() is true for each
        assert not valid_admin_cookie(f"{digits}.{value.split('.')[1]}", TOKEN, now=now)


def test_refresh_recomputes_whatever_the_age_of_the_results(ab_world, ab_settings):
    """``service.refresh_test`` is what the refresh endpoint runs: results now, whatever their age."""
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    test = service.start_test(ab_world, treatment_model_id="m-treat", control_model_id="m-control",
                              now=now - dt.timedelta(hours=1), settings=ab_settings)
    first = service.refresh_test(ab_world, test["test_id"], settings=ab_settings)
    second = service.refresh_test(ab_world, test["test_id"], settings=ab_settings)
    assert first["results"]["computed_at"] < second["results"]["computed_at"]


async def _login(ab_api) -> dict:
    r = await ab_api.post("/admin/login", data={"token": TOKEN, "next": "/ab-tests"})
    ab_api.cookies.clear()
    return {"recsys_admin": r.cookies["recsys_admin"]}


@pytest.mark.parametrize("headers, why", [
    ({"Sec-Fetch-Site": "same-site", "Origin": "http://api.test:3000"}, "Sec-Fetch-Site is 'same-site'"),  # Grafana
    ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, "Sec-Fetch-Site is 'cross-site'"),
    ({"Sec-Fetch-Site": "none"}, "Sec-Fetch-Site is 'none'"),
    ({"Origin": "http://api.test:9090"}, "Origin 'http://api.test:9090' is not 'http://api.test'"),  # no Fetch Metadata
    ({"Origin": "null"}, "Origin 'null' is not 'http://api.test'"),
    ({}, "no Sec-Fetch-Site, no Origin"),
])
async def test_a_cookie_write_from_another_origin_is_refused(ab_api, ab_world, headers, why):
    """SameSite=Strict ignores ports: a page of another tool on the API's host sends the cookie. A write it makes
    is refused; the same write from the API's own pages, with the bearer token, or a read is not."""
    test_id = (await start(ab_api)).json()["test_id"]
    jar = await _login(ab_api)
    for path in (f"/ab-tests/{test_id}/refresh", f"/ab-tests/{test_id}/stop", "/admin/logout"):
        r = await ab_api.post(path, cookies=jar, headers=headers)
        assert r.status_code == 403, path
        assert r.json()["detail"].startswith("cross-site request refused") and why in r.json()["detail"], path
        assert "set-cookie" not in r.headers
    r = await ab_api.post("/models/ab-test", cookies=jar, headers=headers, json={
        "treatment_model_id": "m-control", "control_model_id": "m-treat", "duration_hours": 1})
    assert r.status_code == 403
    assert (await ab_api.get(f"/ab-tests/{test_id}", cookies=jar, headers=headers)).json()["status"] == "RUNNING"
    assert (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers={**auth(), **headers})).status_code == 200
    own = {"Origin": "http://api.test"}  # a browser without Fetch Metadata, on the API's own page
    assert (await ab_api.post(f"/ab-tests/{test_id}/refresh", cookies=jar, headers=own)).status_code == 200
    r = await ab_api.post(f"/ab-tests/{test_id}/stop", cookies=jar, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and r.json()["status"] == "STOPPED"
    r = await ab_api.post("/admin/logout", cookies=jar, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and 'recsys_admin=""' in r.headers["set-cookie"]


@pytest.mark.parametrize("value", [
    "\u00b2" * 10 + "." + "a" * 64,  # superscript two: str.isdigit() is true, int() raises
    "\u00b9\u00b2\u00b3" + "9" * 7 + "." + "a" * 64,
    "1" * 40 + "." + "a" * 64, "9999999999." + "A" * 64, "9999999999.xyz", "..", "\u00e9", "9999999999",
])
async def test_a_malformed_cookie_is_not_a_login_and_never_a_500(ab_api, ab_world, value):
    test_id = (await start(ab_api)).json()["test_id"]
    headers = {"Cookie": f"recsys_admin={value}".encode("latin-1")}  # the bytes the server decodes so
    r = await ab_api.get("/ab-tests", headers=headers)
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    r = await ab_api.get(f"/ab-tests/{test_id}/dashboard", headers=headers)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    r = await ab_api.post(f"/ab-tests/{test_id}/refresh", headers={**headers, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 401
    assert not valid_admin_cookie(value, TOKEN)
