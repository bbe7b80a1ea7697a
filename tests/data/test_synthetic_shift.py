"""recsys.data.shift: a shifted day of the synthetic shop, and nothing else changed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from recsys.data.shift import shift_day
from recsys.timeutil import day_bounds_ms
from shop_dates import LAST_EVENT_DAY

DAY = LAST_EVENT_DAY


def in_day(events, day=DAY):
    start, end = day_bounds_ms(day)
    return events[(events["timestamp"] >= start) & (events["timestamp"] < end)]


def category_events(shop, category="Electronics"):
    cats = shop.products.set_index("product_id")["category"]
    day = in_day(shop.events)
    return day[day["product_id"].map(cats) == category]


def test_the_category_share_of_the_day_grows_by_about_the_factor(small_shop):
    before = small_shop.events.copy()
    shifted = shift_day(small_shop, DAY, factor=3, category="Electronics", seed=1)
    pd.testing.assert_frame_equal(small_shop.events, before)  # the given shop is not changed
    ratio = len(category_events(shifted)) / len(category_events(small_shop))
    assert 2.5 < ratio < 3.5
    other_categories = [len(in_day(s.events)) - len(category_events(s)) for s in (shifted, small_shop)]
    assert other_categories[0] == other_categories[1]
    # other days untouched, ids unique, clones are new users with their events on the day only
    other_days = [len(s.events) - len(in_day(s.events)) for s in (shifted, small_shop)]
    assert other_days[0] == other_days[1]
    assert shifted.events["client_event_id"].is_unique
    clones = shifted.users[shifted.users["user_id"] > small_shop.users["user_id"].max()]
    assert len(clones) > 0 and clones["user_id"].is_unique
    clone_events = shifted.events[shifted.events["user_id"].isin(clones["user_id"])]
    assert len(in_day(clone_events)) == len(clone_events)
    assert shifted.user_taste.shape[0] == len(shifted.users)
    assert (shifted.events["timestamp"].diff().dropna() >= 0).all()


def test_a_device_shift_copies_whole_users_of_that_device(small_shop):
    shifted = shift_day(small_shop, DAY, factor=2, device="desktop", seed=2)
    def desktop_share(shop):
        devices = in_day(shop.events)["user_id"].map(shop.users.set_index("user_id")["device_type"])
        return (devices == "desktop").mean()

    assert desktop_share(shifted) > desktop_share(small_shop) + 0.1
    clones = shifted.users[shifted.users["user_id"] > small_shop.users["user_id"].max()]
    assert set(clones["device_type"]) == {"desktop"}


def test_a_factor_below_one_drops_events_and_the_same_seed_gives_the_same_shop(small_shop):
    a = shift_day(small_shop, DAY, factor=0.3, category="Books", seed=5)
    b = shift_day(small_shop, DAY, factor=0.3, category="Books", seed=5)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert len(category_events(a, "Books")) < 0.6 * len(category_events(small_shop, "Books"))
    assert len(a.users) == len(small_shop.users)


@pytest.mark.parametrize("kwargs, words", [
    ({"factor": 3}, "category, a device"),
    ({"factor": 3, "category": "Spaceships"}, "unknown category"),
    ({"factor": 3, "device": "toaster"}, "unknown device"),
    ({"factor": 1, "category": "Books"}, "other than 1"),
    ({"factor": -2, "category": "Books"}, "positive"),
])
def test_bad_arguments_are_refused(small_shop, kwargs, words):
    with pytest.raises(ValueError, match=words):
        shift_day(small_shop, DAY, **kwargs)


def test_a_day_without_events_changes_nothing(small_shop):
    shifted = shift_day(small_shop, DAY + dt.timedelta(days=5), factor=3, category="Books")
    assert len(shifted.events) == len(small_shop.events) and len(shifted.users) == len(small_shop.users)
    np.testing.assert_array_equal(shifted.user_taste, small_shop.user_taste)
