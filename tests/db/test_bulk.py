"""Bulk writes: every kind of missing value is NULL, on PostgreSQL's COPY path and on SQLite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from recsys.db.bulk import _csv_value, upsert_rows
from recsys.db.models import User, UserEvent

MISSING = [None, float("nan"), np.nan, np.float32("nan"), pd.NaT, np.datetime64("NaT"), pd.NA]


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_every_missing_value_is_null_in_copy_text(value):
    assert _csv_value(value) == "\\N"


@pytest.mark.parametrize("value", [0, 0.0, "", "<NA>", False, "NaN"], ids=repr)
def test_present_values_are_not_missing(value):
    assert _csv_value(value) != "\\N"


def test_integral_floats_are_written_as_integers():
    """An id column that held a NaN is float in pandas; its values must still parse as bigint."""
    assert _csv_value(12.0) == "12" and _csv_value(np.float64(3)) == "3" and _csv_value(1.5) == "1.5"


def events_with_holes() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": pd.array([1, pd.NA, 3], dtype="Int64"),  # nullable integer column
        "product_id": [10.0, np.nan, 30.0],  # an int column that pandas made float
        "event_type": ["CLICK", None, "VIEW"],
        "session_id": pd.array(["s1", pd.NA, None], dtype="string"),
        "timestamp": pd.array([1_700_000_000_000, None, 1_700_000_000_002], dtype="Int64"),
        "price": [1.5, np.nan, None],
        "client_event_id": ["e1", "e2", "e3"],
        "request_id": [None, "r2", pd.NA],
    })


def users_with_holes() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": [1, 2],
        "country": pd.array(["DE", pd.NA], dtype="string"),
        "first_seen_at": pd.to_datetime(["2026-11-01T00:00:00Z", None], utc=True),  # NaT
        "last_seen_at": [pd.NaT, pd.Timestamp("2026-11-02", tz="UTC")],
    })


@pytest.mark.parametrize("backend", ["engine", "sqlite_engine"])
def test_missing_values_are_stored_as_null(backend, request):
    engine = request.getfixturevalue(backend)
    assert upsert_rows(engine, "user_events", events_with_holes(), conflict_cols=["client_event_id"]) == 3
    assert upsert_rows(engine, "users", users_with_holes(), conflict_cols=["user_id"]) == 2
    cols = [UserEvent.user_id, UserEvent.product_id, UserEvent.event_type, UserEvent.session_id,
            UserEvent.timestamp, UserEvent.price, UserEvent.request_id]
    with engine.connect() as conn:
        events = [tuple(r) for r in conn.execute(select(*cols).order_by(UserEvent.client_event_id))]
        users = [tuple(r) for r in conn.execute(
            select(User.user_id, User.country, User.first_seen_at.is_(None), User.last_seen_at.is_(None))
            .order_by(User.user_id))]
    assert events == [
        (1, 10, "CLICK", "s1", 1_700_000_000_000, 1.5, None),
        (None, None, None, None, None, None, "r2"),
        (3, 30, "VIEW", None, 1_700_000_000_002, None, None),
    ]
    assert users == [(1, "DE", False, True), (2, None, True, False)]


@pytest.mark.parametrize("backend", ["engine", "sqlite_engine"])
def test_upserts_on_one_connection_stand_or_fall_together(backend, request):
    """The flusher writes users, impressions and events in one transaction: a refused row undoes all."""
    engine = request.getfixturevalue(backend)
    users = pd.DataFrame({"user_id": [1, 2]})
    bad = pd.DataFrame({"user_id": [3], "product_id": [2**63], "client_event_id": ["x"]})  # beyond BIGINT
    with pytest.raises(Exception):
        with engine.begin() as conn:
            assert upsert_rows(conn, "users", users, conflict_cols=["user_id"]) == 2
            upsert_rows(conn, "user_events", bad, conflict_cols=["client_event_id"])
    with engine.begin() as conn:  # and several upserts in one transaction work (PostgreSQL: one temp table each)
        upsert_rows(conn, "users", users, conflict_cols=["user_id"])
        upsert_rows(conn, "users", pd.DataFrame({"user_id": [2, 3]}), conflict_cols=["user_id"])
    with engine.connect() as conn:
        assert conn.execute(select(User.user_id).order_by(User.user_id)).scalars().all() == [1, 2, 3]


def test_chunks_commit_on_their_own_with_an_engine(engine):
    frame = events_with_holes()
    assert upsert_rows(engine, "user_events", frame, conflict_cols=["client_event_id"], chunk_rows=2) == 3
    assert upsert_rows(engine, "user_events", frame, conflict_cols=["client_event_id"], chunk_rows=2) == 0
