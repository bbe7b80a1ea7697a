"""The A/B results aggregated by the database against the pandas computation they replace
(``results_reference.py``, the code before), on the same rows, on PostgreSQL and SQLite:
random traffic with the edge cases of attribution (window and skew boundaries, request ids
forged, signed but unknown, shared by two answers or missing, duplicate clicks, purchases
without price, products shown twice in one list, empty lists, impressions without an arm),
empty arms and an empty test."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from sqlalchemy import insert

from ab_helpers import SIGNER
import results_reference as ref
from recsys.abtest import results as R
from recsys.abtest import service, store
from recsys.serving.assignment import assign_arm
from recsys.constants import ARMS
from recsys.db.models import ABImpression, UserEvent

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
START = NOW - dt.timedelta(hours=2)
WINDOW_S = 600
SKEW_MS = R.ATTRIBUTION_SKEW_MS


@pytest.fixture
def settings(ab_settings):
    return ab_settings.model_copy(update={"ab_attribution_window_seconds": WINDOW_S})


def begin(engine, settings, hours=3.0, fraction=0.3) -> dict:
    return service.start_test(engine, treatment_model_id="m-treat", control_model_id="m-control",
                              duration_hours=hours, treatment_fraction=fraction, now=START, settings=settings)


def ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def traffic(test: dict, seed: int, arms=("control", "treatment"), n_impressions=500, n_events=700,
            nan_prices: bool = False) -> tuple[list[dict], list[dict]]:
    """Impressions (distinct timestamps, so that no two compete at the same instant) and events around them."""
    rng = random.Random(seed)
    lo, hi = ms(START) - 10 * 60_000, ms(NOW) + 10 * 60_000  # some rows before the start and after the cut-off
    users = [u for u in range(1, 400) if assign_arm(test["test_id"], u, test["treatment_fraction"]) in arms][:70]
    imps = []
    for k, ts in enumerate(sorted(rng.sample(range(lo, hi), n_impressions))):
        user = rng.choice(users)
        products = rng.sample(range(1, 41), rng.randint(0, 5))
        if products and rng.random() < 0.1:
            products.append(products[0])  # shown twice in one list
        same_user = [i for i in imps[-30:] if i["user_id"] == user and i["request_id"]]
        rid = (same_user[-1]["request_id"] if same_user and rng.random() < 0.1  # a client that resent an id
               else None if rng.random() < 0.1 else SIGNER.new())
        arm = None if rng.random() < 0.02 else assign_arm(test["test_id"], user, test["treatment_fraction"])
        imps.append({"impression_id": f"{ts}-{k}", "request_id": rid, "user_id": user, "timestamp": ts,
                     "test_id": test["test_id"], "arm": arm, "model_id": None, "source": "personalized",
                     "products": products})
    window_ms = WINDOW_S * 1000
    offsets = [window_ms, window_ms + 1, -SKEW_MS, -SKEW_MS - 1, 0, 1, -1]  # the boundaries, inclusive or not
    events = []
    for _ in range(n_events):
        imp = rng.choice(imps)
        product = rng.choice(imp["products"]) if imp["products"] and rng.random() < 0.8 else rng.randint(1, 40)
        offset = rng.choice(offsets) if rng.random() < 0.3 else rng.randint(-2 * SKEW_MS, window_ms + 120_000)
        kind = rng.choice(["CLICK", "CLICK", "PURCHASE", "VIEW"])
        named = rng.random()
        rid = (imp["request_id"] if named < 0.55 else None if named < 0.75
               else "f" * 32 if named < 0.8 else rng.choice(["0123456789abcdef" * 2, "not-signed"]) if named < 0.85
               else SIGNER.new())  # forged, malformed, or signed but never shown
        price = None if kind != "PURCHASE" or rng.random() < 0.1 else round(rng.uniform(1, 99), 2)
        if nan_prices and kind == "PURCHASE" and rng.random() < 0.1:
            price = float("nan")
        event = {"user_id": imp["user_id"], "product_id": product, "event_type": kind,
                 "timestamp": imp["timestamp"] + offset, "price": price, "request_id": rid}
        events.append(event)
        if rng.random() < 0.1:
            events.append(dict(event))  # a duplicate click (or purchase): both count
    events += [{"user_id": 9999, "product_id": 3, "event_type": "CLICK", "timestamp": ms(START) + 5,
                "price": None, "request_id": None},  # a user the test never showed a list to
               {"user_id": users[0], "product_id": None, "event_type": "CLICK", "timestamp": ms(START) + 5,
                "price": None, "request_id": None}]
    return imps, events


def seed(engine, imps: list[dict], events: list[dict]) -> None:
    with engine.begin() as conn:
        if imps:
            conn.execute(insert(ABImpression), imps)
        if events:
            conn.execute(insert(UserEvent), events)


def reference_results(engine, test_id: int, as_of: dt.datetime) -> dict:
    """What ``compute_results`` answered before: every row of the test read into pandas."""
    test = store.get_test(engine, test_id)
    cutoff = min(as_of, test["end_at"])
    start_ms, end_ms = ms(test["start_at"]), max(ms(cutoff), ms(test["start_at"]) + 1)
    return ref.summarize(ref.load_impressions(engine, test_id, start_ms, end_ms),
                         ref.load_events(engine, test_id, start_ms, end_ms),
                         treatment_fraction=test["treatment_fraction"], config=test["results"]["config"],
                         start_ms=start_ms, end_ms=end_ms, trusted=SIGNER.verify)


def assert_same(got, want, path="results"):
    """Equal: integers, strings and None exactly; floats to 1e-9 (the database sums revenue in another
    order, and the design effect is computed from exact sums instead of numpy's float ones)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float), f"{path}: {got!r} is not a float like {want!r}"
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12) or (math.isnan(got) and math.isnan(want)), \
            f"{path}: {got!r} != {want!r}"
    else:
        assert type(got) is type(want) and got == want, f"{path}: {got!r} != {want!r}"


