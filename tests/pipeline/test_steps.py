"""The step helpers: the @recorded decorator and the day a task hands on."""

from __future__ import annotations

import datetime as dt

import pytest

from recsys.pipeline.steps import Skip, day_of, recorded
from recsys.pipeline.runs import get_steps

DAY = dt.date(2026, 12, 4)


@recorded("precompute:{segment}")
def _segment_step(engine, day, segment, outcome):
    if outcome == "skip":
        raise Skip("nothing to precompute")
    if outcome == "fail":
        raise RuntimeError("redis went away")
    return {"users": 3, "ids": [1, 2, 3], "day": day.isoformat()}


def _status(engine, step):
    return {s["step"]: s for s in get_steps(engine, DAY)}[step]


def test_recorded_leaves_success_skip_and_failure_under_the_step_name(sqlite_engine):
    assert _segment_step(sqlite_engine, DAY, "warm", "ok")["users"] == 3
    record = _status(sqlite_engine, "precompute:warm")
    assert record["status"] == "SUCCESS" and record["details"]["users"] == 3
    assert "ids" not in record["details"] and record["details"]["duration_seconds"] >= 0  # only scalars are kept

    with pytest.raises(Skip):
        _segment_step(sqlite_engine, DAY, segment="cold", outcome="skip")
    assert _status(sqlite_engine, "precompute:cold")["details"] == {"reason": "nothing to precompute"}

    with pytest.raises(RuntimeError, match="redis went away"):
        _segment_step(sqlite_engine, DAY, "warm", "fail")
    record = _status(sqlite_engine, "precompute:warm")  # the re-run replaced the row
    assert record["status"] == "FAILED" and record["details"]["error_type"] == "RuntimeError"


def test_day_of_reads_the_day_an_upstream_task_returned():
    assert day_of({"day": "2026-12-04", "key": "events/date=2026-12-04/events.parquet"}) == DAY
    for bad in ({}, {"day": "yesterday"}, None):
        with pytest.raises(ValueError, match="names no processed day"):
            day_of(bad)
