"""Traffic simulator: shoppers with hidden tastes ask a running API for recommendations and react.

The hidden truth is the synthetic shop's (``Shop.user_taste``, ``Shop.item_factors``,
regenerated from the same seed as ``python -m recsys generate``). A shopper looks
down the list (rank r is examined with probability ``decay ** r``), clicks an
examined item with probability ``sigmoid(base + slope * z)`` where ``z`` is the
standardized true affinity ``taste . item``, and buys a clicked one with
``sigmoid(buy_base + buy_slope * z)``. Clicks and purchases go back to the API
with the answer's ``request_id``. Time is compressed: the visits of ``hours``
simulated hours are replayed in order as fast as the API answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

AFFINITY_SAMPLE = 200_000


@dataclass(frozen=True)
class ClickModel:
    """Defaults: a random list is clicked ~5% of the time, a list of the shopper's best items ~40%."""

    base: float = -4.6
    slope: float = 0.9
    buy_base: float = -1.5
    buy_slope: float = 0.5
    decay: float = 0.85


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Shoppers:
    """The hidden preferences of the shop's users (user ``u`` is row ``u - 1``, product ``p`` row ``p - 1``)."""

    def __init__(self, taste: np.ndarray, item_factors: np.ndarray, prices: np.ndarray | None = None,
                 model: ClickModel | None = None, seed: int = 0):
        self.taste, self.items = np.asarray(taste, float), np.asarray(item_factors, float)
        self.prices = np.asarray(prices, float) if prices is not None else np.ones(len(self.items))
        self.model = model or ClickModel()
        rng = np.random.default_rng(seed)
        u = rng.integers(len(self.taste), size=AFFINITY_SAMPLE)
        i = rng.integers(len(self.items), size=AFFINITY_SAMPLE)
        a = np.einsum("ij,ij->i", self.taste[u], self.items[i])
        self.mean, self.std = float(a.mean()), float(a.std() or 1.0)

    @classmethod
    def from_shop(cls, shop, model: ClickModel | None = None, seed: int = 0) -> Shoppers:
        if shop.user_taste is None or shop.item_factors is None:
            raise ValueError("the shop has no hidden truth (user_taste / item_factors): use a synthetic shop")
        return cls(shop.user_taste, shop.item_factors, shop.products["price"].to_numpy(), model, seed)

    @property
    def user_ids(self) -> np.ndarray:
        return np.arange(1, len(self.taste) + 1)

    def relevance(self, user_id: int, products) -> np.ndarray:
        """Standardized true affinity of each product for the user (-inf for unknown products)."""
        p = np.asarray(products, dtype=np.int64) - 1
        known = (p >= 0) & (p < len(self.items))
        z = np.full(len(p), -np.inf)
        z[known] = (self.items[p[known]] @ self.taste[int(user_id) - 1] - self.mean) / self.std
        return z

    def click_probabilities(self, user_id: int, products) -> np.ndarray:
        m = self.model
        return m.decay ** np.arange(len(products)) * _sigmoid(m.base + m.slope * self.relevance(user_id, products))

    def expected_ctr(self, user_id: int, products) -> float:
        """Probability that the shopper clicks at least one item of the list."""
        return float(1.0 - np.prod(1.0 - self.click_probabilities(user_id, products)))

    def react(self, rng: np.random.Generator, user_id: int, products) -> tuple[list[int], list[int]]:
        """(clicked products, bought products) of one look at a list."""
        products = list(products)
        if not products:
            return [], []
        clicked = rng.random(len(products)) < self.click_probabilities(user_id, products)
        z = self.relevance(user_id, products)
        bought = clicked & (rng.random(len(products)) < _sigmoid(self.model.buy_base + self.model.buy_slope * z))
        return ([int(p) for p, c in zip(products, clicked) if c], [int(p) for p, b in zip(products, bought) if b])

    def price(self, product_id: int) -> float:
        return float(self.prices[int(product_id) - 1]) if 0 < product_id <= len(self.prices) else 1.0


