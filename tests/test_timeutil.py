"""Which day a DAG run processes, for every kind of run (no Airflow needed)."""

from __future__ import annotations

import datetime as dt

import pytest

from recsys.timeutil import processed_day, run_instant, run_processed_day

UTC = dt.timezone.utc


def test_a_run_with_a_logical_date_processes_the_day_before_it():
    scheduled = dt.datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    trigger_time = dt.datetime(2026, 12, 9, 17, 30, tzinfo=UTC)  # run_after of a late backfill / re-run
    assert run_processed_day(scheduled, trigger_time) == dt.date(2026, 12, 4)
    assert run_processed_day(scheduled, None) == dt.date(2026, 12, 4)


def test_a_run_without_a_logical_date_processes_the_day_before_its_run_after():
    """Airflow 3 manual triggers (UI, CLI, REST API) may have no logical date."""
    assert run_processed_day(None, dt.datetime(2026, 12, 5, 7, 12, tzinfo=UTC)) == dt.date(2026, 12, 4)
    assert run_processed_day(None, dt.datetime(2026, 12, 5, 0, 0, tzinfo=UTC)) == dt.date(2026, 12, 4)


def test_the_day_is_the_utc_day_whatever_the_timezone_of_the_instant():
    tokyo = dt.timezone(dt.timedelta(hours=9))
    # 2026-12-05 08:00 in Tokyo is 2026-12-04 23:00 UTC: the UTC day before is 12-03
    assert run_processed_day(None, dt.datetime(2026, 12, 5, 8, 0, tzinfo=tokyo)) == dt.date(2026, 12, 3)
    assert run_instant(None, dt.datetime(2026, 12, 5, 8, 0, tzinfo=tokyo)) == dt.datetime(2026, 12, 4, 23, tzinfo=UTC)
    assert run_instant(dt.datetime(2026, 12, 5, 1), None) == dt.datetime(2026, 12, 5, 1, tzinfo=UTC)  # naive = UTC


def test_processed_day_keeps_its_old_contract():
    assert processed_day(dt.date(2026, 12, 5)) == dt.date(2026, 12, 4)
    assert processed_day(dt.datetime(2026, 12, 5, 1, tzinfo=UTC)) == dt.date(2026, 12, 4)


@pytest.mark.parametrize("logical, after", [(None, None), (None, "2026-12-05"), (dt.date(2026, 12, 5), None)])
def test_a_run_with_neither_instant_is_refused(logical, after):
    with pytest.raises(ValueError, match="logical date or a run_after"):
        run_instant(logical, after)
