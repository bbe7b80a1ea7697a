"""The A/B endpoints and serving through the real API (PostgreSQL, Redis): auth, conflicts, arms, impressions."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from ab_helpers import TOKEN, auth, now_ms, open_client, start
from recsys.serving.assignment import assign_arm
from recsys.abtest.flusher import flush_impressions
from recsys.api.ab_schemas import ABTestCreated, ABTestView
from recsys.api.app import create_app
from recsys.constants import IMPRESSION
from recsys.keys import KEY_IMPRESSIONS
from recsys.db.models import ABImpression, RecommendationModel, UserEvent
from recsys.keys import ab_key

pytestmark = pytest.mark.anyio


async def test_mutating_endpoints_need_the_admin_token(ab_api):
    body = {"treatment_model_id": "m-treat", "control_model_id": "m-control"}
    r = await ab_api.post("/models/ab-test", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in r.json()["detail"]
    r = await ab_api.post("/models/ab-test", json=body, headers=auth("wrong"))
    assert r.status_code == 403 and r.json()["detail"] == "wrong admin token"
    assert (await ab_api.post("/ab-tests/1/stop")).status_code == 401
    assert (await ab_api.post("/ab-tests/1/stop", headers=auth("nope"))).status_code == 403
    for path in ("/ab-tests", "/ab-tests/1", "/ab-tests/1/dashboard"):  # reading needs the token too
        r = await ab_api.get(path, headers=auth("nope"))
        assert r.status_code == 403, path
    assert (await ab_api.get("/ab-tests")).status_code == 401
    assert (await ab_api.post("/ab-tests/1/refresh")).status_code == 401
    assert (await ab_api.get("/ab-tests", headers=auth())).status_code == 200


async def test_without_a_configured_token_admin_endpoints_are_off(ab_world, ab_settings, ab_store):
    app = create_app(ab_settings.model_copy(update={"admin_token": ""}), store=ab_store,
                     refresh_in_background=False)
    client, close = await open_client(app)
    try:
        r = await client.post("/models/ab-test", headers=auth(""), json={})
        assert r.status_code in (401, 403)
        r = await client.post("/models/ab-test", headers=auth(TOKEN),
                              json={"treatment_model_id": "m-treat", "control_model_id": "m-control"})
        assert r.status_code == 403 and "RECSYS_ADMIN_TOKEN is not set" in r.json()["detail"]
    finally:
        await close()


async def test_create_validations_and_overlap(ab_api, ab_world):
    r = await start(ab_api, treatment="m-nope")
    assert r.status_code == 404 and "m-nope" in r.json()["detail"]
    r = await start(ab_api, treatment="m-old")
    assert r.status_code == 422 and "ARCHIVED" in r.json()["detail"]
    r = await start(ab_api, fraction=1.5)
    assert r.status_code == 422 and r.json()["field"] == "treatment_fraction"
    r = await start(ab_api)
    assert r.status_code == 201, r.text
    created = ABTestCreated.model_validate(r.json())
    assert created.metrics_dashboard == f"http://api.test/ab-tests/{created.test_id}/dashboard"
    assert (await ab_api.get(created.metrics_dashboard, headers=auth())).status_code == 200
    r = await start(ab_api, treatment="m-control")  # an A/A test would be fine, but one runs already
    assert r.status_code == 409 and "running" in r.json()["detail"]
    with ab_world.connect() as conn:
        status = conn.execute(select(RecommendationModel.status, RecommendationModel.decision)
                              .where(RecommendationModel.model_id == "m-treat")).one()
    assert status.status == "CANDIDATE" and f"A/B test {created.test_id}" in status.decision
    stopped = await ab_api.post(f"/ab-tests/{created.test_id}/stop", headers=auth())
    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED"
    assert (await ab_api.post(f"/ab-tests/{created.test_id}/stop", headers=auth())).status_code == 422
    assert (await ab_api.get("/ab-tests/999", headers=auth())).status_code == 404
    r = await start(ab_api, treatment="m-control")  # A/A: the same model in both arms
    assert r.status_code == 201


async def test_arms_serve_their_model_record_the_assignment_and_log_impressions(ab_api, ab_world, redis_client):
    test_id = (await start(ab_api, fraction=0.5)).json()["test_id"]
    served = {}
    for user in range(1, 41):
        r = await ab_api.get("/recommendations", params={"user_id": user, "num_items": 5})
        body = r.json()
        served[user] = (body["model_version"], body["request_id"], [i["product_id"] for i in body["items"]])
    arms = {u: assign_arm(test_id, u, 0.5) for u in served}
    assert 5 < sum(a == "treatment" for a in arms.values()) < 35
    for user, (model, _, items) in served.items():
        assert model == ("m-treat" if arms[user] == "treatment" else "m-control")
        assert (max(items) <= 10) == (arms[user] == "treatment")  # low ids from the treatment model
    await ab_api.app.state.serving.redis.flush_buffer()
    stored = json.loads(redis_client.get(ab_key(7)))
    assert stored == {"test_id": test_id, "model_id": served[7][0], "arm": arms[7]}
    assert 23 * 3600 < redis_client.ttl(ab_key(7)) <= 24 * 3600
    assert redis_client.xlen(KEY_IMPRESSIONS) == 40
    flush_impressions(ab_world, redis_client)
    with ab_world.connect() as conn:
        rows = {r.request_id: r for r in conn.execute(select(ABImpression))}
        n_events = conn.execute(select(func.count()).select_from(UserEvent)
                                .where(UserEvent.event_type == IMPRESSION)).scalar()
    assert len(rows) == 40 and n_events == 200
    row = rows[served[7][1]]
    assert (row.user_id, row.test_id, row.arm, row.model_id, row.products) == (7, test_id, arms[7], served[7][0],
                                                                                served[7][2])


async def test_clicks_with_the_request_id_count_for_the_arm(ab_api, ab_world):
    test_id = (await start(ab_api, fraction=0.5)).json()["test_id"]
    users = [u for u in range(1, 60) if assign_arm(test_id, u, 0.5) == "treatment"][:5]
    for user in users:
        body = (await ab_api.get("/recommendations", params={"user_id": user, "num_items": 4})).json()
        event = {"user_id": user, "product_id": body["items"][0]["product_id"], "timestamp": now_ms(),
                 "request_id": body["request_id"]}
        assert (await ab_api.post("/events/click", json=event)).status_code == 200
    r = await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())
    view = ABTestView.model_validate(r.json())
    arm = view.results["arms"]["treatment"]
    assert (arm["impressions"], arm["clicked_impressions"], arm["ctr"]) == (5, 5, 1.0)
    assert view.results["arms"]["control"]["impressions"] == 0 and view.winner == "inconclusive"
    assert (await ab_api.get(f"/ab-tests/{test_id}", headers=auth())).json()["results"] == view.results
    listed = (await ab_api.get("/ab-tests", headers=auth())).json()["tests"]
    assert [t["test_id"] for t in listed] == [test_id] and listed[0]["treatment_ctr"] == 1.0


async def test_a_cache_hit_in_a_test_stays_one_round_trip(ab_api, ab_world, redis_client, monkeypatch):
    from redis.asyncio.connection import AbstractConnection
    from sqlalchemy import event

    test_id = (await start(ab_api, fraction=0.5)).json()["test_id"]
    user = next(u for u in range(1, 100) if assign_arm(test_id, u, 0.5) == "treatment")
    await ab_api.get("/recommendations", params={"user_id": user})  # seeds, scores and caches the list
    trips, sql = [0], [0]
    original = AbstractConnection.send_packed_command

    async def counting(conn, command, check_health=True):
        trips[0] += 1
        return await original(conn, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    engine = ab_api.app.state.serving.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *a, **k: sql.__setitem__(0, sql[0] + 1))
    for _ in range(3):
        r = await ab_api.get("/recommendations", params={"user_id": user})
        assert r.json()["model_version"] == "m-treat"
    assert trips[0] == 3 and sql[0] == 0  # per request: one pipeline (the read, the key's token bucket, writes)
    # the impressions rode along with the next request's read: all but the last are in the stream
    assert redis_client.xlen(KEY_IMPRESSIONS) == 3


async def test_the_dashboard_opens_after_impressions_served_without_a_test(ab_api, ab_world, redis_client):
    """Issue 10: traffic while no test runs (impressions with no test_id), then a test, its refresh
    (which flushes the impressions first) and its dashboard."""
    for user in range(1, 6):
        r = await ab_api.get("/recommendations", params={"user_id": user, "num_items": 3})
        assert r.status_code == 200 and r.json()["model_version"] == "m-control"
    created = await start(ab_api, fraction=0.5)
    assert created.status_code == 201, created.text
    test_id = created.json()["test_id"]
    refreshed = await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())
    assert refreshed.status_code == 200, refreshed.text
    r = await ab_api.get(f"/ab-tests/{test_id}/dashboard", headers=auth())
    assert r.status_code == 200, r.text
    assert (await ab_api.get(f"/ab-tests/{test_id}", headers=auth())).status_code == 200
    with ab_world.connect() as conn:
        before = dict(conn.execute(select(ABImpression.user_id, ABImpression.test_id)).all())
    assert before == {u: None for u in range(1, 6)}  # flushed like any others, with no test
    assert redis_client.xlen(KEY_IMPRESSIONS) == 0
    for user in range(1, 4):  # traffic in the test flows behind them
        await ab_api.get("/recommendations", params={"user_id": user, "num_items": 3})
    assert (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())).status_code == 200
    assert (await ab_api.get(f"/ab-tests/{test_id}/dashboard", headers=auth())).status_code == 200
    with ab_world.connect() as conn:
        in_test = conn.execute(select(func.count()).select_from(ABImpression)
                               .where(ABImpression.test_id == test_id)).scalar()
    assert in_test == 3  # the refresh sends the buffered impressions first


async def test_an_unknown_field_of_a_test_is_a_422_naming_it(ab_api, ab_world):
    r = await ab_api.post("/models/ab-test", headers=auth(), json={
        "treatment_model_id": "m-treat", "control_model_id": "m-control", "treatment_share": 0.5})
    assert r.status_code == 422 and r.json()["field"] == "treatment_share"
