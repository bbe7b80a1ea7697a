"""plugins/recsys_hooks.py reads the run's day and params from the task context."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import airflow.sdk
import pytest
import recsys_hooks

UTC = dt.timezone.utc


@pytest.fixture
def context(monkeypatch):
    ctx: dict = {}
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: ctx)
    return ctx


def test_a_manual_run_without_logical_date_processes_the_day_before_run_after(context):
    """The KeyError: 'logical_date' of a manual trigger (issue 10)."""
    context.update(dag_run=SimpleNamespace(run_after=dt.datetime(2026, 12, 5, 7, 30, tzinfo=UTC)),
                   params={"epochs": 5})
    assert recsys_hooks.run_day() == dt.date(2026, 12, 4)
    assert recsys_hooks.run_instant() == dt.datetime(2026, 12, 5, 7, 30, tzinfo=UTC)  # the hourly DAG's hour end
    assert recsys_hooks.run_params() == {"epochs": 5}


def test_a_scheduled_run_processes_the_day_before_its_logical_date(context):
    context.update(logical_date=dt.datetime(2026, 11, 27, 1, tzinfo=UTC),
                   dag_run=SimpleNamespace(run_after=dt.datetime(2026, 12, 5, 9, tzinfo=UTC)))
    assert recsys_hooks.run_day() == dt.date(2026, 11, 26)
    assert recsys_hooks.run_instant() == dt.datetime(2026, 11, 27, 1, tzinfo=UTC)


def test_skippable_turns_a_flow_skip_into_an_airflow_skip():
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.pipeline.steps import Skip

    def step(reason):
        raise Skip(reason)

    with pytest.raises(AirflowSkipException, match="dry run"):
        recsys_hooks.skippable(step, "dry run")
    assert recsys_hooks.skippable(lambda x: x + 1, 1) == 2