def visit_schedule(user_ids, hours: float, visits_per_hour: float, seed: int) -> list[tuple[float, int]]:
    """(simulated hour, user id) of every visit, in time order (Poisson visits, uniform times)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(visits_per_hour * hours, size=len(user_ids))
    users = np.repeat(np.asarray(user_ids, dtype=np.int64), counts)
    times = rng.uniform(0, hours, size=len(users))
    order = np.argsort(times, kind="stable")
    return [(float(times[i]), int(users[i])) for i in order]


@dataclass
class Tally:
    requests: int = 0
    impressions: int = 0
    clicked_impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    errors: int = 0
    latencies: list = None
    failures: Counter = field(default_factory=Counter)  # "GET /recommendations 401" -> count

    def failed(self, what: str) -> None:
        self.errors += 1
        self.failures[what] += 1

    def summary(self) -> dict:
        lat = np.asarray(self.latencies or [0.0]) * 1000
        return {"requests": self.requests, "impressions": self.impressions, "clicks": self.clicks,
                "clicked_impressions": self.clicked_impressions, "purchases": self.purchases, "errors": self.errors,
                "failures": dict(self.failures.most_common()),
                "ctr": self.clicked_impressions / self.impressions if self.impressions else None,
                "latency_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}}


async def _visit(client, shoppers: Shoppers, user_id: int, index: int, seed: int, num_items: int,
                 tally: Tally) -> None:
    started = time.perf_counter()
    r = await client.get("/recommendations", params={"user_id": user_id, "num_items": num_items})
    tally.latencies.append(time.perf_counter() - started)
    tally.requests += 1
    if r.status_code != 200:
        tally.failed(f"GET /recommendations {r.status_code}")
        return
    body = r.json()
    products = [i["product_id"] for i in body["items"]]
    tally.impressions += 1
    clicked, bought = shoppers.react(np.random.default_rng([seed, index]), user_id, products)
    tally.clicked_impressions += bool(clicked)
    for pid in clicked:
        event = {"user_id": user_id, "product_id": pid, "timestamp": int(time.time() * 1000),
                 "request_id": body["request_id"]}
        status = (await client.post("/events/click", json=event)).status_code
        tally.clicks += status == 200
        if status != 200:
            tally.failed(f"POST /events/click {status}")
        if pid in bought:
            status = (await client.post("/events/purchase", json={**event, "price": shoppers.price(pid)})).status_code
            tally.purchases += status == 200
            if status != 200:
                tally.failed(f"POST /events/purchase {status}")


class SimulationError(RuntimeError):
    """Simulated traffic that failed too often for its result to mean anything."""


def require_clean(sim: dict, max_error_share: float = 0.01) -> dict:
    """``sim`` (``run_simulation``'s result) unless more than ``max_error_share`` of its requests failed or no
    list was shown: then ``SimulationError`` naming the failures (an A/B result on failed traffic is no result)."""
    if sim["impressions"] == 0 or sim["errors"] > max_error_share * max(sim["requests"], 1):
        raise SimulationError(f"{sim['errors']} of {sim['requests']} simulated requests failed "
                              f"({sim.get('failures') or 'no answer'}); {sim['impressions']} lists shown: "
                              "the A/B result would be meaningless")
    return sim


async def run_simulation(api_url: str, shoppers: Shoppers, user_ids, *, hours: float, visits_per_hour: float,
                         num_items: int = 10, concurrency: int = 16, seed: int = 7, client=None,
                         api_key: str | None = None) -> dict:
    """Replay the visits against the API (``api_key`` in ``X-API-Key``); returns what the shoppers did."""
    import httpx

    schedule = visit_schedule(user_ids, hours, visits_per_hour, seed)
    tally, gate = Tally(latencies=[]), asyncio.Semaphore(concurrency)
    own = client is None
    client = client or httpx.AsyncClient(base_url=api_url, timeout=30.0,
                                         headers={"X-API-Key": api_key} if api_key else None)
    started = time.perf_counter()

    async def one(i: int, user_id: int):
        async with gate:
            try:
                await _visit(client, shoppers, user_id, i, seed, num_items, tally)
            except Exception as exc:  # a refused connection or a timeout counts, the run goes on
                tally.failed(type(exc).__name__)

    try:
        await asyncio.gather(*(one(i, u) for i, (_, u) in enumerate(schedule)))
    finally:
        if own:
            await client.aclose()
    return {"visits": len(schedule), "users": len(set(user_ids)), "hours": hours,
            "seconds": round(time.perf_counter() - started, 2), **tally.summary()}


def simulate_command(args) -> int:
    """``python -m recsys simulate``: regenerate the shop's hidden truth, drive the API, print a summary."""
    from recsys.data.synthetic import generate_shop

    end = args.shop_end_date or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
    shop = generate_shop(n_users=args.shop_users, n_products=args.shop_products, days=args.shop_days,
                         seed=args.shop_seed, end_date=end)
    shoppers = Shoppers.from_shop(shop, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    users = rng.choice(shoppers.user_ids, size=min(args.users, len(shoppers.user_ids)), replace=False)
    out = asyncio.run(run_simulation(args.api, shoppers, users.tolist(), hours=args.hours,
                                     visits_per_hour=args.visits_per_hour, num_items=args.num_items,
                                     concurrency=args.concurrency, seed=args.seed, api_key=args.api_key))
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0 if out["requests"] and out["errors"] <= 0.01 * out["requests"] else 1


__all__ = ["ClickModel", "Shoppers", "run_simulation", "simulate_command", "visit_schedule"]
