"""An outside fuzzer: schemathesis generates requests from the OpenAPI document of the running API.

Every operation is called with schema-valid (positive) and schema-invalid (negative) data,
as a caller with a valid API key, as one without credentials, and as the admin; each answer
must be no server error, have a documented status code, content type and headers, and
match the documented body. Generated events are mapped into the valid window (timestamp
within the last day, product id of the catalog) before they are sent, so that the write
path is reached: the test asserts that some did get a 200. Seeded (``derandomize``).
"""

from __future__ import annotations

import collections
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from api_helpers import ALL_PRODUCTS, write_lists
from asgi_client import TEST_API_KEY, ServerThread
from recsys.api.app import create_app

pytestmark = pytest.mark.slow  # 1,110 cases against a real server: not in make test-fast
ADMIN_TOKEN = "fuzz-admin-token-0123456789"
EXAMPLES = {GenerationMode.POSITIVE: 16, GenerationMode.NEGATIVE: 7}  # per operation and caller
CALLERS = {"key": {"X-API-Key": TEST_API_KEY}, "anonymous": {}, "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
DAY_MS = 86_400_000


def realistic(case) -> None:
    """Map a generated event into the window the API accepts (a hook, done here in plain sight)."""
    query = case.query or {}
    if isinstance(query.get("product_id"), int) and not isinstance(query["product_id"], bool):
        query["product_id"] = ALL_PRODUCTS[query["product_id"] % len(ALL_PRODUCTS)]  # /recommendations/similar
    body = case.body
    if not (isinstance(body, dict) and case.path.startswith("/events")):
        return
    if isinstance(body.get("timestamp"), int) and not isinstance(body["timestamp"], bool):
        body["timestamp"] = int(time.time() * 1000) - body["timestamp"] % DAY_MS
    if isinstance(body.get("product_id"), int) and not isinstance(body["product_id"], bool):
        body["product_id"] = ALL_PRODUCTS[body["product_id"] % len(ALL_PRODUCTS)]


def test_schemathesis_finds_no_server_error_and_nothing_undocumented(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    settings_ = api_settings.model_copy(update={"admin_token": ADMIN_TOKEN})
    app = create_app(settings_, refresh_in_background=False)
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    session = requests.Session()
    with ServerThread(app) as base_url:  # a free port (pytest-xdist workers run side by side)
        for operation in operations:
            for caller, headers in CALLERS.items():
                for mode, n in EXAMPLES.items():
                    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                    @given(case=operation.as_strategy(generation_mode=mode))
                    def run(case):
                        realistic(case)
                        response = case.call(base_url=base_url, session=session, headers=dict(headers))
                        case.validate_response(response, checks=CHECKS, headers=dict(headers))
                        statuses[f"{case.method} {case.path}"][response.status_code] += 1

                    try:
                        run()
                    except Unsatisfiable:  # nothing to negate: no parameters and no body (GET /health)
                        assert mode == GenerationMode.NEGATIVE, operation.label
    total = sum(sum(c.values()) for c in statuses.values())
    print(f"schemathesis: {total} cases over {len(operations)} operations:",
          {op: dict(c) for op, c in sorted(statuses.items())})
    assert total >= 1000 and len(statuses) == len(operations)
    for path in ("/events/click", "/events/purchase", "/events"):
        assert statuses[f"POST {path}"][200] > 0, (path, statuses[f"POST {path}"])
    public = ("GET /health", "GET /admin/login", "POST /admin/login", "POST /admin/logout")
    pages = ("GET /ab-tests/{test_id}/dashboard", "GET /admin", "GET /admin/ab-tests", "GET /admin/models",
             "GET /admin/drift/{day}", "GET /admin/merchandising")
    assert all(statuses[op][401] > 0 for op in statuses if op not in public + pages)
    assert all(statuses[op][303] > 0 for op in pages)  # a browser without the cookie: to the login
    assert statuses["GET /recommendations/similar"][200] > 0 and statuses["GET /ab-tests"][200] > 0
