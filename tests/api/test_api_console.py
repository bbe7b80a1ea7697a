"""The admin console's pages through the real API on PostgreSQL and Redis: login lands on the console, pages
need the admin credential, every value is escaped, the forms do what the JSON endpoints do (and nothing on a
refused input), and a cookie write from another origin is refused."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from api_helpers import catalog_rows, open_client, pid, register_model_row, write_lists, write_user_recs
from asgi_client import ServerThread
from browser import launch, needs_chromium, page_errors
from recsys import registry
from recsys.abtest import store as ab_store
from recsys.api.app import create_app
from recsys.api.console.abtests_page import render_ab_tests
from recsys.api.console.models_page import render_models
from recsys.artifacts import LocalArtifactStore

pytestmark = pytest.mark.anyio
TOKEN = "console-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
EVIL = "<script>x</script>"
HOME = [pid("Home", j) for j in (1, 2, 3)]
BOOKS = [pid("Books", j) for j in (1, 2, 3)]
USER = 7
SELECTION = {"metric": "ndcg@10", "secondary_metric": "recall@10", "chosen": "lightfm", "seconds": 12.5,
             "budget_seconds": 900.0, "candidates": [
                 {"family": "lightfm", "name": "lightfm", "validation": {"ndcg@10": 0.3125, "recall@10": 0.4},
                  "fit_seconds": 3.5, "chosen": True, "skipped": None},
                 {"family": "als", "name": "als-big", "validation": None, "fit_seconds": None, "chosen": False,
                  "skipped": "time box reached"}]}


def register(engine, store, model_id, status, version, params=None, metrics=None):
    items = [row["product_id"] for row in catalog_rows()]
    users = list(range(1, 51))
    rng = np.random.default_rng(version)
    register_model_row(engine, store, model_id, users, rng.random((len(users), 4), dtype=np.float32), items,
                       rng.random((len(items), 4), dtype=np.float32), status=status, version=version,
                       params=params, metrics=metrics)


@pytest.fixture
def console_settings(api_settings):
    return api_settings.model_copy(update={"admin_token": TOKEN})


@pytest.fixture
def console_store(console_settings):
    return LocalArtifactStore(console_settings.resolved_artifact_uri)


@pytest.fixture
def console_world(catalog_engine, redis_client, console_store):
    write_lists(redis_client)
    register(catalog_engine, console_store, "m-live", "LIVE", 1)
    register(catalog_engine, console_store, "m-cand", "CANDIDATE", 2, params={"selection": SELECTION})
    register(catalog_engine, console_store, "m-old", "ARCHIVED", 0)
    return catalog_engine


@pytest.fixture
async def console(console_world, console_settings, console_store):
    app = create_app(console_settings, store=console_store, refresh_in_background=False)
    client, close = await open_client(app, headers={})
    yield client
    await close()


async def login(client) -> dict:
    r = await client.post("/admin/login", data={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/admin"  # the login lands on the console
    client.cookies.clear()
    return {"recsys_admin": r.cookies["recsys_admin"]}


def started_tests(engine) -> list[dict]:
    return ab_store.list_tests(engine)


async def test_the_pages_need_the_admin_credential(console, console_world):
    for path in ("/admin", "/admin/ab-tests", "/admin/models", "/admin/merchandising"):
        r = await console.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/admin/login?next={path}", path
        assert (await console.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 403
    form = {"treatment_model_id": "m-cand", "control_model_id": "m-live", "duration_hours": "24",
            "treatment_fraction": "0.5"}
    r = await console.post("/admin/ab-tests", data=form, headers=SAME_ORIGIN)
    assert r.status_code == 401 and started_tests(console_world) == []
    jar = await login(console)
    home = await console.get("/admin", cookies=jar)
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert {"/admin/ab-tests", "/admin/models", "/admin/merchandising"} <= set(re.findall(r'href="([^"]+)"', home.text))


async def test_the_start_form_and_the_stop_button_with_the_cookie_from_the_own_origin_only(console, console_world):
    jar = await login(console)
    form = {"treatment_model_id": "m-cand", "control_model_id": "m-live", "duration_hours": "12",
            "treatment_fraction": "0.25"}
    for headers in ({}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://api.test:3000"}):
        r = await console.post("/admin/ab-tests", data=form, cookies=jar, headers=headers)
        assert r.status_code == 403 and r.json()["detail"].startswith("cross-site request refused"), headers
    assert started_tests(console_world) == []
    r = await console.post("/admin/ab-tests", data=form, cookies=jar, headers={"Origin": "http://api.test"})
    assert r.status_code == 303
    [test] = started_tests(console_world)
    assert r.headers["location"] == f"/admin/ab-tests?started={test['test_id']}"
    assert (test["treatment_model_id"], test["control_model_id"], test["treatment_fraction"]) == ("m-cand", "m-live",
                                                                                                  0.25)
    assert (test["end_at"] - test["start_at"]).total_seconds() == 12 * 3600
    page = await console.get(r.headers["location"], cookies=jar)
    assert f"A/B test #{test['test_id']} started." in page.text and 'id="status-1">RUNNING' in page.text
    assert f'href="/ab-tests/{test["test_id"]}/dashboard"' in page.text and 'id="stop-1"' in page.text
    stop = f"/admin/ab-tests/{test['test_id']}/stop"
    r = await console.post(stop, cookies=jar, headers={"Sec-Fetch-Site": "same-site"})
    assert r.status_code == 403 and ab_store.get_test(console_world, test["test_id"])["status"] == "RUNNING"
    r = await console.post(stop, cookies=jar, headers=SAME_ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/ab-tests?stopped={test['test_id']}"
    assert ab_store.get_test(console_world, test["test_id"])["status"] == "STOPPED"
    page = await console.get(r.headers["location"], cookies=jar)
    assert 'id="status-1">STOPPED' in page.text and 'id="stop-1"' not in page.text
    r = await console.post(stop, cookies=jar, headers=SAME_ORIGIN)  # the JSON endpoint's refusal, as a page
    assert r.status_code == 422 and "A/B test 1 is STOPPED, not RUNNING" in r.text
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("change, status, message", [
    ({"treatment_fraction": "1.5"}, 422, "treatment_fraction: Input should be less than 1"),
    ({"duration_hours": "a day"}, 422, "duration_hours: Input should be a valid number"),
    ({"treatment_model_id": "m-nope"}, 404, "m-nope"),
    ({"treatment_model_id": "m-old"}, 422, "model &#x27;m-old&#x27; is ARCHIVED"),
    ({"control_model_id": "bad id!"}, 422, "control_model_id: String should match pattern"),
])
async def test_a_refused_start_is_the_page_again_with_the_reason_and_nothing_changed(console, console_world,
                                                                                     change, status, message):
    form = {"treatment_model_id": "m-cand", "control_model_id": "m-live", "duration_hours": "24",
            "treatment_fraction": "0.5", **change}
    r = await console.post("/admin/ab-tests", data=form, headers=BEARER)
    assert r.status_code == status and message in r.text and 'id="message"' in r.text
    assert 'id="start-form"' in r.text  # the form again, with what was sent
    assert started_tests(console_world) == [] and registry.get_model(console_world, "m-cand").status == "CANDIDATE"


async def test_a_second_running_test_is_a_409_page(console, console_world):
    form = {"treatment_model_id": "m-cand", "control_model_id": "m-live", "duration_hours": "24",
            "treatment_fraction": "0.5"}
    assert (await console.post("/admin/ab-tests", data=form, headers=BEARER)).status_code == 303
    r = await console.post("/admin/ab-tests", data=form, headers=BEARER)
    assert r.status_code == 409 and 'id="message"' in r.text and len(started_tests(console_world)) == 1


async def test_every_value_is_escaped(console, console_world, console_store):
    register(console_world, console_store, EVIL, "TRAINING", 3, metrics={"<b>group</b>": {"<i>m</i>": 0.5}},
             params={"selection": {**SELECTION, "candidates": [{**SELECTION["candidates"][0], "name": EVIL}]}})
    for path in ("/admin/ab-tests", "/admin/models"):
        r = await console.get(path, headers=BEARER)
        assert r.status_code == 200 and "&lt;script&gt;x&lt;/script&gt;" in r.text, path
        assert "<script" not in r.text and "<b>group" not in r.text and "<i>" not in r.text, path
    page = render_ab_tests([{"test_id": 7, "status": "<RUNNING>", "control_model_id": EVIL, "treatment_model_id": "t",
                             "treatment_fraction": 0.5, "start_time": "<s>", "end_time": "e", "num_users": 1,
                             "control_ctr": None, "treatment_ctr": 0.5, "pvalue": 0.01, "winner": "<w>",
                             "dashboard": '/x"><script>'}], [])
    assert "<script" not in page and "<s>" not in page and "&lt;RUNNING&gt;" in page and "&lt;w&gt;" in page
    drift = {"day": "<d>", "events": 3, "reference": {"events": 1, "days": 7}, "psi_threshold": 0.2,
             "drifted": [EVIL], "features": [{"feature": EVIL, "description": "<p>", "psi": 0.5, "js": 0.1,
                                              "drifted": True}]}
    page = render_models([], [{"promotion_id": 1, "model_id": EVIL, "reason": "<r>"}], drift)
    assert "<script" not in page and "<d>" not in page and "<r>" not in page and "&lt;r&gt;" in page


async def test_the_models_page(console, console_world, console_store):
    registry.promote(console_world, "m-cand", reason="won A/B test 9")  # m-live is archived by it
    older = {"day": "2026-11-30", "events": 10, "reference": {"events": 70, "days": 7}, "psi_threshold": 0.2,
             "drifted": [], "features": []}
    latest = {**older, "day": "2026-12-01", "events": 12, "drifted": ["country"],
              "features": [{"feature": "country", "description": "users' countries", "psi": 0.4321, "js": 0.2,
                            "drifted": True}]}
    for report in (older, latest):
        console_store.put_bytes(f"drift/date={report['day']}/report.json", json.dumps(report).encode())
    r = await console.get("/admin/models", headers=BEARER)
    assert r.status_code == 200
    text = r.text
    live = text[text.index('id="models-live"'):text.index("<h2>CANDIDATE")]
    assert 'data-model="m-cand"' in live and "ndcg@10 0.2" in live  # its metrics
    assert "lightfm" in live and "0.3125" in live and "CHOSEN" in live and "time box reached" in live  # selection
    archived = text[text.index("<h2>ARCHIVED"):text.index("<h2>Promotion history")]
    assert 'data-model="m-live"' in archived and 'data-model="m-old"' in archived
    history = text[text.index('id="history"'):text.index("<h2>Latest data drift")]
    assert "m-cand" in history and "won A/B test 9" in history and "promote" in history
    assert "Day <b>2026-12-01</b>: 12 events" in text and "drifted: country" in text and "0.4321" in text
    assert 'href="/admin/drift/2026-12-01"' in text
    console_store.put_bytes("drift/date=2026-12-01/report.html", b"<!DOCTYPE html><p>the full drift report</p>")
    r = await console.get("/admin/drift/2026-12-01", headers=BEARER)
    assert r.status_code == 200 and r.text == "<!DOCTYPE html><p>the full drift report</p>"
    r = await console.get("/admin/drift/2026-11-30", headers=BEARER)  # its JSON only
    assert r.status_code == 404 and "no drift report for 2026-11-30" in r.text
    r = await console.get("/admin/drift/2026-13-01", headers=BEARER)
    assert r.status_code == 422 and r.json()["detail"] == "day: month must be in 1..12"
    assert (await console.get("/admin/drift/today", headers=BEARER)).status_code == 422
    assert (await console.get("/admin/drift/2026-12-01")).status_code == 303  # to the login form


async def test_the_models_page_without_drift_reports_or_tests(console):
    r = await console.get("/admin/models", headers=BEARER)
    assert r.status_code == 200 and "No drift report in the artifact store yet" in r.text
    assert "No promotion yet." in r.text and "No TRAINING model." in r.text
    r = await console.get("/admin/ab-tests", headers=BEARER)
    assert "No A/B test yet." in r.text
    options = re.findall(r'<option value="([^"]+)"( selected)?', r.text)
    assert [o for o, _ in options] == ["m-cand", "m-live"] * 2  # no ARCHIVED model to choose
    assert options[0][1] and options[3][1]  # the treatment defaults to the CANDIDATE, the control to LIVE


@needs_chromium
def test_the_console_in_chromium(console_world, console_settings, console_store, redis_client):
    """A person logs in through the form, lands on the console, starts a test with the form (a refused share
    first), sees it listed, opens its dashboard, stops it, creates a rule and sees it change a user's preview,
    and logs out."""
    from playwright.sync_api import sync_playwright

    write_user_recs(redis_client, USER, HOME + BOOKS, n_events=60, model_version="m-live")

    app = create_app(console_settings, store=console_store, refresh_in_background=False)
    with ServerThread(app) as base, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors = page_errors(page)
        page.goto(f"{base}/admin/models", wait_until="load")
        assert page.url == f"{base}/admin/login?next=/admin/models"
        page.goto(f"{base}/admin/login", wait_until="load")
        page.fill("#token", TOKEN)
        with page.expect_navigation():
            page.click("#login")
        assert page.url == f"{base}/admin" and page.locator("h1").inner_text() == "Console"
        with page.expect_navigation():
            page.click("#sections >> text=A/B tests")
        assert page.locator("#tests").inner_text() == "No A/B test yet."
        assert page.locator("#treatment").input_value() == "m-cand"
        assert page.locator("#control").input_value() == "m-live"
        page.fill("#fraction", "1.5")
        with page.expect_navigation() as nav:
            page.click("#start")
        assert nav.value.status == 422 and "treatment_fraction" in page.locator("#message").inner_text()
        assert page.locator("#fraction").input_value() == "1.5" and started_tests(console_world) == []
        assert errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable "
                          "Entity)"]
        errors.clear()  # that 422 was the point; the pages after it must load cleanly
        page.fill("#fraction", "0.3")
        page.fill("#duration", "6")
        with page.expect_navigation():
            page.click("#start")
        [test] = started_tests(console_world)
        tid = test["test_id"]
        assert page.locator("#message").inner_text() == f"A/B test #{tid} started."
        assert page.locator(f"#status-{tid}").inner_text() == "RUNNING" and test["treatment_fraction"] == 0.3
        row = page.locator(f"#test-{tid}").inner_text()
        assert "m-cand" in row and "m-live" in row and "30%" in row
        with page.expect_navigation():
            page.click(f"#dashboard-{tid}")
        assert page.url == f"{base}/ab-tests/{tid}/dashboard" and page.locator("#status").inner_text() == "RUNNING"
        page.go_back(wait_until="load")
        with page.expect_navigation():
            page.click(f"#stop-{tid}")
        assert page.locator("#message").inner_text() == f"A/B test #{tid} stopped."
        assert page.locator(f"#status-{tid}").inner_text() == "STOPPED" and page.locator(f"#stop-{tid}").count() == 0
        assert ab_store.get_test(console_world, tid)["status"] == "STOPPED"
        with page.expect_navigation():
            page.click("nav >> text=Models")
        assert page.locator("#models-candidate").inner_text().count("m-cand") == 1  # still a CANDIDATE
        with page.expect_navigation():  # a rule, and the user's preview with and without it
            page.click("nav >> text=Merchandising")
        page.fill("#preview-user", str(USER))
        with page.expect_navigation():
            page.click("#preview")
        before = [int(t) for t in page.locator("#preview-with td.product").all_inner_texts()]
        assert before == [int(t) for t in page.locator("#preview-without td.product").all_inner_texts()]
        assert BOOKS[0] in before
        page.fill("#rule-name", "No books this week")
        page.select_option("#rule-action", "block")
        page.fill("#rule-categories", "Books")
        with page.expect_navigation():
            page.click("#rule-save")
        assert page.locator("#message").inner_text() == "Rule #1 created." and page.locator("#live-1").inner_text() == "yes"
        page.fill("#preview-user", str(USER))
        with page.expect_navigation():
            page.click("#preview")
        after = [int(t) for t in page.locator("#preview-with td.product").all_inner_texts()]
        assert after and not set(after) & set(BOOKS)  # the rule changes the preview
        assert [int(t) for t in page.locator("#preview-without td.product").all_inner_texts()] == before
        with page.expect_navigation():
            page.click("#logout")
        assert page.url.startswith(f"{base}/admin/login")
        assert not [c for c in page.context.cookies() if c["name"] == "recsys_admin"]
        browser.close()
    assert errors == []


# --- the merchandising page ------------------------------------------------------------------------------------
RULE_FORM = {"name": "no books", "action": "block", "products": "", "categories": "Books", "price_min": "",
             "price_max": "", "weight": "", "slot": "", "share": "", "starts_at": "", "ends_at": ""}


def preview_lists(text: str) -> tuple[list[int], list[int]]:
    """The product ids of the preview's two tables (with the rules, without)."""
    def ids(ident):
        part = text[text.index(f'id="{ident}"'):]
        return [int(p) for p in re.findall(r'<td class="product">(\d+)</td>', part[:part.index("</table>")])]
    return ids("preview-with"), ids("preview-without")


