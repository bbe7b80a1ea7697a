"""UTC day arithmetic shared by the pipeline: a run for logical date D processes day D - 1.

A DAG run without a logical date (Airflow 3: a manual trigger from the UI, the
CLI or the REST API may leave it out) stands for its ``run_after`` instead
(``run_instant``): it processes the day before its ``run_after``.
"""

from __future__ import annotations

import datetime as dt

from recsys.constants import MS_PER_DAY


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """``[day 00:00 UTC, next day 00:00 UTC)`` in epoch milliseconds."""
    start = day_start_ms(day)
    return start, start + MS_PER_DAY


def processed_day(logical_date: dt.date | dt.datetime) -> dt.date:
    """The UTC day a nightly run for ``logical_date`` processes: the day before."""
    if isinstance(logical_date, dt.datetime):
        logical_date = logical_date.astimezone(dt.timezone.utc).date() if logical_date.tzinfo else logical_date.date()
    return logical_date - dt.timedelta(days=1)


def run_instant(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> dt.datetime:
    """The instant a DAG run stands for, in UTC: its logical date, else (no logical date) its ``run_after``."""
    when = logical_date if logical_date is not None else run_after
    if not isinstance(when, dt.datetime):
        raise ValueError(f"a DAG run needs a logical date or a run_after datetime, got {logical_date!r}, {run_after!r}")
    return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def run_processed_day(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> dt.date:
    """The UTC day a nightly run processes: the day before its logical date, else before its ``run_after``."""
    return processed_day(run_instant(logical_date, run_after))


def ms_to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