def compare(engine, settings, test_id: int, as_of: dt.datetime) -> dict:
    got = R.compute_results(engine, test_id, as_of, settings)
    want = reference_results(engine, test_id, as_of)
    assert_same({k: got[k] for k in want}, want)
    return got


@pytest.mark.parametrize("rng_seed", [1, 2, 3])
def test_random_traffic_gives_the_results_of_the_pandas_computation(world, settings, rng_seed):
    test = begin(world, settings)
    imps, events = traffic(test, rng_seed, nan_prices=world.dialect.name == "postgresql")
    seed(world, imps, events)
    for as_of in (START + dt.timedelta(minutes=17), NOW, NOW + dt.timedelta(hours=5)):  # mid-test, now, past the end
        got = compare(world, settings, test["test_id"], as_of)
    arms = got["arms"]
    assert arms["control"]["users"] > 10 and arms["treatment"]["users"] > 10  # both arms have traffic
    assert 0 < got["attributed"]["clicks"] < got["attributed"]["events"]  # some attributed, some not
    assert arms["control"]["purchases"] > 0 and arms["treatment"]["design_effect"] >= 1.0


def test_an_empty_arm_and_an_empty_test(world, settings):
    test = begin(world, settings)
    empty = compare(world, settings, test["test_id"], NOW)
    assert empty["arms"]["control"]["impressions"] == 0 and empty["ctr_test"]["pvalue"] == 1.0
    seed(world, *traffic(test, 7, arms=("control",), n_impressions=200, n_events=300))
    got = compare(world, settings, test["test_id"], NOW)
    assert got["arms"]["treatment"]["users"] == 0 and got["arms"]["control"]["users"] > 0


