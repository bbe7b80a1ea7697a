"""recsys.drift.data: daily profiles by hand, and the synthetic shop's shifted and stable days."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from recsys.data.shift import shift_day
from recsys.drift.data import FEATURES, activity_band, add_profiles, compare_profiles, day_profile, price_band
from recsys.drift.render import data_report_html
from recsys.timeutil import day_bounds_ms, day_start_ms
from shop_dates import LAST_EVENT_DAY

DAY = dt.date(2026, 11, 20)
T = day_start_ms(DAY) + 3_600_000


def tiny():
    events = pd.DataFrame({
        "user_id": pd.array([1, 1, 1, 2, 3, None], dtype="Int64"),
        "product_id": pd.array([10, 10, 11, 12, 99, 10], dtype="Int64"),
        "event_type": ["VIEW", "CLICK", "VIEW", "PURCHASE", "VIEW", "VIEW"],
        "timestamp": [T] * 6,
    })
    users = pd.DataFrame({"user_id": [1, 2, 3], "device_type": ["mobile", "desktop", None],
                          "country": ["DE", "US", "DE"]})
    created = pd.to_datetime(["2026-11-19", "2025-01-01", "2026-11-08"], utc=True)
    products = pd.DataFrame({"product_id": [10, 11, 12], "category": ["Books", "Toys", "Books"],
                             "price": [5.0, 120.0, 25.0], "created_at": created})
    return events, users, products


def test_profile_of_a_hand_made_day():
    profile = day_profile(*tiny(), DAY, new_product_days=14)
    assert profile["events"] == 6
    assert profile["event_type"] == {"CLICK": 1, "PURCHASE": 1, "VIEW": 4}
    assert profile["category"] == {"Books": 4, "Toys": 1, "unknown": 1}  # product 99 is not in the catalogue
    assert profile["price_band"] == {"<10": 3, "100-250": 1, "25-50": 1, "unknown": 1}
    assert profile["device"] == {"desktop": 1, "mobile": 3, "unknown": 2}  # user 3 has no device, one event no user
    assert profile["country"] == {"DE": 4, "US": 1, "unknown": 1}
    # product 10 is 1 day old, 12 is 13 days old (new at 14), 11 is old
    assert profile["new_product"] == {"new": 4, "not new": 1, "unknown": 1}
    assert profile["activity_histogram"] == {"1": 2, "3": 1}
    assert day_profile(*tiny(), DAY, new_product_days=12)["new_product"] == {"new": 3, "not new": 2, "unknown": 1}


def test_bands():
    assert price_band(pd.Series([9.99, 10.0, 499.0, 500.0, None])).tolist() == [
        "<10", "10-25", "250-500", "500+", "unknown"]
    assert [activity_band(n) for n in (1, 2, 3, 4, 5, 8, 9, 64, 65, 1000)] == [
        "1", "2", "3-4", "3-4", "5-8", "5-8", "9-16", "33-64", "65+", "65+"]


def test_profiles_add_up():
    p = day_profile(*tiny(), DAY, new_product_days=14)
    total = add_profiles([p, p])
    assert total["events"] == 12 and total["category"]["Books"] == 8 and total["activity_histogram"]["3"] == 2


def test_missing_columns_are_named():
    events, users, products = tiny()
    with pytest.raises(ValueError, match="users.device_type"):
        day_profile(events, users.drop(columns="device_type"), products, DAY, 14)


def test_empty_reference_compares_nothing():
    p = day_profile(*tiny(), DAY, new_product_days=14)
    empty = add_profiles([])
    results = compare_profiles(p, empty, 0.2)
    assert [r["feature"] for r in results] == list(FEATURES)
    assert all(r["psi"] is None and not r["drifted"] for r in results)


def profiles(shop, day, days=7):
    def one(d):
        s, e = day_bounds_ms(d)
        ev = shop.events[(shop.events["timestamp"] >= s) & (shop.events["timestamp"] < e)]
        return day_profile(ev, shop.users, shop.products, d, 14)

    return one(day), add_profiles([one(day - dt.timedelta(days=n)) for n in range(days, 0, -1)])


def report_of(results, day=LAST_EVENT_DAY):
    return {"day": day.isoformat(), "events": 1, "psi_threshold": 0.2, "features": results,
            "drifted": [r["feature"] for r in results if r["drifted"]],
            "reference": {"days": 7, "days_with_events": 7, "first": "a", "last": "b", "events": 7}}


def test_a_stable_day_is_quiet(small_shop):
    results = compare_profiles(*profiles(small_shop, LAST_EVENT_DAY), threshold=0.2)
    assert [r["feature"] for r in results if r["drifted"]] == []
    assert max(r["psi"] for r in results) < 0.1
    assert "No feature drifted" in data_report_html(report_of(results))


@pytest.mark.parametrize("shift, feature", [({"category": "Electronics"}, "category"),
                                            ({"device": "desktop"}, "device")])
def test_a_shifted_day_flags_the_shifted_feature(small_shop, shift, feature):
    shop = shift_day(small_shop, LAST_EVENT_DAY, factor=3, seed=1, **shift)
    results = {r["feature"]: r for r in compare_profiles(*profiles(shop, LAST_EVENT_DAY), threshold=0.2)}
    assert results[feature]["drifted"] and results[feature]["psi"] >= 0.2
    assert results[feature]["p_value"] < 1e-6
    moved = results[feature]["values"][0]  # largest change first: the shifted value
    assert moved["value"] == next(iter(shift.values())) and moved["current"] > 1.5 * moved["reference"]
    assert not results["event_type"]["drifted"]
    html = data_report_html(report_of(list(results.values())))
    assert feature in re.search(r"Drifted features: ([^<]*)<", html).group(1).split(", ")
