"""A filtered request beside the cache hit (issue 24): ``respond`` in process, plain and filtered, same run.

The shop is the serving benchmark's (``serve_ready_shop``: trained, published and precomputed); the app is
entered as a server runs it (``serving_profile.running_app``). Users with a cached list are warmed until their
answer is cached (the plain request is then a cache hit). Timed, alternately over the same users (the median
of ``PASSES`` passes each):
- ``plain``: ``respond(user_id, 10)``, the cache hit;
- ``in_stock_only``: a filter most cached answers fit (sent from the answer's items that pass);
- ``category``: the shop's largest category, which most answers do not fit (Tier 1 worked out from the user's
  cached candidates, then the fallback tiers);
- ``exclude_page``: ``exclude`` of the ten products the plain answer shows (the next ten of the answer).
Every call's share of cached answers served is reported with it.

``python -m bench.serving_filtered [--users 3000] [--products 1000] [--calls 500]``; its Redis is
``RECSYS_BENCH_REDIS_URL`` (flushed before and after) and its database ``recsys_bench_serving_filtered``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import log, machine, write_result
from bench.fixtures import REDIS_URL, bench_database, bench_redis, serve_ready_shop
from bench.serving_profile import running_app
from bench.serving_users import event_counts
from recsys.clients import make_engine
from recsys.serving.filters import ItemFilter

PASSES = 5


async def _pass(app, ids: list[int], filters: dict[int, ItemFilter] | ItemFilter | None) -> float:
    rec = app.state.recommender
    start = time.perf_counter()
    for uid in ids:
        f = filters.get(uid) if isinstance(filters, dict) else filters
        await rec.respond(uid, 10, "", item_filter=f)
    return (time.perf_counter() - start) / len(ids)


async def _flush(state) -> None:
    """The buffered writes sent (answers, impressions, page records); a Redis timeout on the loaded shared
    machine opens the circuit for a moment: wait and send again."""
    from recsys.serving.errors import DependencyDown

    for _ in range(10):
        try:
            await state.redis.flush_buffer()
            return
        except DependencyDown:
            await asyncio.sleep(1.0)
    raise RuntimeError("Redis did not take the buffered writes in 10 tries")


async def _measure(settings, ids: list[int]) -> dict:
    async with running_app(settings) as app:
        state, rec = app.state.serving, app.state.recommender
        for _ in range(3):  # seeds sessions, writes the answers back
            for uid in ids:
                await rec.respond(uid, 10, "")
            await _flush(state)
        import orjson

        shown = {uid: frozenset(i["product_id"] for i in orjson.loads(await rec.respond(uid, 10, ""))["items"])
                 for uid in ids}
        biggest = Counter(p.category for p in state.catalog.products.values()).most_common(1)[0][0]
        cases = {"plain": None, "in_stock_only": ItemFilter(in_stock_only=True),
                 "category": ItemFilter(categories=frozenset([biggest])),
                 "exclude_page": {uid: ItemFilter(exclude=s) for uid, s in shown.items()}}
        served = {}
        worked_out = []
        original = rec._recommend_view

        async def counted(*args, **kwargs):
            worked_out.append(1)
            return await original(*args, **kwargs)

        rec._recommend_view = counted
        for name, f in cases.items():  # the share of requests sent from the cached answer (no tier work)
            worked_out.clear()
            await _pass(app, ids, f)
            served[name] = round(1 - len(worked_out) / len(ids), 3)
        del rec._recommend_view
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(PASSES):
            for name, f in cases.items():
                times[name].append(await _pass(app, ids, f))
            await _flush(state)
        await _flush(state)
    out = {name: {"median_us_per_call": round(statistics.median(t) * 1e6, 1),
                  "passes_us": [round(x * 1e6, 1) for x in t], "cache_hit_share": served[name]}
           for name, t in times.items()}
    out["category_filter"] = biggest
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    from recsys.keys import recs_key
    from recsys.settings import Settings

    started, info = time.perf_counter(), machine()
    with tempfile.TemporaryDirectory(prefix="recsys-bench-filtered-") as tmp, \
            bench_database("serving_filtered") as url, bench_redis() as redis_client:
        artifacts = str(Path(tmp) / "artifacts")
        shop = serve_ready_shop(url, redis_client, artifacts, n_users=args.users, n_products=args.products)
        settings = Settings(database_url=url, redis_url=REDIS_URL, artifact_uri=shop.artifact_dir)
        engine = make_engine(url)
        counts = event_counts(engine)
        engine.dispose()
        ids = sorted((u for u, n in counts.items() if n >= settings.personalized_min_events
                      and redis_client.exists(recs_key(u))), key=lambda u: -counts[u])[:args.calls]
        log(f"{len(ids)} Tier-1 users with a cached list")
        out = asyncio.run(_measure(settings, ids))
    log(", ".join(f"{k}: {v['median_us_per_call']} µs (answer served {v['cache_hit_share']})"
                  for k, v in out.items() if isinstance(v, dict)))
    write_result("serving_filtered", {"machine": info, "users": len(ids), **out}, started,
                 "python -m bench.serving_filtered " + " ".join(argv or []))


if __name__ == "__main__":
    main()
