"""The hourly A/B run, one function per task of ``dags/recsys_ab_results.py``.

The run with logical date ``L`` (a run without one, such as a manual trigger,
stands for its ``run_after``: ``recsys.timeutil.run_instant``) handles the hour ``[L - 1h, L)``: impressions are
flushed, every test running in that hour gets its results as of ``L`` (older
results never replace newer ones, so a backfill only closes what it should have
closed), and a test whose end is before ``L`` is closed and decided. A winning
treatment is then made LIVE through the one release path (its lists before the switch).
"""

from __future__ import annotations

import datetime as dt
import logging

from recsys.pipeline.steps import Skip
from recsys.settings import get_settings

log = logging.getLogger(__name__)
HOUR = dt.timedelta(hours=1)


def hour_of(logical_date: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[L - 1h, L)`` in UTC for the run at logical date ``L``."""
    end = logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=dt.timezone.utc)
    end = end.astimezone(dt.timezone.utc)
    return end - HOUR, end


def flush_impressions(engine, redis) -> dict:
    from recsys.abtest.flusher import flush_impressions

    return flush_impressions(engine, redis, consumer="recsys_ab_results")


def update_results(engine, logical_date: dt.datetime) -> dict:
    from recsys.abtest.results import run_interval

    start, end = hour_of(logical_date)
    return run_interval(engine, start, end, get_settings())


def refresh_after_promotion(engine, store, redis, outcome: dict) -> dict:
    """Make the winners this run's closed tests found LIVE (``results.release_winner``: their lists first, then
    the switch, through the one release path), and any winner an earlier close left waiting (``/stop``)."""
    from recsys.abtest import store as tests
    from recsys.abtest.results import ACTION_RELEASE, release_winner

    waiting = [t["test_id"] for t in tests.list_tests(engine)
               if ((t.get("results") or {}).get("decision") or {}).get("action") == ACTION_RELEASE]
    ids = list(dict.fromkeys([*outcome.get("promoted", []), *waiting]))
    if not ids:
        raise Skip("no A/B test has a winner waiting to be made LIVE")
    released = [release_winner(engine, store, redis, test_id, get_settings()) for test_id in ids]
    promoted = [r for r in released if r["action"] == "promoted"]
    return {"model_id": promoted[-1]["model_id"] if promoted else None, "tests": ids,
            "released": [r["action"] for r in released]}
