"""pipeline_runs records: upsert on (run_date, step), read back per date, bad input refused."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from recsys.constants import STEP_FAILED, STEP_SUCCESS
from recsys.db.models import PipelineRun
from recsys.pipeline.runs import get_steps, record_failure, record_step

DAY = dt.date(2026, 11, 20)


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(PipelineRun)).scalar_one()


@pytest.mark.parametrize("db", ["engine", "sqlite_engine"])
def test_record_step_upserts_on_date_and_step(request, db):
    engine = request.getfixturevalue(db)
    record_step(engine, DAY, "extract", STEP_FAILED, {"error": "boom"})
    record_step(engine, DAY, "extract", STEP_SUCCESS, {"rows": 12, "uri": "s3://b/events"})

    steps = get_steps(engine, DAY)
    assert _count(engine) == 1
    assert [(s["step"], s["status"], s["details"]) for s in steps] == [
        ("extract", STEP_SUCCESS, {"rows": 12, "uri": "s3://b/events"})
    ]
    assert steps[0]["run_date"] == DAY
    assert steps[0]["updated_at"] is not None


def test_get_steps_returns_only_that_date_in_update_order(engine):
    record_step(engine, DAY, "validate", STEP_SUCCESS, {"failed": []})
    record_step(engine, DAY, "extract", STEP_SUCCESS, {"rows": 3})
    record_step(engine, DAY + dt.timedelta(days=1), "extract", STEP_SUCCESS, {"rows": 4})
    # re-recording a step moves it to the end (it was updated last)
    record_step(engine, DAY, "validate", STEP_FAILED, {"failed": ["user_id_known"]})

    steps = get_steps(engine, DAY)
    assert [(s["step"], s["status"]) for s in steps] == [("extract", STEP_SUCCESS), ("validate", STEP_FAILED)]
    assert steps[1]["details"] == {"failed": ["user_id_known"]}
    assert get_steps(engine, DAY - dt.timedelta(days=1)) == []
    assert _count(engine) == 3


@pytest.mark.parametrize(
    ("run_date", "step", "status", "details", "error", "match"),
    [
        (DAY, "extract", "DONE", {}, ValueError, "status must be one of"),
        (DAY, "", STEP_SUCCESS, {}, ValueError, "step must be"),
        (DAY, "x" * 65, STEP_SUCCESS, {}, ValueError, "step must be"),
        ("2026-11-20", "extract", STEP_SUCCESS, {}, TypeError, "run_date must be a datetime.date"),
        (dt.datetime(2026, 11, 20), "extract", STEP_SUCCESS, {}, TypeError, "run_date"),
        (DAY, "extract", STEP_SUCCESS, [1], TypeError, "details must be a dict"),
        (DAY, "extract", STEP_SUCCESS, {"when": dt.date(2026, 1, 1)}, ValueError, "not plain JSON"),
        (DAY, "extract", STEP_SUCCESS, {"score": float("nan")}, ValueError, "not plain JSON"),
    ],
)
def test_bad_input_is_refused_before_writing(engine, run_date, step, status, details, error, match):
    with pytest.raises(error, match=match):
        record_step(engine, run_date, step, status, details)
    assert _count(engine) == 0


def test_record_failure_records_the_error(engine):
    record_failure(engine, DAY, "extract", RuntimeError("bucket gone"))
    [step] = get_steps(engine, DAY)
    assert (step["status"], step["details"]) == (STEP_FAILED, {"error_type": "RuntimeError", "error": "bucket gone"})


def test_record_failure_never_raises_a_second_error(sqlite_engine):
    with sqlite_engine.begin() as conn:  # the database itself is broken
        conn.execute(text("DROP TABLE pipeline_runs"))
    record_failure(sqlite_engine, DAY, "extract", RuntimeError("boom"))  # logs, does not raise
