"""The hourly A/B run, one function per task of ``dags/recsys_ab_results.py``.

The run with logical date ``L`` (a run without one, such as a manual trigger,
stands for its ``run_after``: ``recsys.timeutil.run_instant``) handles the hour ``[L - 1h, L)``: impressions are
flushed, every test running in that hour gets its results as of ``L`` (older
results never replace newer ones, so a backfill only closes what it should have
closed), and a test whose end is before ``L`` is closed and decided. After a
promotion the new LIVE model's lists are precomputed.
"""

from __future__ import annotations

import datetime as dt
import logging

from recsys.flows.steps import Skip
from recsys.settings import get_settings

log = logging.getLogger(__name__)
HOUR = dt.timedelta(hours=1)


def hour_of(logical_date: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[L - 1h, L)`` in UTC for the run at logical date ``L``."""
    end = logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=dt.timezone.utc)
    end = end.astimezone(dt.timezone.utc)
    return end - HOUR, end


def flush(engine, redis) -> dict:
    from recsys.abtest.flusher import flush_impressions

    return flush_impressions(engine, redis, consumer="recsys_ab_results")


def update_results(engine, logical_date: dt.datetime) -> dict:
    from recsys.abtest.results import run_interval

    start, end = hour_of(logical_date)
    return run_interval(engine, start, end, get_settings())


def refresh_after_promotion(engine, store, redis, outcome: dict) -> dict:
    """Precompute every segment with the model an A/B test just promoted (else: nothing to do)."""
    from recsys.pipeline.precompute import precompute_all

    if not outcome.get("promoted"):
        raise Skip("no A/B test promoted a model in this run")
    result = precompute_all(engine, store, redis)
    return {"model_id": result["model_id"], "users": result["users"], "tests": outcome["promoted"]}
