"""The design's "Model A (sequential) vs Model B (collaborative)" test, as an operator starts it: the nightly
DAG (``dag.test()``) trains the hybrid on its main line (LIVE) and the sequential model on its challenger
branch, which the run's ``challenger_candidate`` param keeps as a CANDIDATE; the test starts through
``POST /models/ab-test`` of the real API (in-process ASGI app, real PostgreSQL and Redis, S3 on moto) and
both arms are served."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from asgi_client import AppClient
from recsys import registry
from recsys.constants import STATUS_CANDIDATE
from recsys.settings import get_settings
from shop_dates import RUN_DATE

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.anyio]
TOKEN = "challenger-admin-token-0123456789"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _models(engine) -> dict[str, tuple[str, str]]:
    """model_id -> (status, family) of every registered model."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT model_id, status, params FROM recommendation_models")).all()
    return {r[0]: (r[1], (r[2] or {}).get("family")) for r in rows}


def _active_users(engine, day: dt.date) -> list[int]:
    from recsys.timeutil import day_bounds_ms

    start, _ = day_bounds_ms(day - dt.timedelta(days=13))
    _, end = day_bounds_ms(day)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            'SELECT user_id FROM user_events WHERE "timestamp" >= :s AND "timestamp" < :e '
            "GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 150"), {"s": start, "e": end})]


async def test_the_challenger_candidate_of_a_nightly_run_enters_an_ab_test_and_both_arms_serve(
        nightly, shop_engine, redis_client, s3_store):
    run = nightly(RUN_DATE, force_promotion=True, challenger_candidate=True)
    assert run.state == "success"
    live = registry.get_live(shop_engine)
    assert live is not None
    models = _models(shop_engine)
    candidates = [m for m, (status, family) in models.items() if status == STATUS_CANDIDATE and family == "sequential"]
    assert len(candidates) == 1, models
    candidate = candidates[0]
    decision = registry.get_model(shop_engine, candidate).decision  # why it waits: the param or the gate's verdict
    assert decision.startswith("sequential A/B candidate: "), decision

    settings = get_settings().model_copy(update={"admin_token": TOKEN, "api_refresh_seconds": 3600,
                                                 "personalized_min_events": 0})
    users = _active_users(shop_engine, RUN_DATE - dt.timedelta(days=1))
    async with AppClient(settings) as api:
        created = await api.post("/models/ab-test", headers={"Authorization": f"Bearer {TOKEN}"}, json={
            "treatment_model_id": candidate, "control_model_id": live.model_id, "duration_hours": 24,
            "treatment_fraction": 0.5})
        assert created.status_code == 201, created.text
        served: dict[str, int] = {}
        for user in users:
            answer = await api.get("/recommendations", params={"user_id": user, "num_items": 10})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["items"], body
            served[body["model_version"]] = served.get(body["model_version"], 0) + 1
    assert set(served) == {live.model_id, candidate}, served  # both arms, no fallback tier
    assert min(served.values()) >= len(users) // 5, served  # a 50/50 split of 150 users
