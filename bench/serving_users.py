"""Pick the users of each serving tier on a running API, and probe single-request latency.

A user is put in a tier by what the API answers on its second request (the first one
seeds Redis from the database, as in production): ``personalized`` users with a cached
list are cache hits, ``category`` users are served Tier 2; ids the shop never saw get
Tier 3 (trending), and such a user is looked up in the database on every request.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import func, select

from bench.common import API_KEY_HEADERS
from recsys.keys import KEY_RECS, KEY_SESSION, KEY_USER_EVENTS
from recsys.db.models import UserEvent
from recsys.serving.session_state import COUNTED_EVENTS

UNKNOWN_USER_BASE = 50_000_000


def event_counts(engine) -> dict[int, int]:
    e = UserEvent
    stmt = select(e.user_id, func.count()).where(e.event_type.in_(sorted(COUNTED_EVENTS))).group_by(e.user_id)
    with engine.connect() as conn:
        return {int(u): int(n) for u, n in conn.execute(stmt)}


async def _sources(api_url: str, ids: list[int], concurrency: int = 16) -> dict[int, str]:
    sem = asyncio.Semaphore(concurrency)
    out: dict[int, str] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=API_KEY_HEADERS) as client:
        async def one(uid: int) -> None:
            async with sem:
                resp = await client.get("/recommendations", params={"user_id": uid, "num_items": 10})
                resp.raise_for_status()
                out[uid] = resp.json()["source"]

        await asyncio.gather(*(one(u) for u in ids))
    return out


def tier_users(api_url: str, engine, redis_client, min_events: int, per_tier: int) -> dict[str, list[int]]:
    """Users answered by each tier on their second request (after the first seeded them)."""
    counts = event_counts(engine)
    heavy = sorted((u for u, n in counts.items() if n >= min_events), key=lambda u: -counts[u])[:per_tier]
    light = sorted(u for u, n in counts.items() if 3 <= n < min_events)[:per_tier]
    asyncio.run(_sources(api_url, heavy + light))  # first sight: seeds counters and sessions from the DB
    second = asyncio.run(_sources(api_url, heavy + light))
    hits = [u for u in heavy if second[u] == "personalized"
            and redis_client.exists(KEY_RECS.format(user_id=u), KEY_SESSION.format(user_id=u),
                                    KEY_USER_EVENTS.format(user_id=u)) == 3]
    category = [u for u in light if second[u] == "category"]
    unknown = list(range(UNKNOWN_USER_BASE, UNKNOWN_USER_BASE + per_tier))
    trending = [u for u, s in asyncio.run(_sources(api_url, unknown[:50])).items() if s == "trending"]
    return {"hit": hits, "category": category, "trending_unknown": unknown if len(trending) == 50 else []}


def sequential_latency(api_url: str, ids: list[int], before=None) -> dict:
    """One client, one request at a time: latency in ms (``before(uid)`` runs untimed first)."""
    times = []
    with httpx.Client(base_url=api_url, timeout=30, headers=API_KEY_HEADERS) as client:
        client.get("/health")
        for uid in ids:
            if before is not None:
                before(uid)
            start = time.perf_counter()
            resp = client.get("/recommendations", params={"user_id": uid, "num_items": 10})
            times.append((time.perf_counter() - start) * 1e3)
            resp.raise_for_status()
    ordered = sorted(times)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"n": len(times), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "mean_ms": sum(times) / len(times)}


def probe_latencies(api_url: str, redis_client, hits: list[int], n: int) -> dict:
    """Unloaded latency of a cache hit, and of a cache miss (list deleted: scored on the fly, written back)."""
    sample = hits[:n]
    hit = sequential_latency(api_url, sample)
    miss = sequential_latency(api_url, sample, before=lambda u: redis_client.delete(KEY_RECS.format(user_id=u)))
    return {"hit_sequential": hit, "miss_sequential": miss}
