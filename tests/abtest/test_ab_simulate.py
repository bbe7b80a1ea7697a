"""The traffic simulator's shopper model, the calibration of the statistics, and a run through the API."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ab_helpers import auth, start
from recsys.lab.calibration import repeat
from recsys.lab.simulate import Shoppers, run_simulation, visit_schedule
from recsys.data.synthetic import generate_shop

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def shop():
    return generate_shop(n_users=400, n_products=120, days=7, seed=11, end_date=dt.date(2026, 11, 20))


@pytest.fixture(scope="module")
def shoppers(shop):
    return Shoppers.from_shop(shop, seed=1)


def test_shoppers_click_what_they_truly_like(shoppers):
    z = shoppers.relevance(5, np.arange(1, 121))
    best, worst = list(np.argsort(-z)[:10] + 1), list(np.argsort(z)[:10] + 1)
    assert shoppers.expected_ctr(5, best) > 2 * shoppers.expected_ctr(5, worst)
    rng = np.random.default_rng(0)
    clicks = sum(bool(shoppers.react(rng, 5, best)[0]) for _ in range(2000)) / 2000
    assert clicks == pytest.approx(shoppers.expected_ctr(5, best), abs=0.04)
    assert shoppers.relevance(5, [999])[0] == -np.inf and shoppers.react(rng, 5, []) == ([], [])


def test_the_same_seed_gives_the_same_schedule():
    a = visit_schedule([1, 2, 3], hours=2, visits_per_hour=3, seed=4)
    assert a == visit_schedule([1, 2, 3], hours=2, visits_per_hour=3, seed=4)
    assert all(0 <= t < 2 for t, _ in a) and [t for t, _ in a] == sorted(t for t, _ in a)


def _lists(shoppers, users, noise: float, seed: int) -> dict[int, list[int]]:
    rng = np.random.default_rng(seed)
    items = np.arange(1, len(shoppers.items) + 1)
    return {u: list(items[np.argsort(-(shoppers.relevance(u, items) + noise * rng.normal(size=len(items))))[:10]])
            for u in users}


def test_a_a_is_significant_in_about_alpha_and_a_better_model_wins(shoppers):
    users = shoppers.user_ids
    same = _lists(shoppers, users, noise=2.0, seed=1)
    aa = repeat(shoppers, users, {"control": same, "treatment": same}, repetitions=300, visits_mean=6,
                mde=0.3, seed=3)
    assert aa["significant_rate"] <= 0.08  # calibrated: ~5%, no more
    assert aa["significant_rate_unadjusted"] > aa["significant_rate"]  # impressions of a user are correlated
    better = _lists(shoppers, users, noise=0.3, seed=2)
    ab = repeat(shoppers, users, {"control": same, "treatment": better}, repetitions=40, visits_mean=6,
                mde=0.5, seed=4)
    assert ab["true_ctr"]["treatment"] > ab["true_ctr"]["control"] and ab["treatment_win_rate"] > 0.8


async def test_simulated_shoppers_drive_the_api(ab_api, ab_world):
    """The catalog's products 1..40 are shop products 1..40; the treatment model shows the low ids."""
    shop = generate_shop(n_users=300, n_products=40, days=7, seed=5, end_date=dt.date(2026, 11, 20))
    shoppers = Shoppers.from_shop(shop, seed=2)
    test_id = (await start(ab_api, fraction=0.5)).json()["test_id"]
    out = await run_simulation("http://api.test", shoppers, list(range(1, 61)), hours=1, visits_per_hour=2,
                               num_items=5, concurrency=4, seed=9, client=ab_api)
    assert out["requests"] == out["visits"] > 60 and out["errors"] == 0
    view = (await ab_api.post(f"/ab-tests/{test_id}/refresh", headers=auth())).json()
    arms = view["results"]["arms"]
    assert arms["control"]["impressions"] + arms["treatment"]["impressions"] == out["impressions"]
    assert arms["control"]["clicks"] + arms["treatment"]["clicks"] == out["clicks"]
