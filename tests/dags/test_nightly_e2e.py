"""The whole recsys_nightly DAG with dag.test() on a synthetic shop.

Real PostgreSQL and Redis, S3 on moto. Slow-ish (a few LightFM fits).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from recsys import registry
from recsys.families.vectors.files import EMBEDDING_FILES
from recsys.keys import KEY_REPURCHASE
from shop_dates import RUN_DATE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _live(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT model_id, metrics FROM recommendation_models WHERE status = 'LIVE'")).all()
    assert len(rows) == 1, rows
    metrics = rows[0][1] if isinstance(rows[0][1], dict) else json.loads(rows[0][1])
    return rows[0][0], metrics


def _active_users(engine, day: dt.date, days: int = 30) -> set[int]:
    from recsys.timeutil import day_bounds_ms

    start, _ = day_bounds_ms(day - dt.timedelta(days=days - 1))
    _, end = day_bounds_ms(day)
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(
            text('SELECT DISTINCT user_id FROM user_events WHERE "timestamp" >= :s AND "timestamp" < :e'),
            {"s": start, "e": end},
        )}


def _recs_snapshot(redis_client) -> dict:
    snap = {}
    for key in redis_client.scan_iter("recs:*"):
        value = json.loads(redis_client.get(key))
        value.pop("updated_at", None)
        snap[key.decode()] = value
    return snap


def _basket_lists(redis_client) -> dict:
    """``bought_together:*`` and ``repurchase:categories`` without their ``updated_at``."""
    found = {}
    for key in [*redis_client.scan_iter("bought_together:*"), KEY_REPURCHASE]:
        value = json.loads(redis_client.get(key))
        value.pop("updated_at", None)
        found[key.decode() if isinstance(key, bytes) else key] = value
    return found


def _deadlines_of(run) -> int:
    """Deadline rows of a run: created when the run is, pruned when it succeeds."""
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(Deadline).where(Deadline.dagrun_id == run.id))


def _validated_days(run) -> list[str]:
    """The days of the ``recsys_validated_day`` Asset events of the nightly run ``run`` (run ids repeat
    across the tests of this module, since each runs the same dates again: only this run's own events)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(
            AssetModel.name == "recsys_validated_day", AssetEvent.source_run_id == run.run_id,
            AssetEvent.timestamp >= run.start_date)).all()
        return [e.extra["day"] for e in events]


def _model_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM recommendation_models")).scalar_one()


def test_backfill_three_days_then_rerun_changes_nothing(nightly, shop_engine, redis_client, s3_store):
    dates = [RUN_DATE - dt.timedelta(days=2), RUN_DATE - dt.timedelta(days=1), RUN_DATE]
    for logical in dates:
        run = nightly(logical)
        assert run.state == "success", logical
        assert _validated_days(run) == [(logical - dt.timedelta(days=1)).isoformat()]
        assert _deadlines_of(run) == 0, "the succeeded run's deadline was not pruned"

    live_id, metrics = _live(shop_engine)
    assert metrics["new"]["ndcg@10"] > 0 and "popularity" in metrics
    keys = s3_store.list("")
    for logical in dates:
        day = (logical - dt.timedelta(days=1)).isoformat()
        assert f"events/date={day}/events.parquet" in keys
        assert f"validation/date={day}/report.json" in keys
        assert {f"drift/date={day}/report.html", f"drift/date={day}/report.json"} <= set(keys)
    day = (dates[-1] - dt.timedelta(days=1)).isoformat()
    assert {f"drift/date={day}/output.html", f"drift/date={day}/output.json"} <= set(keys)  # against the LIVE
    recorded = registry.get_artifacts(shop_engine, live_id)
    for name in ("model.npz", "model.json", *EMBEDDING_FILES, "metadata.json"):
        assert f"models/{live_id}/{name}" in keys
        assert recorded[name] == s3_store.sha256(f"models/{live_id}/{name}")

    active = _active_users(shop_engine, RUN_DATE - dt.timedelta(days=1))
    snap = _recs_snapshot(redis_client)
    assert {int(k.split(":")[1].strip("{}")) for k in snap} >= active
    for value in snap.values():
        assert set(value) == {"products", "scores", "reasons", "model_version"}
        assert value["model_version"] == live_id
        assert value["products"] and len(value["products"]) == len(value["scores"]) == len(value["reasons"])
    assert redis_client.exists("trending:global")
    baskets = _basket_lists(redis_client)  # the lists task's co-purchases and repurchase intervals
    assert len(baskets) > 10 and baskets[KEY_REPURCHASE]["categories"]

    models_before = _model_count(shop_engine)
    assert nightly(RUN_DATE).state == "success"
    assert _live(shop_engine)[0] == live_id
    assert _model_count(shop_engine) == models_before
    assert _recs_snapshot(redis_client) == snap
    assert _basket_lists(redis_client) == baskets


def test_bad_day_fails_validation_and_leaves_live_untouched(nightly, shop_engine, redis_client):
    assert nightly(RUN_DATE - dt.timedelta(days=1)).state == "success"
    live_id, _ = _live(shop_engine)
    snap = _recs_snapshot(redis_client)
    models_before = _model_count(shop_engine)

    from recsys.timeutil import day_bounds_ms

    start, _ = day_bounds_ms(RUN_DATE - dt.timedelta(days=1))
    bad = [
        {"u": 1, "p": 999_999, "t": "CLICK", "price": None},   # unknown product
        {"u": 2, "p": 1, "t": "TELEPORT", "price": None},     # unknown event type
        {"u": 3, "p": 2, "t": "PURCHASE", "price": -5.0},     # negative price
        {"u": None, "p": 3, "t": "VIEW", "price": None},      # null user id
    ]
    with shop_engine.begin() as conn:
        for i, row in enumerate(bad):
            conn.execute(
                text('INSERT INTO user_events (user_id, product_id, event_type, "timestamp", price, session_id) '
                     "VALUES (:u, :p, :t, :ts, :price, 'bad')"),
                {**row, "ts": start + 1000 * (i + 1)},
            )

    run = nightly(RUN_DATE)
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["validate"] == "failed"
    assert states.get("train") in ("upstream_failed", None)
    assert _validated_days(run) == []  # a day that failed validation is no validated-day Asset event
    assert _live(shop_engine)[0] == live_id
    assert _model_count(shop_engine) == models_before
    assert _recs_snapshot(redis_client) == snap
