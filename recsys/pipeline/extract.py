"""Nightly step 1: extract one UTC day of ``user_events`` to the artifact store.

The day's events go to ``events/date=<day>/events.parquet`` (overwritten on a
re-run, so the step is idempotent; an empty day writes an empty partition with
the same schema), then the ``user_product_interactions`` rows of every
(user, product) pair seen that day are recomputed from all of the pair's events
in one set-based upsert.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlalchemy import Engine, text

from recsys.artifacts import ArtifactStore, partition_key, write_parquet
from recsys.constants import (
    CLICK,
    COL_EVENT_ID,
    COL_EVENT_TYPE,
    COL_ITEM,
    COL_PRICE,
    COL_SESSION,
    COL_TIMESTAMP,
    COL_USER,
    EVENT_COLUMNS,
    MS_PER_DAY,
    PURCHASE,
    VIEW,
)
from recsys.pipeline.steps import recording, step
from recsys.timeutil import day_bounds_ms

log = logging.getLogger(__name__)

EVENTS_KIND = "events"
EVENTS_FILE = "events.parquet"
RECENCY_WINDOW_MS = 30 * MS_PER_DAY  # the score halves after 30 days without interaction

# the schema of an extracted partition (nullable ints: the log has no constraints)
EVENT_DTYPES = {
    COL_EVENT_ID: "int64",
    COL_USER: "Int64",
    COL_ITEM: "Int64",
    COL_EVENT_TYPE: "str",
    COL_SESSION: "str",
    COL_TIMESTAMP: "Int64",
    COL_PRICE: "float64",
}

# One statement on PostgreSQL and SQLite: the pairs seen in the day (known users and
# products only), each re-aggregated over ALL of its events, upserted on the key.
_REFRESH_SQL = f"""
INSERT INTO user_product_interactions
    (user_id, product_id, clicks, purchases, views, view_duration_seconds, last_interaction, score)
SELECT
    e.user_id,
    e.product_id,
    SUM(CASE WHEN e.event_type = :click THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.event_type = :purchase THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.event_type = :view THEN 1 ELSE 0 END),
    0,
    MAX(e."timestamp"),
    (SUM(CASE WHEN e.event_type = :click THEN 1 ELSE 0 END)
        + 3 * SUM(CASE WHEN e.event_type = :purchase THEN 1 ELSE 0 END))
    / (1.0 + CAST(CASE WHEN :day_end > MAX(e."timestamp") THEN :day_end - MAX(e."timestamp") ELSE 0 END
                  AS DOUBLE PRECISION) / {float(RECENCY_WINDOW_MS)})
FROM user_events AS e
JOIN (
    SELECT DISTINCT d.user_id, d.product_id
    FROM user_events AS d
    JOIN users AS u ON u.user_id = d.user_id
    JOIN products AS p ON p.product_id = d.product_id
    WHERE d."timestamp" >= :start AND d."timestamp" < :end
) AS pairs ON pairs.user_id = e.user_id AND pairs.product_id = e.product_id
WHERE e."timestamp" IS NOT NULL
GROUP BY e.user_id, e.product_id
ON CONFLICT (user_id, product_id) DO UPDATE SET
    clicks = excluded.clicks,
    purchases = excluded.purchases,
    views = excluded.views,
    view_duration_seconds = excluded.view_duration_seconds,
    last_interaction = excluded.last_interaction,
    score = excluded.score
"""


def _check_day(day) -> None:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise TypeError(f"day must be a datetime.date, got {day!r}")


def read_day_events(engine: Engine, day: dt.date) -> pd.DataFrame:
    """The events with ``timestamp`` in ``[day 00:00, day+1 00:00)`` UTC, ordered by ``event_id``."""
    _check_day(day)
    start, end = day_bounds_ms(day)
    cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
    query = text(
        f'SELECT {cols} FROM user_events WHERE "timestamp" >= :start AND "timestamp" < :end ORDER BY event_id'
    )
    with engine.connect() as conn:
        df = pd.read_sql(query, conn, params={"start": start, "end": end}, dtype_backend="numpy_nullable")
    return df.reindex(columns=list(EVENT_COLUMNS)).astype(EVENT_DTYPES)


def refresh_interactions(engine: Engine, day: dt.date) -> int:
    """Recompute the interaction rows of the pairs seen in ``day``; returns the rows upserted.

    Pairs naming a user or product missing from ``users``/``products`` are skipped
    (rejecting such a day is the validator's job).
    """
    _check_day(day)
    start, end = day_bounds_ms(day)
    params = {"start": start, "end": end, "day_end": end, "click": CLICK, "purchase": PURCHASE, "view": VIEW}
    with engine.begin() as conn:
        result = conn.execute(text(_REFRESH_SQL), params)
    return max(result.rowcount, 0)


def extract_day(engine: Engine, store: ArtifactStore, day: dt.date) -> dict:
    """Write the day's events to the store, refresh the day's interactions, record the step.

    Returns ``{"key", "uri", "rows", "day", "interactions"}``.
    """
    _check_day(day)
    key = partition_key(EVENTS_KIND, day, EVENTS_FILE)
    with recording(engine, day, step("extract")) as record:
        df = read_day_events(engine, day)
        uri = write_parquet(store, key, df)
        pairs = refresh_interactions(engine, day)
        result = {"key": key, "uri": uri, "rows": int(len(df)), "day": day.isoformat(), "interactions": pairs}
        record.details = dict(result)
    log.info("extracted %d events of %s to %s; %d interaction rows refreshed", len(df), day, uri, pairs)
    return result
