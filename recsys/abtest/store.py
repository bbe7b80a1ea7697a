"""Database adapter of the A/B tests: ``ab_tests`` rows, and the impressions and events of a test.

Thin and sync (the DAG, the CLI and the API's admin endpoints in a thread call it).
Datetimes come back timezone-aware (UTC) from PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from recsys.constants import AB_RUNNING, CLICK, PURCHASE
from recsys.db.models import ABImpression, ABTest, UserEvent


class ABTestError(RuntimeError):
    """An A/B operation that cannot be done (the message says why)."""


class UnknownTestError(ABTestError, LookupError):
    """No ``ab_tests`` row has this id."""


class TestConflictError(ABTestError):
    """Another test is running: tests would overlap."""

    __test__ = False  # not a pytest class


class InvalidTestError(ABTestError, ValueError):
    """A test that cannot be created as asked (archived model, bad fraction, ...)."""

    __test__ = False


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _row(mapping) -> dict:
    return {k: _utc(v) for k, v in dict(mapping).items()}


def get_test(engine: Engine, test_id: int) -> dict:
    with engine.connect() as conn:
        found = conn.execute(select(ABTest.__table__).where(ABTest.test_id == test_id)).first()
    if found is None:
        raise UnknownTestError(f"no A/B test with id {test_id}")
    return _row(found._mapping)


def list_tests(engine: Engine, limit: int = 100) -> list[dict]:
    """Newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(ABTest.__table__).order_by(ABTest.test_id.desc()).limit(limit)).all()
    return [_row(r._mapping) for r in rows]


def running_tests(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(ABTest.__table__).where(ABTest.status == AB_RUNNING)).all()
    return [_row(r._mapping) for r in rows]


def tests_overlapping(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Tests that ran at some time in ``[start, end)`` or are still RUNNING and started before ``end``."""
    t = ABTest
    with engine.connect() as conn:
        rows = conn.execute(select(t.__table__).where(t.start_at < end, (t.end_at >= start) | (t.status == AB_RUNNING))
                            .order_by(t.test_id)).all()
    return [_row(r._mapping) for r in rows]


def insert_test(engine: Engine, *, control_model_id: str, treatment_model_id: str, treatment_fraction: float,
                start_at: dt.datetime, end_at: dt.datetime, results: dict) -> dict:
    """A new RUNNING row; ``TestConflictError`` when one is already running (the partial unique index)."""
    values = {"control_model_id": control_model_id, "treatment_model_id": treatment_model_id,
              "treatment_fraction": treatment_fraction, "status": AB_RUNNING, "start_at": start_at,
              "end_at": end_at, "num_users": 0, "results": results, "created_at": start_at}
    try:
        with engine.begin() as conn:
            test_id = conn.execute(ABTest.__table__.insert().values(**values).returning(ABTest.test_id)).scalar_one()
    except IntegrityError as exc:
        raise TestConflictError("another A/B test is running: stop it or wait for its end") from exc
    return get_test(engine, test_id)


def lock_running(conn: Connection, test_id: int) -> dict | None:
    """The test's row while it is RUNNING, locked until ``conn``'s transaction ends; None once it is closed.

    The compare-and-set of closing a test and of writing a running test's results: PostgreSQL locks
    the row (``SELECT ... FOR UPDATE``; a second caller waits, then sees the committed status), SQLite
    takes its one write lock first (a no-op update), so writers are serialised there too.
    """
    t = ABTest
    if conn.dialect.name == "sqlite":
        conn.execute(update(t).where(t.test_id == test_id).values(status=t.status))
    found = conn.execute(select(t.__table__).where(t.test_id == test_id, t.status == AB_RUNNING)
                         .with_for_update()).first()
    return None if found is None else _row(found._mapping)


def save_results(conn: Connection, test_id: int, results: dict, *, status: str | None = None,
                 end_at: dt.datetime | None = None) -> None:
    """The summary columns and the ``results`` JSON of a test (and its status / end when closing it),
    inside the caller's transaction (which holds the row: ``lock_running``)."""
    ctr = results.get("arms", {})
    values = {"results": results, "num_users": int(results.get("num_users", 0)),
              "control_ctr": (ctr.get("control") or {}).get("ctr"),
              "treatment_ctr": (ctr.get("treatment") or {}).get("ctr"),
              "pvalue": (results.get("ctr_test") or {}).get("pvalue"), "winner": results.get("winner")}
    if status is not None:
        values["status"] = status
    if end_at is not None:
        values["end_at"] = end_at
    conn.execute(update(ABTest).where(ABTest.test_id == test_id).values(**values))


def load_impressions(engine: Engine, test_id: int, start_ms: int, end_ms: int) -> pd.DataFrame:
    """The test's impressions in ``[start_ms, end_ms)``, oldest first."""
    i = ABImpression
    stmt = (select(i.impression_id, i.request_id, i.user_id, i.timestamp, i.arm, i.model_id, i.products)
            .where(i.test_id == test_id, i.timestamp >= start_ms, i.timestamp < end_ms).order_by(i.timestamp))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = ["impression_id", "request_id", "user_id", "timestamp", "arm", "model_id", "products"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    frame["products"] = [list(p or []) for p in frame["products"]]
    return frame.astype({"user_id": "int64", "timestamp": "int64"})


def load_events(engine: Engine, test_id: int, start_ms: int, end_ms: int) -> pd.DataFrame:
    """CLICK and PURCHASE events in ``[start_ms, end_ms)`` of the users the test showed lists to."""
    e, i = UserEvent, ABImpression
    users = select(i.user_id).where(i.test_id == test_id).distinct().scalar_subquery()
    stmt = (select(e.user_id, e.product_id, e.event_type, e.timestamp, e.price, e.request_id)
            .where(e.event_type.in_((CLICK, PURCHASE)), e.timestamp >= start_ms, e.timestamp < end_ms,
                   e.user_id.in_(users), e.product_id.is_not(None)))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = ["user_id", "product_id", "event_type", "timestamp", "price", "request_id"]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols).astype(
        {"user_id": "int64", "product_id": "int64", "timestamp": "int64"})
