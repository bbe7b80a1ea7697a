"""Where a cache hit's time goes: the API's answer in process, sequential, under cProfile.

The app is built with ``create_app`` over the benchmark's database and Redis and its
lifespan entered (catalog, model and lists loaded as in a server). Reported: the
mean wall time of the route's call, ``respond(user_id, 10)`` (the JSON body; a tree without it:
``recommend(user_id, 10)``), without the profiler (the median of 5 passes), on asyncio's own loop and on uvloop (the loop
the servers run: ``chosen_config``), and the profiler's (asyncio's loop)
own time per source area (Redis client, JSON parsing, tiers and re-ranking, reasons,
the event loop), with the top functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import pstats
import statistics
import time

from bench.common import REPO

AREAS = (("dataclasses.replace", ("dataclasses.py",)), ("redis client", ("redis/",)), ("json (orjson)", ("orjson",)),
         ("re-ranking", ("recsys/ranking/rerank", "recsys/ranking/rank_columns")),
         ("reasons", ("recsys/ranking/reasons",)),
         ("tiers + catalog", ("recsys/serving/tiers", "recsys/serving/catalog", "recsys/serving/fallbacks")),
         ("serving service", ("recsys/serving/service", "recsys/serving/session_state",
                              "recsys/serving/stores/redis_store", "recsys/serving/arms")),
         ("event loop + sockets", ("asyncio/", "selectors", "uvloop", "socket")))


def _area(filename: str) -> str:
    for name, parts in AREAS:
        if any(p in filename for p in parts):
            return name
    return "other"


@contextlib.asynccontextmanager
async def running_app(settings):
    """``create_app(settings)`` with its lifespan entered (no background refresh), as a server runs it."""
    from recsys.api.app import create_app

    app = create_app(settings, refresh_in_background=False)
    async with app.router.lifespan_context(app):
        yield app


def route_call(app):
    """The call the in-process measurements time: ``respond(user_id, n)``, the route's body without HTTP
    and the rate limiter (a tree without it: ``recommend(user_id, n)``)."""
    rec = app.state.recommender
    return getattr(rec, "respond", None) or rec.recommend


async def _calls(app, ids: list[int]) -> float:
    call = route_call(app)
    start = time.perf_counter()
    for uid in ids:
        await call(uid, 10)
    return time.perf_counter() - start


PASSES = 5  # timed passes over the users; the median pass is reported (one pass can meet a Redis snapshot)


async def _median_pass(app, ids: list[int]) -> float:
    await _calls(app, ids[:50])  # warm-up
    return statistics.median([await _calls(app, ids) for _ in range(PASSES)])


async def _profile(settings, ids: list[int]) -> tuple[float, pstats.Stats]:
    async with running_app(settings) as app:
        wall = await _median_pass(app, ids)
        prof = cProfile.Profile()
        prof.enable()
        await _calls(app, ids)
        prof.disable()
    return wall / len(ids), pstats.Stats(prof)


async def _timed(settings, ids: list[int]) -> float:
    async with running_app(settings) as app:
        return await _median_pass(app, ids) / len(ids)


def uvloop_ms(settings, ids: list[int]) -> float | None:
    """The mean call on uvloop (None without it: an older tree's venv may lack it)."""
    try:
        import uvloop
    except ImportError:
        return None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_timed(settings, ids)) * 1e3


def profile_hits(database_url: str, redis_url: str, artifact_uri: str, ids: list[int]) -> dict:
    from bench.sequential_api import api_settings

    settings = api_settings(database_url, redis_url, artifact_uri)  # production checks: the bench's API key
    per_call, stats = asyncio.run(_profile(settings, ids))
    on_uvloop = uvloop_ms(settings, ids)
    areas: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_, ncalls, tottime, _, _) in stats.stats.items():
        areas[_area(filename)] = areas.get(_area(filename), 0.0) + tottime
        rows.append((tottime, f"{filename.split('site-packages/')[-1].split(f'{REPO}/')[-1]}:{line}({func})", ncalls))
    total = sum(areas.values()) or 1.0
    rows.sort(reverse=True)
    return {"calls": len(ids), "mean_ms_per_call_unprofiled": per_call * 1e3, "mean_ms_per_call_uvloop": on_uvloop,
            "profiled_share_by_area": {k: round(v / total, 3) for k, v in sorted(areas.items(), key=lambda x: -x[1])},
            "top_functions": [{"function": f, "share": round(t / total, 3), "calls_per_request": n / len(ids)}
                              for t, f, n in rows[:12]]}