async def test_the_merchandising_page_creates_edits_previews_and_expires_a_rule(console, redis_client):
    write_user_recs(redis_client, USER, HOME + BOOKS, n_events=60, model_version="m-live")  # the LIVE model's
    jar = await login(console)
    page = await console.get("/admin/merchandising", params={"preview_user": USER}, cookies=jar)
    assert page.status_code == 200 and "No merchandising rule yet." in page.text
    with_rules, without = preview_lists(page.text)
    assert with_rules == without and set(BOOKS) <= set(without)
    r = await console.post("/admin/merchandising", data=RULE_FORM, cookies=jar, headers={"Sec-Fetch-Site": "same-site"})
    assert r.status_code == 403 and (await console.get("/admin/rules", headers=BEARER)).json()["rules"] == []
    r = await console.post("/admin/merchandising", data=RULE_FORM, cookies=jar, headers=SAME_ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/admin/merchandising?created=1"
    [rule] = (await console.get("/admin/rules", headers=BEARER)).json()["rules"]  # what the JSON API lists
    assert (rule["name"], rule["action"], rule["categories"], rule["live"]) == ("no books", "block", ["Books"], True)
    page = await console.get("/admin/merchandising", params={"created": 1, "preview_user": USER}, cookies=jar)
    assert "Rule #1 created." in page.text and 'id="live-1">yes' in page.text
    with_rules, without = preview_lists(page.text)
    assert not set(BOOKS) & set(with_rules) and set(BOOKS) <= set(without)  # the rule changes the preview
    page = await console.get("/admin/merchandising", params={"edit": 1}, cookies=jar)
    assert 'action="/admin/merchandising/1"' in page.text and 'id="rule-name" name="name" size="20" value="no books"' in page.text
    edited = {**RULE_FORM, "name": "pin a book", "action": "pin", "categories": "", "products": f"{BOOKS[2]}",
              "slot": "1"}
    r = await console.post("/admin/merchandising/1", data=edited, cookies=jar, headers=SAME_ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/admin/merchandising?saved=1"
    [rule] = (await console.get("/admin/rules", headers=BEARER)).json()["rules"]
    assert (rule["action"], rule["products"], rule["categories"], rule["slot"], rule["revision"]) == (
        "pin", [BOOKS[2]], [], 1, 2)
    page = await console.get("/admin/merchandising", params={"preview_user": USER}, cookies=jar)
    assert preview_lists(page.text)[0][0] == BOOKS[2] and "Featured" in page.text
    r = await console.post("/admin/merchandising/1/expire", cookies=jar, headers=SAME_ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/admin/merchandising?expired=1"
    page = await console.get("/admin/merchandising?expired=1&preview_user=7", cookies=jar)
    assert "Rule #1 expired." in page.text and 'id="expire-1"' not in page.text and 'id="live-1">no' in page.text
    with_rules, without = preview_lists(page.text)
    assert with_rules == without


@pytest.mark.parametrize("change, status, message", [
    ({"weight": "0.5"}, 422, "a block rule takes no weight, slot or share"),
    ({"products": "12,abc"}, 422, "products.1: Input should be a valid integer"),
    ({"categories": "", "products": ""}, 422, "a rule matches products, categories or a price range"),
    ({"action": "shout"}, 422, "action: Input should be"),
    ({"starts_at": "tomorrow"}, 422, "starts_at: Input should be a valid datetime"),
])
async def test_a_refused_rule_is_the_page_again_and_nothing_is_stored(console, change, status, message):
    r = await console.post("/admin/merchandising", data={**RULE_FORM, **change}, headers=BEARER)
    assert r.status_code == status and message in r.text and 'id="rule-form"' in r.text, r.text[-800:]
    assert (await console.get("/admin/rules", headers=BEARER)).json()["rules"] == []


async def test_editing_refusals(console):
    r = await console.post("/admin/merchandising/9", data=RULE_FORM, headers=BEARER)
    assert r.status_code == 404 and "no merchandising rule 9" in r.text
    assert (await console.get("/admin/merchandising", params={"edit": 9}, headers=BEARER)).status_code == 404
    assert (await console.post("/admin/merchandising", data=RULE_FORM, headers=BEARER)).status_code == 303
    r = await console.post("/admin/merchandising/1", data={**RULE_FORM, "action": "pin"}, headers=BEARER)
    assert r.status_code == 422 and "a pin rule needs a slot" in r.text
    assert (await console.get("/admin/rules", headers=BEARER)).json()["rules"][0]["revision"] == 1
    assert (await console.get("/admin/merchandising")).status_code == 303  # to the login form


async def test_the_merchandising_page_escapes_the_rules(console):
    r = await console.post("/admin/rules", headers=BEARER, json={"name": EVIL, "action": "block",
                                                                 "categories": ['<img src=x onerror="y">']})
    assert r.status_code == 201
    page = (await console.get("/admin/merchandising", params={"edit": 1}, headers=BEARER)).text
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
