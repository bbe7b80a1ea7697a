"""UTC day arithmetic shared by the pipeline: a run for logical date D processes day D - 1."""

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


def ms_to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
