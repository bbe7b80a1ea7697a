"""The dashboard in a real headless browser (Debian's chromium driven by Playwright), served by the API."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from ab_helpers import TOKEN, seed_traffic
from asgi_client import ServerThread
from browser import launch, needs_chromium, page_errors
from recsys.abtest import results as R
from recsys.abtest import service
from recsys.abtest.dashboard import fmt_p, fmt_pct, render_dashboard
from recsys.api.app import create_app

def test_render_without_results_and_escaping():
    page = render_dashboard({"test_id": 1, "status": "RUNNING", "winner": None, "start_time": "2026-11-27T10:00:00+00:00",
                             "end_time": "2026-11-28T10:00:00+00:00", "treatment_fraction": 0.2,
                             "control_model_id": "<a>", "treatment_model_id": "b", "results": {}})
    assert "&lt;a&gt;" in page and "<a>" not in page and 'http-equiv="refresh"' in page
    assert "not reached yet" in page


@needs_chromium
def test_dashboard_in_chromium_shows_the_computed_numbers(ab_world, ab_settings, ab_store, tmp_path):
    from playwright.sync_api import sync_playwright

    now = dt.datetime.now(dt.timezone.utc)
    test = service.start_test(ab_world, treatment_model_id="m-treat", control_model_id="m-control",
                              duration_hours=24, treatment_fraction=0.5, now=now - dt.timedelta(hours=3),
                              settings=ab_settings)
    seed_traffic(ab_world, test, 120, {"control": 0.2, "treatment": 0.4})
    seed_traffic(ab_world, test, 60, {"control": 0.25, "treatment": 0.45}, at=now - dt.timedelta(hours=2))
    expected = R.update_results(ab_world, test["test_id"], as_of=now, settings=ab_settings)
    app = create_app(ab_settings, store=ab_store, refresh_in_background=False)  # the page shows the stored results
    with ServerThread(app) as base, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        errors = page_errors(page)
        # a person without the cookie is sent to the login form, and back to the dashboard after it
        page.goto(f"{base}/ab-tests/{test['test_id']}/dashboard", wait_until="load")
        assert page.url.startswith(f"{base}/admin/login")
        page.fill("#token", "wrong")
        with page.expect_navigation():
            page.click("#login")
        assert page.locator("#message").inner_text() == "wrong admin token"
        assert errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
        errors.clear()  # that 401 was the point; the pages after it must load cleanly
        page.fill("#token", TOKEN)
        with page.expect_navigation() as nav:
            page.click("#login")
        assert nav.value.status == 200 and page.url == f"{base}/ab-tests/{test['test_id']}/dashboard"
        cookie = next(c for c in page.context.cookies() if c["name"] == "recsys_admin")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        arms = expected["arms"]
        for arm in ("control", "treatment"):
            cell = page.locator(f"#ctr-{arm}")
            assert cell.inner_text() == fmt_pct(arms[arm]["ctr"])
            assert float(cell.get_attribute("data-value")) == pytest.approx(arms[arm]["ctr"])
            assert int(page.locator(f"#impressions-{arm}").get_attribute("data-value")) == arms[arm]["impressions"]
            required = expected["ctr_test"]["required"][arm]
            assert int(page.locator(f"#required-{arm}").get_attribute("data-value")) == required
        assert page.locator("#pvalue").inner_text() == fmt_p(expected["ctr_test"]["pvalue"])
        assert float(page.locator("#ci").get_attribute("data-value")) == pytest.approx(expected["ctr_test"]["ci_low"])
        assert page.locator("#status").inner_text() == "RUNNING"
        assert page.locator("#winner").inner_text() == expected["winner"]
        assert page.locator("#chart-ctr polyline").count() == 2 and page.locator("#chart-conversion").count() == 1
        assert page.locator('meta[http-equiv="refresh"]').count() == 1  # reloads itself while running
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("RECSYS_AB_SCREENSHOT"):
            page.screenshot(path=os.environ["RECSYS_AB_SCREENSHOT"], full_page=True)
        browser.close()
    assert errors == [] and shot.stat().st_size > 10_000


def page_app(html: str):
    """A one-page ASGI app: another tool's page on the same host (another port)."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": html.encode()})
    return app


@needs_chromium
def test_chromium_writes_with_the_cookie_from_the_dashboard_only(ab_world, ab_settings, ab_store):
    """SameSite=Strict sends the cookie from another port of the host (same site); the API refuses that page's
    POST by its Fetch Metadata, and takes the same POST from its own page."""
    from playwright.sync_api import sync_playwright

    test = service.start_test(ab_world, treatment_model_id="m-treat", control_model_id="m-control",
                              duration_hours=24, treatment_fraction=0.5, settings=ab_settings)
    tid = test["test_id"]
    app = create_app(ab_settings, store=ab_store, refresh_in_background=False)
    with ServerThread(app) as base:
        evil = page_app(f'<form id="f" method="post" action="{base}/ab-tests/{tid}/stop"></form>'
                        '<script>document.getElementById("f").submit()</script>')
        with ServerThread(evil) as other, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            page.goto(f"{base}/admin/login?next=/ab-tests/{tid}/dashboard", wait_until="load")
            page.fill("#token", TOKEN)
            with page.expect_navigation():
                page.click("#login")
            with page.expect_response(f"{base}/ab-tests/{tid}/stop") as posted:
                page.goto(other)  # the other tool's page posts its form to the API at once
            sent = posted.value.request.all_headers()
            assert sent["cookie"].startswith("recsys_admin=") and sent["sec-fetch-site"] == "same-site"
            assert posted.value.status == 403 and "cross-site request refused" in posted.value.json()["detail"]
            assert service.store.get_test(ab_world, tid)["status"] == "RUNNING"
            page.goto(f"{base}/ab-tests/{tid}/dashboard", wait_until="load")
            status = page.evaluate(f"fetch('/ab-tests/{tid}/refresh', {{method: 'POST'}}).then(r => r.status)")
            assert status == 200  # the same kind of write from the API's own page
            browser.close()
