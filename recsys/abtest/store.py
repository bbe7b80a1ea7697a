"""Database adapter of the A/B tests: ``ab_tests`` rows, and the outcomes of a test aggregated in SQL.

Thin and sync (the DAG, the CLI and the API's admin endpoints in a thread call it).
Datetimes come back timezone-aware (UTC) from PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import IntegrityError

from recsys.constants import AB_RUNNING, CLICK, PURCHASE
from recsys.db.models import ABTest


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


def lock_test(conn: Connection, test_id: int) -> dict | None:
    """The test's row whatever its status, locked until ``conn``'s transaction ends (``lock_running``'s lock)."""
    t = ABTest
    if conn.dialect.name == "sqlite":
        conn.execute(update(t).where(t.test_id == test_id).values(status=t.status))
    found = conn.execute(select(t.__table__).where(t.test_id == test_id).with_for_update()).first()
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


# --- a test's outcomes, aggregated in the database ---------------------------------
# The attribution rules of ``recsys.abtest.attribution`` (the pandas reference, which the tests
# check this against): an event (CLICK or PURCHASE of a user the test showed lists to) goes by
# request id to the earliest impression of that answer that showed the product to the user,
# otherwise to the latest impression of the user that showed the product in
# [event - window, event + skew]; an event naming a request id the server did not sign goes nowhere.
# Ties between impressions of the same time go to the smaller (by request) or larger (by window)
# impression id. Buckets are the steps of the results' time series: (timestamp - start) / step.
_SHOWS = {  # the impression ``i`` showed the event ``h``'s product (its JSON list holds the id)
    "postgresql": "EXISTS (SELECT 1 FROM json_array_elements_text(CASE WHEN json_typeof(i.products) = 'array' "
                  "THEN i.products ELSE CAST('[]' AS json) END) AS p(value) "
                  "WHERE CAST(p.value AS BIGINT) = h.product_id)",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_type(i.products) = 'array' THEN i.products "
              "ELSE '[]' END) AS p WHERE CAST(p.value AS BIGINT) = h.product_id)",
}
_FORGED = {  # the JSON list of forged request ids, one row each, as ``f.value``
    "postgresql": "json_array_elements_text(CAST(:forged AS json)) AS f(value)",
    "sqlite": "json_each(:forged) AS f",
}
_TEST_EVENTS = """
    FROM user_events e
    WHERE e.event_type IN (:click, :purchase) AND e.timestamp >= :start_ms AND e.timestamp < :end_ms
      AND e.product_id IS NOT NULL AND e.user_id IN (SELECT user_id FROM ab_impressions WHERE test_id = :test_id)"""
_NAMED_REQUEST_IDS = "SELECT DISTINCT e.request_id" + _TEST_EVENTS + " AND e.request_id IS NOT NULL"
_IN_TEST = "i.test_id = :test_id AND i.timestamp >= :start_ms AND i.timestamp < :end_ms"
# The matches look up each attributable event's candidate impressions by index (request id; user and
# time), so the cost follows the test's clicks and purchases, not its impressions times their products.
_OUTCOMES = """
WITH ev AS (
    SELECT e.event_id, e.user_id, e.product_id, e.event_type, e.timestamp AS ts, e.request_id,
           CASE WHEN e.price IS NULL OR e.price = CAST('NaN' AS FLOAT) THEN 0.0 ELSE e.price END AS price
    {events}
), honest AS (
    SELECT * FROM ev WHERE request_id IS NULL OR request_id NOT IN (SELECT f.value FROM {forged})
), by_request AS (
    SELECT event_id, impression_id FROM (
        SELECT h.event_id, i.impression_id,
               ROW_NUMBER() OVER (PARTITION BY h.event_id ORDER BY i.timestamp, i.impression_id) AS rn
        FROM honest h JOIN ab_impressions i ON i.request_id = h.request_id AND i.user_id = h.user_id
        WHERE {in_test} AND {shows}) m
    WHERE rn = 1
), by_window AS (
    SELECT event_id, impression_id FROM (
        SELECT h.event_id, i.impression_id,
               ROW_NUMBER() OVER (PARTITION BY h.event_id ORDER BY i.timestamp DESC, i.impression_id DESC) AS rn
        FROM honest h JOIN ab_impressions i ON i.user_id = h.user_id
         AND i.timestamp >= h.ts - :window_ms AND i.timestamp <= h.ts + :skew_ms
        WHERE {in_test} AND h.event_id NOT IN (SELECT event_id FROM by_request) AND {shows}) m
    WHERE rn = 1
), per_impression AS (
    SELECT a.impression_id,
           SUM(CASE WHEN ev.event_type = :click THEN 1 ELSE 0 END) AS clicks,
           SUM(CASE WHEN ev.event_type = :purchase THEN 1 ELSE 0 END) AS purchases,
           SUM(CASE WHEN ev.event_type = :purchase THEN ev.price ELSE 0.0 END) AS revenue
    FROM (SELECT * FROM by_request UNION ALL SELECT * FROM by_window) a JOIN ev ON ev.event_id = a.event_id
    GROUP BY a.impression_id
), outcomes AS (
    SELECT i.user_id, i.arm, (i.timestamp - :start_ms) / CAST(:step_ms AS BIGINT) AS bucket,
           COALESCE(pi.clicks, 0) AS clicks, CASE WHEN pi.clicks > 0 THEN 1 ELSE 0 END AS clicked,
           COALESCE(pi.purchases, 0) AS purchases, COALESCE(pi.revenue, 0.0) AS revenue
    FROM ab_impressions i LEFT JOIN per_impression pi ON pi.impression_id = i.impression_id
    WHERE {in_test}
), per_user AS (
    SELECT arm, COUNT(*) AS n, SUM(clicked) AS x, SUM(clicks) AS clicks, SUM(purchases) AS purchases,
           SUM(revenue) AS revenue, MIN(bucket) AS seen, MIN(CASE WHEN purchases > 0 THEN bucket END) AS bought
    FROM outcomes GROUP BY arm, user_id
)
SELECT 'arm' AS kind, arm, CAST(NULL AS BIGINT) AS bucket, COUNT(*) AS users, SUM(n) AS impressions,
       SUM(x) AS clicked, SUM(clicks) AS clicks, SUM(purchases) AS purchases,
       SUM(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS buyers, SUM(x * x) AS xx, SUM(x * n) AS xn, SUM(n * n) AS nn,
       SUM(revenue) AS revenue
FROM per_user GROUP BY arm
UNION ALL SELECT 'step', arm, bucket, 0, COUNT(*), SUM(clicked), 0, 0, 0, 0, 0, 0, 0.0 FROM outcomes
          GROUP BY arm, bucket
UNION ALL SELECT 'seen', arm, seen, COUNT(*), 0, 0, 0, 0, 0, 0, 0, 0, 0.0 FROM per_user GROUP BY arm, seen
UNION ALL SELECT 'bought', arm, bought, 0, 0, 0, 0, 0, COUNT(*), 0, 0, 0, 0.0 FROM per_user
          WHERE bought IS NOT NULL GROUP BY arm, bought
UNION ALL SELECT 'events', NULL, NULL, 0, COUNT(*), 0, 0, 0, 0, 0, 0, 0, 0.0 FROM ev
"""
ARM_COUNTS = ("users", "impressions", "clicked", "clicks", "purchases", "buyers", "xx", "xn", "nn")
STEP_COUNTS = ("impressions", "clicked", "users", "buyers")  # new users and buyers: first seen / bought in the step


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements all read one snapshot of the database."""
    if engine.dialect.name == "sqlite":  # the driver begins a transaction only before a write
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        yield conn


def outcome_counts(engine: Engine, test_id: int, start_ms: int, end_ms: int, *, window_ms: int, skew_ms: int,
                   step_ms: int, trusted: Callable[[str], bool]) -> dict:
    """What a test's results are made of, for ``[start_ms, end_ms)``, in two queries on one snapshot.

    ``{"arms": {arm: {users, impressions, clicked, clicks, purchases, buyers, revenue, and the sums over
    users xx, xn, nn of clicked^2, clicked * impressions, impressions^2}}, "steps": {arm: {bucket: {STEP_COUNTS}}},
    "events": n}``. The first query lists the request ids the test's events name, ``trusted`` tells the
    forged ones; the second attributes and aggregates (a big test costs two queries, not its rows).
    """
    if window_ms <= 0 or skew_ms < 0 or step_ms <= 0:
        raise ValueError(f"need window_ms > 0, skew_ms >= 0 and step_ms > 0, got {window_ms}, {skew_ms}, {step_ms}")
    params = {"test_id": test_id, "start_ms": start_ms, "end_ms": end_ms, "window_ms": window_ms, "skew_ms": skew_ms,
              "step_ms": step_ms, "click": CLICK, "purchase": PURCHASE}
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
    sql = _OUTCOMES.format(events=_TEST_EVENTS, forged=_FORGED[dialect], in_test=_IN_TEST, shows=_SHOWS[dialect])
    with _snapshot(engine) as conn:
        named = conn.execute(text(_NAMED_REQUEST_IDS), params).scalars().all()
        forged = [rid for rid in named if not trusted(rid)]
        rows = conn.execute(text(sql), {**params, "forged": json.dumps(forged)}).all()
    counts: dict = {"arms": {}, "steps": {}, "events": 0}
    for kind, arm, bucket, *values, revenue in rows:
        values = dict(zip(ARM_COUNTS, (int(v or 0) for v in values)))
        if kind == "arm":
            counts["arms"][arm] = {**values, "revenue": float(revenue or 0.0)}
        elif kind == "events":
            counts["events"] = values["impressions"]
        else:
            step = counts["steps"].setdefault(arm, {}).setdefault(int(bucket), dict.fromkeys(STEP_COUNTS, 0))
            for name in STEP_COUNTS:
                step[name] += values[name]
    return counts
