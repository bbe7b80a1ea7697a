"""Validation of an extracted day: clean days pass; each kind of bad data fails with a readable message."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from recsys.artifacts import partition_key, read_parquet, write_parquet
from recsys.constants import CLICK, IMPRESSION, MS_PER_DAY, PURCHASE, STEP_FAILED, STEP_SUCCESS, VIEW
from recsys.db.models import Product, User, UserEvent
from recsys.pipeline.extract import extract_day
from recsys.pipeline.runs import get_steps
from recsys.pipeline.validate import DataValidationError, flag_bots, validate_day, volume_bounds
from recsys.settings import Settings
from recsys.timeutil import day_bounds_ms

DAY = dt.date(2026, 11, 20)
START, END = day_bounds_ms(DAY)
USERS = list(range(1, 21))
PRODUCTS = list(range(100, 130))
PER_DAY = 40
SETTINGS = Settings(volume_band=0.5, bot_events_per_minute=10)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def clean_events(day: dt.date, n: int, seed: int) -> list[dict]:
    """n valid events spread over ``day`` (known ids, known types, purchases priced)."""
    rng = np.random.default_rng(seed)
    start, _ = day_bounds_ms(day)
    times = np.sort(rng.choice(MS_PER_DAY, size=n, replace=False)) + start
    types = rng.choice([VIEW, VIEW, CLICK, PURCHASE], size=n)
    return [
        {"user_id": int(rng.choice(USERS)), "product_id": int(rng.choice(PRODUCTS)), "event_type": str(t),
         "timestamp": int(ts), "price": round(float(rng.uniform(1, 50)), 2) if t == PURCHASE else None,
         "session_id": f"s{i}"}
        for i, (t, ts) in enumerate(zip(types, times))
    ]


def add_events(engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(UserEvent), rows)


@pytest.fixture
def shop(engine):
    """Known users and products, and 7 days of history of PER_DAY events before DAY."""
    with engine.begin() as conn:
        conn.execute(insert(User), [{"user_id": u} for u in USERS])
        conn.execute(insert(Product), [
            {"product_id": p, "name": f"p{p}", "category": "toys", "price": 10.0,
             "created_at": CREATED, "last_updated_at": CREATED}
            for p in PRODUCTS
        ])
    for back in range(1, 8):
        add_events(engine, clean_events(DAY - dt.timedelta(days=back), PER_DAY, seed=back))
    return engine


def saved_report(store) -> dict:
    return json.loads(store.get_bytes(partition_key("validation", DAY, "report.json")))


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_a_clean_day_passes_and_saves_its_report(request, shop, store_name):
    store = request.getfixturevalue(store_name)
    add_events(shop, clean_events(DAY, PER_DAY, seed=0))
    extract_day(shop, store, DAY)

    result = validate_day(shop, store, DAY, SETTINGS)

    assert result == {
        "success": True, "report_key": "validation/date=2026-11-20/report.json",
        "report_uri": store.uri("validation/date=2026-11-20/report.json"),
        "rows": PER_DAY, "failed": [], "flagged_bots": [],
    }
    report = saved_report(store)
    assert report["success"] is True and report["rows"] == PER_DAY and report["skipped"] == []
    checks = {c["check"]: c for c in report["checks"]}
    assert all(c["success"] for c in checks.values())
    assert {"event_type_known", "timestamp_in_day", "price_non_negative", "purchase_has_price",
            "product_id_known", "user_id_known", "volume_in_trailing_band", "user_id_not_null"} <= set(checks)
    assert checks["volume_in_trailing_band"]["kwargs"] == {"min_value": 20, "max_value": 60}
    assert report["volume"]["trailing"] == {"days_with_events": 7, "window_days": 7, "mean": PER_DAY,
                                            "impressions_today": 0}
    [step] = [s for s in get_steps(shop, DAY) if s["step"] == "validate"]
    assert step["status"] == STEP_SUCCESS and step["details"]["rows"] == PER_DAY


def _unknown_product(rows):
    rows[3]["product_id"] = 777
    rows[9]["product_id"] = 778
    return rows


def _unknown_type(rows):
    rows[5]["event_type"] = "TELEPORT"
    return rows


def _negative_price(rows):
    rows[7].update(event_type=PURCHASE, price=-5.0)
    return rows


def _null_user(rows):
    rows[2]["user_id"] = None
    return rows


def _unpriced_purchase(rows):
    rows[4].update(event_type=PURCHASE, price=None)
    return rows


def _far_too_many(rows):
    return rows + clean_events(DAY, 5 * PER_DAY, seed=99)


@pytest.mark.parametrize(
    ("mutate", "check", "expected_text"),
    [
        (_unknown_product, "product_id_known",
         ["2 of 40 rows unexpected (5.00%)", "sample product_id: [777, 778]", "products table"]),
        (_unknown_type, "event_type_known", ["1 of 40 rows unexpected", "sample event_type: ['TELEPORT']"]),
        (_negative_price, "price_non_negative",
         ["1 of 40 rows unexpected (2.50%)", "sample price: [-5.0]", "price is >= 0"]),
        (_null_user, "user_id_not_null",
         ["1 of 40 rows unexpected", "user_id is never null", "sample event_id: [283]"]),
        (_unpriced_purchase, "purchase_has_price", ["every PURCHASE has a price", "1 of", "sample event_id: [285]"]),
        (_far_too_many, "volume_in_trailing_band", ["observed 240", "allowed 20..60", "trailing mean 40.0"]),
    ],
)
def test_bad_day_fails_with_a_readable_message_and_a_saved_report(shop, local_store, mutate, check, expected_text):
    add_events(shop, mutate(clean_events(DAY, PER_DAY, seed=0)))
    extract_day(shop, local_store, DAY)

    with pytest.raises(DataValidationError) as caught:
        validate_day(shop, local_store, DAY, SETTINGS)

    message = str(caught.value)
    report_uri = local_store.uri("validation/date=2026-11-20/report.json")
    assert message.splitlines()[0].startswith("Data validation failed for 2026-11-20: 1 of ")
    assert f"  - {check} (expect_" in message
    for text in expected_text:
        assert text in message
    assert message.splitlines()[-1] == f"Full report: {report_uri}"
    assert isinstance(caught.value, ValueError) and caught.value.report_uri == report_uri
    report = saved_report(local_store)
    assert report["success"] is False
    assert [c["check"] for c in report["checks"] if not c["success"]] == [check]
    [step] = [s for s in get_steps(shop, DAY) if s["step"] == "validate"]
    assert step["status"] == STEP_FAILED and step["details"]["failed"] == [check]


def test_timestamps_outside_the_day_fail(shop, local_store):
    # extract never writes such rows; a partition written by anything else is checked all the same
    df = pd.DataFrame(clean_events(DAY, PER_DAY, seed=0)).assign(event_id=range(1, PER_DAY + 1))
    df.loc[0, "timestamp"] = START - 1
    df.loc[1, "timestamp"] = END
    write_parquet(local_store, partition_key("events", DAY, "events.parquet"), df)

    with pytest.raises(DataValidationError, match="timestamp_in_day") as caught:
        validate_day(shop, local_store, DAY, SETTINGS)

    assert f"[{START - 1}, {END}]" in str(caught.value)
    assert "2 of 40 rows unexpected" in str(caught.value)
    assert saved_report(local_store)["success"] is False


def test_several_failures_are_all_listed(shop, local_store):
    add_events(shop, _null_user(_unknown_type(_unknown_product(clean_events(DAY, PER_DAY, seed=0)))))
    extract_day(shop, local_store, DAY)
    with pytest.raises(DataValidationError) as caught:
        validate_day(shop, local_store, DAY, SETTINGS)
    assert set(caught.value.report and [c["check"] for c in caught.value.report["checks"] if not c["success"]]) == {
        "product_id_known", "event_type_known", "user_id_not_null"
    }
    assert str(caught.value).startswith("Data validation failed for 2026-11-20: 3 of ")


def test_without_trailing_history_the_volume_check_is_skipped_and_said_so(engine, local_store):
    with engine.begin() as conn:
        conn.execute(insert(User), [{"user_id": u} for u in USERS])
        conn.execute(insert(Product), [
            {"product_id": p, "name": "x", "category": "toys", "price": 1.0,
             "created_at": CREATED, "last_updated_at": CREATED} for p in PRODUCTS
        ])
    add_events(engine, clean_events(DAY, 3, seed=1))
    extract_day(engine, local_store, DAY)

    assert validate_day(engine, local_store, DAY, SETTINGS)["success"] is True

    report = saved_report(local_store)
    assert "volume_in_trailing_band" not in {c["check"] for c in report["checks"]}
    assert report["skipped"][0]["check"] == "volume_in_trailing_band"
    assert "no trailing history" in report["skipped"][0]["reason"]
    [step] = [s for s in get_steps(engine, DAY) if s["step"] == "validate"]
    assert step["details"]["volume_check_skipped"] is True


def test_bot_like_users_are_flagged_as_a_warning(shop, local_store):
    rows = clean_events(DAY, PER_DAY - 21, seed=0)
    t0 = START + 3600_000 + 30_000  # straddles a minute boundary: a sliding 60 s window, not clock minutes
    burst = {"event_type": VIEW, "price": None, "session_id": "burst"}
    rows += [{**burst, "user_id": 5, "product_id": 100, "timestamp": t0 + i * 5_000} for i in range(11)]
    rows += [{**burst, "user_id": 6, "product_id": 101, "timestamp": t0 + i * 6_000} for i in range(10)]
    add_events(shop, rows)
    extract_day(shop, local_store, DAY)

    result = validate_day(shop, local_store, DAY, SETTINGS)

    assert result["success"] is True
    assert result["flagged_bots"] == [5]  # 11 events in 55 s; user 6 has exactly the limit (10)
    assert saved_report(local_store)["flagged_bots"] == [{"user_id": 5, "max_events_per_minute": 11}]


def test_a_missing_partition_is_a_clear_error(engine, local_store):
    with pytest.raises(FileNotFoundError, match="run extract first"):
        validate_day(engine, local_store, DAY, SETTINGS)
    [step] = get_steps(engine, DAY)
    assert (step["step"], step["status"]) == ("validate", STEP_FAILED)
    assert step["details"]["error_type"] == "FileNotFoundError"


def _slow_bots(df: pd.DataFrame, limit: int) -> list[dict]:
    out = []
    for user, ts in df.dropna().groupby("user_id")["timestamp"]:
        ts = sorted(ts)
        best = max(sum(1 for u in ts if t <= u < t + 60_000) for t in ts)
        if best > limit:
            out.append({"user_id": int(user), "max_events_per_minute": best})
    return sorted(out, key=lambda b: -b["max_events_per_minute"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flag_bots_matches_a_slow_reference(seed):
    rng = np.random.default_rng(seed)
    n = 600
    df = pd.DataFrame({
        "user_id": pd.array(rng.integers(1, 15, n), dtype="Int64"),
        "timestamp": pd.array(START + rng.integers(0, 10 * 60_000, n), dtype="Int64"),
    })
    df.loc[rng.choice(n, 20, replace=False), "user_id"] = pd.NA
    expected = _slow_bots(df, limit=8)
    got = flag_bots(df, 8)
    assert expected  # the data does contain bursts
    assert sorted(got, key=lambda b: (-b["max_events_per_minute"], b["user_id"])) == sorted(
        expected, key=lambda b: (-b["max_events_per_minute"], b["user_id"])
    )


def test_volume_bounds_round_inwards_but_never_empty():
    assert volume_bounds(40, 0.5) == (20, 60)
    assert volume_bounds(10.5, 0.25) == (8, 13)
    assert volume_bounds(1.4, 0.25) == (1, 2)  # no whole count inside [1.05, 1.75]: widened, never empty


def test_the_synthetic_shop_last_day_passes(request, local_store):
    pytest.importorskip("recsys.data.synthetic")
    pytest.importorskip("recsys.data.loading")
    engine = request.getfixturevalue("shop_engine")
    day = request.getfixturevalue("small_shop").events["timestamp"].max()
    day = dt.datetime.fromtimestamp(int(day) / 1000, tz=dt.timezone.utc).date()

    extract_day(engine, local_store, day)
    result = validate_day(engine, local_store, day, Settings())

    assert result["success"] is True and result["rows"] > 0
    assert read_parquet(local_store, partition_key("events", day, "events.parquet")).shape[0] == result["rows"]


def test_flag_bots_window_is_sixty_seconds_half_open():
    t = START + 1_000
    df = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2],
        "timestamp": [t, t + 30_000, t + 60_000, t, t + 30_000, t + 59_999],
    })
    assert flag_bots(df, 2) == [{"user_id": 2, "max_events_per_minute": 3}]
    assert flag_bots(df, 3) == []
    assert flag_bots(df.iloc[:0], 1) == []


def test_importing_the_module_does_not_import_great_expectations():
    code = "import sys, recsys.pipeline.validate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _impressions(day: dt.date, n: int) -> list[dict]:
    start, _ = day_bounds_ms(day)
    return [{"user_id": USERS[i % len(USERS)], "product_id": PRODUCTS[i % len(PRODUCTS)], "event_type": IMPRESSION,
             "timestamp": start + 1000 * (i + 1), "price": None, "session_id": "imp"} for i in range(n)]


def test_impressions_do_not_count_in_the_volume_band(shop, local_store):
    """The day A/B impression logging starts, the behaviour volume is unchanged: the day passes."""
    add_events(shop, clean_events(DAY, PER_DAY, seed=0) + _impressions(DAY, 5 * PER_DAY))
    extract_day(shop, local_store, DAY)
    assert validate_day(shop, local_store, DAY, SETTINGS)["success"]


def test_impressions_in_the_history_do_not_inflate_the_trailing_mean(shop, local_store):
    for back in range(1, 8):
        add_events(shop, _impressions(DAY - dt.timedelta(days=back), 10 * PER_DAY))
    add_events(shop, clean_events(DAY, PER_DAY, seed=0))
    extract_day(shop, local_store, DAY)
    assert validate_day(shop, local_store, DAY, SETTINGS)["success"]
