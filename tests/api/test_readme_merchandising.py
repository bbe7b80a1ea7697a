"""The README's "Merchandising" section, every curl run as written by bash against a real API server (uvicorn on
the test catalogue, real PostgreSQL and Redis). Only the example's values are replaced by the test shop's (its
user, product ids, categories, the host's port), as the operator suite replaces dates; the request id of the
paging example is the one the first answer signed. Each command must answer 2xx with what the section promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from api_helpers import insert_events, now_ms, pid, write_lists, write_user_recs
from asgi_client import TEST_API_KEY, ServerThread
from recsys.api.app import create_app
from recsys.keys import KEY_REPURCHASE

README = Path(__file__).resolve().parents[2] / "README.md"
TOKEN = "readme-admin-token-0123456789"
USER = 4242
# the README's example values -> the test catalogue's (tests/api/api_helpers.py)
VALUES = {"user_id=4242": f"user_id={USER}", "85123001": str(pid("Home", 1)), "71053000": str(pid("Home", 2)),
          "product_id=17": f"product_id={pid('Books', 1)}", "exclude=17,18": f"exclude={pid('Books', 1)},{pid('Books', 2)}",
          "[85123]": f"[{pid('Shoes', 3)}]", "[22423]": f"[{pid('Books', 4)}]", "Kitchen": "Electronics"}


def commands() -> list[str]:
    readme = README.read_text()
    start = readme.index("## Merchandising")
    section = readme[start:readme.index("\n## ", start + 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [c for block in blocks for c in block.replace("\\\n", " ").splitlines() if c.startswith("curl ")]


def run(command: str, base: str, request_id: str | None) -> tuple[int, dict]:
    for old, new in VALUES.items():
        command = command.replace(old, new)
    command = command.replace("http://127.0.0.1:8000", base)
    if request_id:
        command = command.replace("3f9c2a71d04b8e65a1c0d2e3f4a5b6c7", request_id)
    command = command.split("  #")[0].rstrip()  # a trailing comment would swallow the options below
    out = subprocess.run(["bash", "-c", command + " -sS -w '\\n%{http_code}'"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "SHOP_KEY": TEST_API_KEY, "ADMIN_TOKEN": TOKEN})
    body, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else {}


@pytest.fixture
def server(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    write_user_recs(redis_client, USER, [pid(c, j) for c in ("Home", "Books", "Electronics") for j in (1, 2, 3, 6)],
                    n_events=60)
    month_ago = now_ms() - 30 * 86_400_000
    insert_events(catalog_engine, USER, [pid("Home", 1), pid("Books", 2)], event_type="PURCHASE", start_ms=month_ago)
    redis_client.set(KEY_REPURCHASE, json.dumps({  # what the nightly lists step measured: Home is bought again
        "categories": {"Home": {"interval_days": 28.0, "repeats": 40, "rate": 0.3}}, "window_days": 365,
        "updated_at": "2026-12-01T00:00:00+00:00"}))
    insert_events(catalog_engine, USER, [pid("Electronics", 1), pid("Shoes", 2)], event_type="VIEW")
    # paging on, as the section says a shop turns it on (RECSYS_PAGE_TTL_SECONDS)
    app = create_app(api_settings.model_copy(update={"admin_token": TOKEN, "page_ttl_seconds": 1800}),
                     refresh_in_background=False)
    with ServerThread(app) as base:
        yield base


def test_every_curl_of_the_merchandising_section_answers_as_described(server):
    found = commands()
    assert len(found) >= 15, found  # lists 3, filters 2, fields and paging 2, rules 9
    request_id = None
    for command in found:
        status, body = run(command, server, request_id)
        assert 200 <= status < 300, (command, status, body)
        if "/recommendations" in command and "/admin/" not in command:
            assert body["items"], (command, body)
            if "/recommendations?user_id" in command:  # an answer of this user's ranking: the page to continue
                request_id = body["request_id"]
        if "category=Kitchen" in command:
            assert body["filters"], body  # the answer says which filters applied
        if "fields=" in command:
            assert all({"name", "price", "category"} <= set(i) for i in body["items"]), body
        if "after=" in command:
            assert request_id and body["items"]
        if "-d '{\"name\"" in command:
            assert body["rule_id"] and body["revision"] == 1, body
        if command.endswith("/admin/rules                       # list (expired too), version"):
            assert len(body["rules"]) == 5 and body["version"], body
        if "preview" in command:
            assert body, body
