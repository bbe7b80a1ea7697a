"""The synthetic shop: determinism, schema, ranges, and hidden tastes that really drive behaviour."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from recsys.constants import DEVICES, EVENT_TYPES, MS_PER_DAY, PURCHASE, RETURN, VIEW
from recsys.data import vocab
from recsys.data.synthetic import PRODUCT_COLUMNS, SHOP_EVENT_COLUMNS, USER_COLUMNS, generate_shop
from recsys.timeutil import day_bounds_ms, day_start_ms

END = dt.date(2026, 11, 20)
DAYS = 21  # as the small_shop fixture of conftest


def _ms(stamps: pd.Series) -> pd.Series:
    return (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)


def _window(days=DAYS, end=END):
    return day_start_ms(end - dt.timedelta(days=days - 1)), day_bounds_ms(end)[1]


def test_same_seed_same_shop_and_other_seed_differs():
    args = dict(n_users=400, n_products=120, days=10, end_date=END)
    a, b, c = generate_shop(seed=3, **args), generate_shop(seed=3, **args), generate_shop(seed=4, **args)
    for name in ("users", "products", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.user_taste, b.user_taste)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not a.events[["user_id", "product_id"]].equals(c.events[["user_id", "product_id"]])
    assert c.events["client_event_id"].iloc[0] == "syn-4-0"


def test_columns_and_dtypes(small_shop):
    assert tuple(small_shop.users.columns) == USER_COLUMNS
    assert tuple(small_shop.products.columns) == PRODUCT_COLUMNS
    assert tuple(small_shop.events.columns) == SHOP_EVENT_COLUMNS
    ev, pr, us = small_shop.events, small_shop.products, small_shop.users
    for col in ("user_id", "product_id", "timestamp"):
        assert ev[col].dtype == np.int64
    assert ev["price"].dtype == np.float64
    assert pr["in_stock"].dtype == bool and pr["price"].dtype == np.float64
    for frame, col in ((us, "first_seen_at"), (us, "last_seen_at"), (pr, "created_at"), (pr, "last_updated_at")):
        assert str(frame[col].dt.tz) == "UTC"
    assert small_shop.user_taste.shape == (len(us), small_shop.item_factors.shape[1])
    assert small_shop.item_factors.shape[0] == len(pr)


def test_ids_and_value_ranges(small_shop):
    us, pr, ev = small_shop.users, small_shop.products, small_shop.events
    assert us["user_id"].tolist() == list(range(1, len(us) + 1))
    assert pr["product_id"].tolist() == list(range(1, len(pr) + 1))
    assert ev["user_id"].between(1, len(us)).all() and ev["product_id"].between(1, len(pr)).all()
    start, end = _window()
    assert ev["timestamp"].between(start, end - 1).all()
    assert ev["timestamp"].is_monotonic_increasing
    assert set(ev["event_type"]) <= set(EVENT_TYPES) and {VIEW, PURCHASE, RETURN} <= set(ev["event_type"])
    priced = ev["event_type"].isin([PURCHASE, RETURN])
    assert (ev.loc[priced, "price"] > 0).all() and ev.loc[ev["event_type"] == VIEW, "price"].isna().all()
    assert ev["client_event_id"].is_unique and ev["client_event_id"].str.fullmatch(r"syn-7-\d+").all()
    assert ev["session_id"].notna().all()
    assert pr["margin"].between(0.05, 0.6).all() and (pr["price"] > 0).all()
    assert 0.8 < pr["in_stock"].mean() < 0.97
    assert 10 <= pr["category"].nunique() <= 15


def test_users_countries_languages_devices(small_shop):
    us = small_shop.users
    allowed = {c[0]: {c[2], c[3]} for c in vocab.COUNTRIES}
    assert set(us["country"]) <= set(allowed) and us["country"].nunique() >= 6
    assert all(lang in allowed[c] for c, lang in zip(us["country"], us["language"]))
    assert set(us["device_type"]) == set(DEVICES)


def test_seen_times_match_events_and_some_users_are_new(small_shop):
    us, ev = small_shop.users.set_index("user_id"), small_shop.events
    span = ev.groupby("user_id")["timestamp"].agg(["min", "max"])
    first_ms, last_ms = _ms(us["first_seen_at"]), _ms(us["last_seen_at"])
    assert (first_ms[span.index] <= span["min"]).all()
    assert (last_ms[span.index] == span["max"]).all()
    assert (first_ms <= last_ms).all()
    start, end = _window()
    new_users = first_ms >= end - 5 * MS_PER_DAY
    assert 0.02 < new_users.mean() < 0.15
    assert new_users[span.index].sum() > 0  # new users with events


def test_activity_is_heavy_tailed(small_shop):
    per_user = small_shop.events.groupby("user_id").size()
    assert per_user.max() >= 50 and (per_user >= 50).sum() >= 10
    assert per_user.median() < 25 and (per_user <= 5).sum() >= 100


def test_new_arrivals_and_products_without_events(small_shop):
    pr, ev = small_shop.products, small_shop.events
    start, end = _window()
    created_ms = _ms(pr["created_at"])
    new = pr[created_ms >= end - 5 * MS_PER_DAY]
    assert 0.03 < len(new) / len(pr) < 0.08
    assert (created_ms < start).mean() > 0.9  # most products are old
    with_events = set(ev["product_id"])
    assert set(new["product_id"]) & with_events, "some new arrivals already have events"
    assert set(new["product_id"]) - with_events, "some new arrivals have no events at all"
    seen_at = created_ms.to_numpy()[ev["product_id"].to_numpy() - 1]
    assert (ev["timestamp"].to_numpy() >= seen_at).all(), "no event before the product exists"


def test_every_return_follows_a_purchase_of_the_same_item(small_shop):
    ev = small_shop.events
    buys = ev[ev["event_type"] == PURCHASE].groupby(["user_id", "product_id"])["timestamp"].min()
    rets = ev[ev["event_type"] == RETURN]
    assert len(rets) > 0
    first_buy = buys.reindex(pd.MultiIndex.from_frame(rets[["user_id", "product_id"]])).to_numpy()
    assert not np.isnan(first_buy).any()
    assert (rets["timestamp"].to_numpy() > first_buy).all()


def test_hidden_taste_drives_purchases_far_beyond_popularity(small_shop):
    """Users buy mostly in the categories their hidden taste prefers, far more than popularity explains."""
    pr, ev = small_shop.products, small_shop.events
    cats = pd.factorize(pr["category"])[0]
    affinity = small_shop.user_taste @ small_shop.item_factors.T
    per_cat = np.stack([affinity[:, cats == c].mean(axis=1) for c in range(cats.max() + 1)], axis=1)
    top2 = np.argsort(-per_cat, axis=1)[:, :2]
    buys = ev[ev["event_type"] == PURCHASE]
    users, cat_of_buy = buys["user_id"].to_numpy() - 1, cats[buys["product_id"].to_numpy() - 1]
    in_top2 = (top2[users] == cat_of_buy[:, None]).any(axis=1).mean()
    share = np.bincount(cat_of_buy, minlength=cats.max() + 1) / len(cat_of_buy)
    expected_by_popularity = share[top2[users]].sum(axis=1).mean()
    assert in_top2 > 0.7
    assert in_top2 > 2.5 * expected_by_popularity


def test_affinity_raises_conversion(small_shop):
    """Among viewed items, purchased ones have a clearly higher hidden affinity."""
    ev = small_shop.events
    u, i = ev["user_id"].to_numpy() - 1, ev["product_id"].to_numpy() - 1
    aff = np.einsum("ij,ij->i", small_shop.user_taste[u], small_shop.item_factors[i])
    viewed, bought = aff[ev["event_type"].to_numpy() == VIEW], aff[ev["event_type"].to_numpy() == PURCHASE]
    assert bought.mean() > viewed.mean() + 0.5 * viewed.std()


def test_name_style_words_carry_hidden_signal(small_shop):
    """Products sharing a style word (first name token) have more similar latent vectors."""
    pr, f = small_shop.products, small_shop.item_factors
    style = pr["name"].str.split().str[0].to_numpy()
    cat = pr["category"].to_numpy()
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    sim = unit @ unit.T
    other_cat = cat[:, None] != cat[None, :]
    same_style = (style[:, None] == style[None, :]) & other_cat
    diff_style = (style[:, None] != style[None, :]) & other_cat
    assert sim[same_style].mean() > sim[diff_style].mean() + 0.15


@pytest.mark.parametrize(
    "bad",
    [dict(n_users=0), dict(n_products=-3), dict(days=1.5), dict(n_users=True), dict(seed=-1),
     dict(seed="7"), dict(end_date=dt.datetime(2026, 11, 20)), dict(end_date="2026-11-20")],
)
def test_bad_arguments_raise_value_error(bad):
    args = dict(n_users=10, n_products=10, days=2, seed=1, end_date=END) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate_shop(**args)


def test_tiny_shop_works():
    shop = generate_shop(n_users=1, n_products=1, days=1, seed=0, end_date=END)
    assert len(shop.users) == 1 and len(shop.products) == 1 and len(shop.events) >= 1


def test_medium_shop_generates_fast():
    t0 = time.perf_counter()
    shop = generate_shop(n_users=20_000, n_products=2_000, days=30, seed=11, end_date=END)
    elapsed = time.perf_counter() - t0
    assert len(shop.events) > 300_000
    assert elapsed < 20, f"20K users x 2K products x 30 days took {elapsed:.1f}s"


def _digest(shop) -> str:
    import hashlib

    h = hashlib.sha256()
    for frame in (shop.events, shop.users, shop.products):
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        h.update(",".join(frame.columns).encode())
    return h.hexdigest()


def test_the_default_shop_is_unchanged_byte_for_byte_by_the_burst_option():
    args = dict(n_users=200, n_products=50, days=20, seed=3, end_date=END)
    # the digest of this shop generated before the burst option existed (commit 33ce788)
    assert _digest(generate_shop(**args)) == "7bdca9e4b2a1baba44f32cbca8dcd7ef80f73f9eb73d35b84ea73022da34fe90"
    assert _digest(generate_shop(**args, burst_days=None)) == _digest(generate_shop(**args))


def test_with_burst_days_each_user_is_active_in_one_burst():
    args = dict(n_users=600, n_products=80, days=60, seed=1, end_date=END)
    plain, bursty = generate_shop(**args), generate_shop(**args, burst_days=3)
    assert _digest(bursty) == _digest(generate_shop(**args, burst_days=3))  # seeded
    assert bursty.products.equals(plain.products) and bursty.users["country"].equals(plain.users["country"])
    shopping = bursty.events[bursty.events["event_type"] != RETURN]  # a return comes days after the purchase
    spans = shopping.groupby("user_id")["timestamp"].agg(lambda t: (t.max() - t.min()) / MS_PER_DAY)
    assert spans.max() <= 3.01  # sessions start within the burst and last minutes
    plain_spans = plain.events.groupby("user_id")["timestamp"].agg(lambda t: (t.max() - t.min()) / MS_PER_DAY)
    assert plain_spans.median() > 20  # without bursts users come back over the whole period
    first_day = shopping.groupby("user_id")["timestamp"].min() // MS_PER_DAY
    assert first_day.nunique() > 40  # the bursts are spread over the period
    start, end = _window(60)
    assert shopping["timestamp"].min() >= start and bursty.events["timestamp"].max() < end
    with pytest.raises(ValueError, match="burst_days"):
        generate_shop(**args, burst_days=0)
