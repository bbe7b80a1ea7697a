"""Extraction of one UTC day to Parquet and the refresh of user_product_interactions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import insert, select, text

from recsys.artifacts import read_parquet
from recsys.constants import (
    CLICK,
    EVENT_COLUMNS,
    IMPRESSION,
    MS_PER_DAY,
    PURCHASE,
    STEP_FAILED,
    STEP_SUCCESS,
    VIEW,
    WISHLIST,
)
from recsys.db.models import Product, User, UserEvent, UserProductInteraction
from recsys.pipeline.extract import EVENT_DTYPES, extract_day, read_day_events, refresh_interactions
from recsys.pipeline.runs import get_steps
from recsys.timeutil import day_bounds_ms

DAY = dt.date(2026, 11, 20)
START, END = day_bounds_ms(DAY)
MINUTE = 60_000
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def add_catalog(engine, users=(1, 2, 3), products=(10, 11, 12)) -> None:
    with engine.begin() as conn:
        conn.execute(insert(User), [{"user_id": u, "country": "FR"} for u in users])
        conn.execute(
            insert(Product),
            [
                {"product_id": p, "name": f"p{p}", "category": "shoes", "price": 9.5,
                 "created_at": CREATED, "last_updated_at": CREATED}
                for p in products
            ],
        )


def add_events(engine, rows: list[tuple]) -> None:
    """rows: (user_id, product_id, event_type, timestamp_ms, price)."""
    records = [
        {"user_id": u, "product_id": p, "event_type": t, "timestamp": ts, "price": price, "session_id": f"s{u}"}
        for u, p, t, ts, price in rows
    ]
    with engine.begin() as conn:
        conn.execute(insert(UserEvent), records)


def interactions(engine) -> pd.DataFrame:
    query = select(UserProductInteraction.__table__).order_by("user_id", "product_id")
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all())


def reference_score(clicks: int, purchases: int, last_ms: int, day_end_ms: int) -> float:
    recency = 1 + max(0, day_end_ms - last_ms) / (30 * MS_PER_DAY)
    return (clicks + 3 * purchases) / recency


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_extracts_exactly_the_utc_day(request, engine, store_name):
    store = request.getfixturevalue(store_name)
    add_catalog(engine)
    add_events(engine, [
        (1, 10, CLICK, START - 1, None),           # 23:59:59.999 the day before
        (1, 10, VIEW, START, None),                # 00:00:00.000: first ms of the day
        (2, 11, PURCHASE, START + 12 * 3600_000, 19.99),
        (3, 12, CLICK, END - 1, None),             # 23:59:59.999: last ms of the day
        (3, 12, CLICK, END, None),                 # 00:00 the next day
    ])

    result = extract_day(engine, store, DAY)

    assert result["key"] == "events/date=2026-11-20/events.parquet"
    assert result["uri"] == store.uri(result["key"])
    assert result["rows"] == 3 and result["day"] == "2026-11-20"
    df = read_parquet(store, result["key"])
    assert list(df.columns) == list(EVENT_COLUMNS)
    assert df["timestamp"].tolist() == [START, START + 12 * 3600_000, END - 1]
    assert df["event_type"].tolist() == [VIEW, PURCHASE, CLICK]
    assert df["price"].iloc[1] == pytest.approx(19.99) and pd.isna(df["price"].iloc[0])
    assert df["session_id"].tolist() == ["s1", "s2", "s3"]


def test_empty_day_writes_an_empty_partition_with_the_schema(engine, local_store):
    add_catalog(engine)
    add_events(engine, [(1, 10, CLICK, START - 1, None), (1, 10, CLICK, END, None)])

    result = extract_day(engine, local_store, DAY)

    df = read_parquet(local_store, result["key"])
    assert result["rows"] == 0 and len(df) == 0
    assert list(df.columns) == list(EVENT_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        c: str(pd.Series([], dtype=t).dtype) for c, t in EVENT_DTYPES.items()
    }
    assert result["interactions"] == 0 and interactions(engine).empty


def test_rerunning_a_day_leaves_identical_state(engine, local_store):
    add_catalog(engine)
    add_events(engine, [
        (1, 10, CLICK, START - 3 * MS_PER_DAY, None),
        (1, 10, CLICK, START + MINUTE, None),
        (1, 10, PURCHASE, START + 2 * MINUTE, 12.0),
        (2, 11, VIEW, START + 3 * MINUTE, None),
        (2, 12, WISHLIST, START + 4 * MINUTE, None),
    ])

    first = extract_day(engine, local_store, DAY)
    bytes_1, table_1 = local_store.get_bytes(first["key"]), interactions(engine)
    second = extract_day(engine, local_store, DAY)

    assert second == first
    assert local_store.get_bytes(second["key"]) == bytes_1
    pd.testing.assert_frame_equal(interactions(engine), table_1)
    assert len(table_1) == 3
    assert local_store.list("events/") == [first["key"]]
    steps = get_steps(engine, DAY)
    assert [(s["step"], s["status"], s["details"]["rows"]) for s in steps] == [("extract", STEP_SUCCESS, 4)]


def test_interaction_rows_follow_the_score_formula(engine, local_store):
    add_catalog(engine)
    last_1 = START + 5 * 3600_000
    add_events(engine, [
        # pair (1, 10): history from earlier days counts too
        (1, 10, CLICK, START - 40 * MS_PER_DAY, None),
        (1, 10, PURCHASE, START - 2 * MS_PER_DAY, 30.0),
        (1, 10, VIEW, START - MS_PER_DAY, None),
        (1, 10, CLICK, START + 3600_000, None),
        (1, 10, VIEW, START + 2 * 3600_000, None),
        (1, 10, IMPRESSION, last_1, None),
        # pair (2, 11): only views that day
        (2, 11, VIEW, START + 10, None),
        (2, 11, VIEW, START + 20, None),
        # pair (3, 12): no event that day -> not refreshed
        (3, 12, CLICK, START - 5 * MS_PER_DAY, None),
    ])
    with engine.begin() as conn:  # a stale aggregate that the refresh must replace
        conn.execute(insert(UserProductInteraction), [
            {"user_id": 1, "product_id": 10, "clicks": 99, "purchases": 99, "views": 99,
             "view_duration_seconds": 0, "last_interaction": 1, "score": 123.0},
            {"user_id": 3, "product_id": 12, "clicks": 7, "purchases": 0, "views": 0,
             "view_duration_seconds": 0, "last_interaction": 5, "score": 7.0},
        ])

    assert extract_day(engine, local_store, DAY)["interactions"] == 2

    rows = interactions(engine).set_index(["user_id", "product_id"])
    r = rows.loc[(1, 10)]
    assert (r.clicks, r.purchases, r.views, r.view_duration_seconds, r.last_interaction) == (2, 1, 2, 0, last_1)
    assert r.score == pytest.approx(reference_score(2, 1, last_1, END), rel=1e-12)
    r = rows.loc[(2, 11)]
    assert (r.clicks, r.purchases, r.views, r.last_interaction, r.score) == (0, 0, 2, START + 20, 0.0)
    r = rows.loc[(3, 12)]  # untouched
    assert (r.clicks, r.last_interaction, r.score) == (7, 5, 7.0)


def test_refresh_skips_unknown_users_and_products(engine, local_store):
    add_catalog(engine)
    add_events(engine, [
        (1, 10, CLICK, START + 1, None),
        (999, 10, CLICK, START + 2, None),   # unknown user
        (1, 888, PURCHASE, START + 3, 5.0),  # unknown product
        (None, 10, CLICK, START + 4, None),  # null user
        (2, None, CLICK, START + 5, None),   # null product
    ])

    result = extract_day(engine, local_store, DAY)

    assert result["rows"] == 5  # extraction keeps them: the validator rejects the day
    assert result["interactions"] == 1
    assert interactions(engine)[["user_id", "product_id"]].values.tolist() == [[1, 10]]


def test_refresh_statement_also_runs_on_sqlite(sqlite_engine):
    add_catalog(sqlite_engine)
    last = START + 7 * 3600_000
    add_events(sqlite_engine, [
        (1, 10, CLICK, START - 10 * MS_PER_DAY, None),
        (1, 10, PURCHASE, last, 3.0),
        (2, 11, CLICK, START + 1, None),
        (999, 11, CLICK, START + 1, None),
    ])

    assert refresh_interactions(sqlite_engine, DAY) == 2
    assert refresh_interactions(sqlite_engine, DAY) == 2
    rows = interactions(sqlite_engine).set_index(["user_id", "product_id"])
    assert len(rows) == 2
    assert rows.loc[(1, 10)].score == pytest.approx(reference_score(1, 1, last, END), rel=1e-12)
    assert rows.loc[(2, 11)].score == pytest.approx(reference_score(1, 0, START + 1, END), rel=1e-12)


def test_read_day_events_matches_the_partition_and_refuses_datetimes(engine):
    add_catalog(engine)
    add_events(engine, [(1, 10, CLICK, START + 1, None), (2, 11, VIEW, START + 2, None)])
    df = read_day_events(engine, DAY)
    assert df["user_id"].tolist() == [1, 2]
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT event_id FROM user_events ORDER BY 1")).scalars().all()
    assert df["event_id"].tolist() == ids
    with pytest.raises(TypeError, match="datetime.date"):
        read_day_events(engine, dt.datetime(2026, 11, 20))


class _BrokenStore:
    def put_bytes(self, key, data):
        raise OSError("disk full")


def test_a_failed_extraction_is_recorded_and_reraised(engine):
    add_catalog(engine)
    add_events(engine, [(1, 10, CLICK, START + 1, None)])
    with pytest.raises(OSError, match="disk full"):
        extract_day(engine, _BrokenStore(), DAY)
    [step] = get_steps(engine, DAY)
    assert (step["step"], step["status"], step["details"]["error"]) == ("extract", STEP_FAILED, "disk full")
    assert interactions(engine).empty  # nothing refreshed after the failed write