def test_attribution_rules_one_by_one(world, settings):
    """A hand-made case per rule, with the counts spelled out (the comparison with pandas on top)."""
    test = begin(world, settings)
    t0, window_ms, tid = ms(START) + 60_000, WINDOW_S * 1000, test["test_id"]
    control = next(u for u in range(1, 100) if assign_arm(tid, u, 0.3) == "control")
    ra, rb = SIGNER.new(), SIGNER.new()
    imps = [
        {"impression_id": "a", "request_id": ra, "user_id": control, "timestamp": t0, "test_id": tid,
         "arm": "control", "model_id": None, "source": None, "products": [1, 2, 2]},
        {"impression_id": "b", "request_id": rb, "user_id": control, "timestamp": t0 + 120_000, "test_id": tid,
         "arm": "control", "model_id": None, "source": None, "products": [1]},
    ]

    def ev(product, offset, rid=None, kind="CLICK", price=None):
        return {"user_id": control, "product_id": product, "event_type": kind, "timestamp": t0 + offset,
                "price": price, "request_id": rid}

    events = [
        ev(1, 200_000, rid=ra),  # by request id to a, although b is the latest impression showing product 1
        ev(1, 200_000, rid=ra),  # the same click again: a has 2 clicks, 1 clicked impression
        ev(2, window_ms),  # the window's far edge: still a
        ev(2, window_ms + 1),  # just past it: nothing
        ev(1, 120_000 - SKEW_MS),  # a clock 30 s behind: b
        ev(1, 120_000 - SKEW_MS - 1),  # 1 ms more: a (the latest impression before it)
        ev(1, 130_000, rid="f" * 32),  # forged id: nothing, not even by window
        ev(1, 140_000, rid=SIGNER.new()),  # signed but never shown: by window, b
        ev(2, 150_000, kind="PURCHASE", price=12.5),  # bought by window: a
        ev(2, 160_000, rid=rb, kind="PURCHASE"),  # b never showed 2: by window, a (no price: 0 revenue)
    ]
    seed(world, imps, events)
    got = compare(world, settings, tid, NOW)
    arm = got["arms"]["control"]
    assert (arm["impressions"], arm["clicked_impressions"], arm["clicks"]) == (2, 2, 6)
    assert (arm["purchases"], arm["buyers"], arm["revenue"]) == (2, 1, 12.5)
    assert got["attributed"] == {"clicks": 6, "purchases": 2, "events": 10}


def test_the_rows_that_reach_the_worker_do_not_grow_with_the_test(ab_world, settings):
    """A refresh reads aggregates, never the test's impressions: the rows PostgreSQL sends back are the
    request ids the events name (checked for forgery) and a bounded number of counts."""
    from sqlalchemy import event

    test = begin(ab_world, settings)
    imps, events = [], []
    for k in range(4000):
        rid = SIGNER.new()
        imps.append({"impression_id": f"big-{k}", "request_id": rid, "user_id": 1 + k % 500,
                     "timestamp": ms(START) + 1_000 * k, "test_id": test["test_id"], "arm": "control",
                     "model_id": None, "source": None, "products": list(range(1, 11))})
        if k % 40 == 0:
            events.append({"user_id": 1 + k % 500, "product_id": 3, "event_type": "CLICK",
                           "timestamp": ms(START) + 1_000 * k + 500, "price": None, "request_id": rid})
    seed(ab_world, imps, events)
    fetched = []

    def count_rows(conn, cursor, statement, parameters, context, executemany):
        fetched.append(max(cursor.rowcount, 0))

    event.listen(ab_world, "after_cursor_execute", count_rows)
    try:
        got = R.compute_results(ab_world, test["test_id"], NOW, settings)
    finally:
        event.remove(ab_world, "after_cursor_execute", count_rows)
    assert got["arms"]["control"]["impressions"] == 4000 and got["arms"]["control"]["clicks"] == 100
    counts = 2 * 3 * R.MAX_POINTS + len(ARMS) + 1  # per arm and step, per arm, the events
    assert sum(fetched) <= 1 + len(events) + counts < len(imps)  # the test's row, the named ids, the counts
