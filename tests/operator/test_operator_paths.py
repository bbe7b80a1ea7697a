"""The operator's paths through a real Airflow: scheduler, dag-processor, api-server, triggerer as processes.

PostgreSQL metadata, LocalExecutor (one run on the CeleryExecutor configured as in
docker-compose.yml), the project's PostgreSQL, Redis and S3 (moto server). Every
check goes through the CLI or the REST API, as an operator would. The commands of
README.md's "Running the pipeline in Airflow" are parsed from the README and run as
written; only their dates are replaced by days of the test's shop (its events end
yesterday).

The cases share one stack and build on each other, in this order: a scheduled
run, whose published model triggers the Asset-scheduled A/B results DAG; its missed (short) deadline pages; a manual trigger with --conf and no
logical date; a two-day backfill, then a re-run of a backfilled day with
`airflow dags test`; a failing task pages; a rollback; a REST trigger run by a
Celery worker.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import create_engine, text

from airflow_stack import REPO, TODAY, compose_executor_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.operator]

DAG = "recsys_nightly"
AB_DAG = "recsys_ab_results"
RUN_MINUTES = 15  # the longest a nightly run of the tiny shop may take on a loaded 2-core machine (the sequential branch, torch included, runs beside the main line)
README_SECTION = "## Running the pipeline in Airflow"
README_COMMANDS = {  # the README's commands, by what they start with, and the test that runs each
    "airflow dags trigger": "test_manual_trigger_with_conf_and_no_logical_date",
    "airflow backfill create": "test_two_day_backfill_runs_in_order_and_a_rerun_changes_nothing",
    "airflow dags test": "test_two_day_backfill_runs_in_order_and_a_rerun_changes_nothing",
    "airflow dags pause": "test_two_day_backfill_runs_in_order_and_a_rerun_changes_nothing",
    "python -m recsys models rollback": "test_rollback_from_the_readme",
}


def readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    start = readme.index(README_SECTION)
    end = readme.index("\n## ", start + 1)
    spans = re.findall(r"`([^`\n]+)`", readme[start:end])
    return [c for c in spans if c.startswith(("airflow ", "python -m recsys"))]


def readme_command(prefix: str, *dates: dt.date) -> str:
    """The README's command starting with ``prefix``, its YYYY-MM-DD dates replaced by ``dates`` in order."""
    (command,) = [c for c in readme_commands() if c.startswith(prefix)]
    found = re.findall(r"\d{4}-\d{2}-\d{2}", command)
    assert len(found) == len(dates), f"{command!r} has dates {found}, the test replaces {len(dates)}"
    for old, new in zip(found, dates):
        command = command.replace(old, new.isoformat(), 1)
    return command


def _db(stack):
    if not hasattr(stack, "_engine"):
        stack._engine = create_engine(stack.recsys_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return stack._engine


def _registry(stack) -> list[tuple]:
    with _db(stack).connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT model_id, status, train_date, promoted_at, archived_at FROM recommendation_models ORDER BY model_id"))]


def _live(stack) -> str | None:
    """The LIVE model (None before any promotion: the tiny shop's models may all lose to popularity)."""
    rows = [r for r in _registry(stack) if r[1] == "LIVE"]
    assert len(rows) <= 1, rows
    return rows[0][0] if rows else None


def _new_run(stack, known: set[str]) -> dict:
    return wait_for(lambda: next((r for r in stack.runs(DAG) if r["dag_run_id"] not in known), None),
                    timeout=60, what="the new run to appear", stack=stack)


def _idle(stack) -> None:
    wait_for(lambda: not [r for r in stack.runs(DAG) if r["state"] in ("queued", "running")],
             timeout=RUN_MINUTES * 60, what="no nightly run in progress", every=2, stack=stack)


def latest_trigger(now: dt.datetime | None = None) -> dt.datetime:
    """The latest 01:00 UTC (the DAG's cron) at or before ``now``: before 01:00 it is yesterday's."""
    now = now or dt.datetime.now(dt.timezone.utc)
    trigger = now.replace(hour=1, minute=0, second=0, microsecond=0)
    return trigger if trigger <= now else trigger - dt.timedelta(days=1)


def test_latest_trigger_before_and_after_one_oclock():
    utc = dt.timezone.utc
    assert latest_trigger(dt.datetime(2026, 12, 8, 0, 20, tzinfo=utc)) == dt.datetime(2026, 12, 7, 1, tzinfo=utc)
    assert latest_trigger(dt.datetime(2026, 12, 8, 1, 0, tzinfo=utc)) == dt.datetime(2026, 12, 8, 1, tzinfo=utc)
    assert latest_trigger(dt.datetime(2026, 12, 8, 23, 59, tzinfo=utc)) == dt.datetime(2026, 12, 8, 1, tzinfo=utc)


def test_readme_commands_are_the_ones_this_suite_runs():
    commands = readme_commands()
    for command in commands:
        assert command.startswith(tuple(README_COMMANDS)), f"README command {command!r} is run by no test here"
    for prefix in README_COMMANDS:
        assert sum(c.startswith(prefix) for c in commands) == 1, f"README has no single `{prefix} ...` command"


def test_scheduled_run_processes_yesterday_and_its_published_model_triggers_the_ab_dag(stack):
    stack.airflow("dags", "unpause", AB_DAG)  # the Asset consumer: a paused DAG is not queued by asset events
    latest = latest_trigger()  # without catchup the scheduler creates the run of the latest 01:00 UTC already past
    stack.airflow("dags", "unpause", DAG)  # paused at creation: unpausing lets the scheduler create that run
    scheduled = wait_for(lambda: [r for r in stack.runs(DAG) if r["run_type"] == "scheduled"], timeout=120,
                         what="the scheduler to create the scheduled run", stack=stack)[0]
    logical = dt.datetime.fromisoformat(scheduled["logical_date"].replace("Z", "+00:00"))
    assert logical in (latest, latest_trigger()), (scheduled["logical_date"], latest)  # 01:00 may pass meanwhile
    run = stack.wait_run(DAG, scheduled["dag_run_id"], timeout=RUN_MINUTES * 60)
    assert run["state"] == "success", stack.log_tails()
    processed = logical.date() - dt.timedelta(days=1)  # a run with logical date D processes D - 1
    assert stack.xcom(DAG, run["dag_run_id"], "extract")["day"] == processed.isoformat()
    assert processed in [r[2] for r in _registry(stack)]  # trained for that day (promoted or not: tiny shop)
    stack.scheduled_run_id = run["dag_run_id"]

    # publish updated the recsys_published_model Asset: the scheduler created an A/B results run for it
    published = stack.xcom(DAG, run["dag_run_id"], "publish")["model_id"]
    try:
        ab = wait_for(lambda: [r for r in stack.runs(AB_DAG) if r["run_type"] == "asset_triggered"], timeout=120,
                      what="the asset-triggered A/B results run", stack=stack)[0]
        events = stack.api("GET", f"/dags/{AB_DAG}/dagRuns/{ab['dag_run_id']}/upstreamAssetEvents").json()
        assert [(e["extra"]["model_id"], e["source_dag_id"], e["source_task_id"]) for e in events["asset_events"]] == [
            (published, DAG, "publish")]
        assert stack.wait_run(AB_DAG, ab["dag_run_id"], timeout=RUN_MINUTES * 60)["state"] == "success", stack.log_tails()
    finally:
        stack.airflow("dags", "pause", AB_DAG)  # the later cases drive the nightly DAG alone


def test_missed_deadline_pages_on_call(stack, webhook):
    """The stack's deadline is 14 s (RECSYS_DAG_DEADLINE_HOURS=0.004): the scheduled run missed it."""
    run_id = stack.scheduled_run_id
    paged = wait_for(lambda: [t for t in webhook.alerts(":alarm_clock:") if run_id in str(webhook.received)],
                     timeout=90, what="the deadline alert of the scheduled run", stack=stack)
    assert f"{DAG} missed its deadline" in paged[0]
    message = next(m for m in webhook.received if m["text"].startswith(":alarm_clock:"))
    assert run_id in str(message["blocks"]) and "0.004 hours" in str(message["blocks"])


def test_manual_trigger_with_conf_and_no_logical_date(stack):
    """The README's trigger: no --logical-date, so the run processes the day before its run_after."""
    _idle(stack)
    known = {r["dag_run_id"] for r in stack.runs(DAG)}
    stack.run(readme_command("airflow dags trigger"))
    run = stack.wait_run(DAG, _new_run(stack, known)["dag_run_id"], timeout=RUN_MINUTES * 60)
    assert run["state"] == "success", stack.log_tails()
    assert run["logical_date"] is None and run["run_type"] == "manual"
    assert run["conf"] == {"epochs": 10, "dry_run": True}
    after = dt.datetime.fromisoformat(run["run_after"].replace("Z", "+00:00"))
    day = after.date() - dt.timedelta(days=1)
    assert stack.xcom(DAG, run["dag_run_id"], "extract")["day"] == day.isoformat()
    for task in ("extract", "train"):  # the effective params are in the task logs
        log = stack.task_log(DAG, run["dag_run_id"], task)
        assert f"processing {day} with params" in log and "'epochs': 10" in log, log[-2000:]
        assert "'dry_run': True" in log, log[-2000:]
    decision = stack.xcom(DAG, run["dag_run_id"], "promote_or_archive")
    assert decision["decision"] == "archived" and decision["dry_run"]  # dry_run honoured
    assert dict((r[0], r[2]) for r in _registry(stack))[decision["model_id"]] == day
    states = {ti["task_id"]: ti["state"] for ti in stack.api(
        "GET", f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()["task_instances"]}
    assert states["publish"] == "skipped" and states["lists"] == "skipped"
    stack.dry_run_model = decision["model_id"]


def test_two_day_backfill_runs_in_order_and_a_rerun_changes_nothing(stack):
    _idle(stack)
    first, last = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)
    known = {r["dag_run_id"] for r in stack.runs(DAG)}
    stack.run(readme_command("airflow backfill create", first, last))
    runs = wait_for(lambda: (lambda new: new if len(new) == 2 else None)(
        [r for r in stack.runs(DAG) if r["dag_run_id"] not in known]), timeout=60, what="two backfill runs",
        stack=stack)
    done = [stack.wait_run(DAG, r["dag_run_id"], timeout=2 * RUN_MINUTES * 60) for r in runs]
    assert [r["state"] for r in done] == ["success", "success"], stack.log_tails()
    done.sort(key=lambda r: r["logical_date"])
    assert [r["run_type"] for r in done] == ["backfill", "backfill"]
    assert [r["logical_date"][:10] for r in done] == [first.isoformat(), last.isoformat()]
    assert done[0]["end_date"] <= done[1]["start_date"], "the backfilled days overlapped"
    for run, logical in zip(done, (first, last)):
        assert stack.xcom(DAG, run["dag_run_id"], "extract")["day"] == (logical - dt.timedelta(days=1)).isoformat()

    # re-run a backfilled day with the README's one-date test, default deadline (no workaround variable)
    registry, live = _registry(stack), _live(stack)
    # (paused meanwhile, as the README says, so the running scheduler leaves its tasks alone)
    env = {k: v for k, v in stack.env.items() if k != "RECSYS_DAG_DEADLINE_HOURS"}
    stack.run(readme_command("airflow dags pause"))
    try:
        stack.run(readme_command("airflow dags test", last), env=env, timeout=RUN_MINUTES * 60)
    finally:
        stack.airflow("dags", "unpause", DAG)
    assert _registry(stack) == registry and _live(stack) == live


def test_failing_task_pages_on_call(stack, webhook):
    """A day without events: its run fails (no data to train on) and the failure alert reaches the webhook."""
    _idle(stack)
    logical = TODAY - dt.timedelta(days=40)
    known = {r["dag_run_id"] for r in stack.runs(DAG)}
    stack.airflow("dags", "trigger", DAG, "--logical-date", f"{logical.isoformat()}T01:00:00+00:00")
    run = stack.wait_run(DAG, _new_run(stack, known)["dag_run_id"], timeout=RUN_MINUTES * 60)
    assert run["state"] == "failed"
    tis = stack.api("GET", f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()["task_instances"]
    failed = [ti["task_id"] for ti in tis if ti["state"] == "failed"]
    assert "train" in failed, tis  # no events to train on (the day's drift report, beside it, fails too)
    for task_id in failed:
        title = f"{DAG}.{task_id} failed (logical date {logical.isoformat()}T01:00:00"
        alerts = wait_for(lambda: [t for t in webhook.alerts(":red_circle:") if title in t], timeout=60,
                          what=f"the on-call alert of the failed {task_id}", stack=stack)
        assert len(alerts) == 1  # retries are 0 here: one failure, one page


def test_rollback_from_the_readme(stack):
    """An operator promotes the dry run's model by hand, then the README's rollback puts the LIVE one back."""
    _idle(stack)
    if _live(stack) is None:  # nothing was promoted so far: promote a model of the scheduled run's day first
        other = next(r[0] for r in _registry(stack) if r[0] != stack.dry_run_model)
        stack.run(f"python -m recsys models promote {other}")
    live = _live(stack)
    stack.run(f"python -m recsys models promote {stack.dry_run_model}")
    assert _live(stack) == stack.dry_run_model
    stack.run(readme_command("python -m recsys models rollback"))
    assert _live(stack) == live
    assert dict((r[0], r[1]) for r in _registry(stack))[stack.dry_run_model] == "ARCHIVED"


def test_rest_api_trigger_runs_on_the_compose_celery_executor(stack):
    """A trigger through the public REST API (JWT from the simple auth manager), executed by an
    `airflow celery worker` with docker-compose.yml's executor settings (Redis broker, PostgreSQL
    result backend, execution API URL), no Docker."""
    _idle(stack)
    celery = compose_executor_env(REPO / "docker-compose.yml", metadata_db=stack.airflow_db,
                                  redis_db=stack.redis_db, api_port=stack.api_port)
    assert celery["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert celery["AIRFLOW__CELERY__BROKER_URL"] == f"redis://127.0.0.1:6379/{stack.redis_db}"
    assert celery["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{stack.api_port}/execution/"
    env = stack.env | celery
    stack.stop("scheduler")
    stack.start("celery-worker", "celery", "worker", env=env)
    stack.start("scheduler-celery", "scheduler", env=env)

    bad = stack.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"epochs": 0}})
    assert bad.status_code == 400 and "epochs" in bad.text  # the trigger form's bounds hold on the API too
    r = stack.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})
    assert r.status_code == 200, r.text
    run = stack.wait_run(DAG, r.json()["dag_run_id"], timeout=RUN_MINUTES * 60)
    assert run["state"] == "success", stack.log_tails()
    assert run["logical_date"] is None and run["conf"] == {"dry_run": True}
    assert stack.xcom(DAG, run["dag_run_id"], "extract")["day"] == (TODAY - dt.timedelta(days=1)).isoformat()
    tis = stack.api("GET", f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()["task_instances"]
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert states["train"] == "success" and states["publish"] == "skipped"  # dry_run from the REST conf
    worker_log = (stack.logs / "celery-worker.log").read_text(errors="replace")
    # the worker logs each workload's TI id; tasks skipped because publish skipped never leave the scheduler
    ran = [ti for ti in tis if ti["state"] == "success" or ti["task_id"] == "publish"]
    missing = [ti["task_id"] for ti in ran if ti["id"] not in worker_log]
    assert {ti["task_id"] for ti in ran} == {"extract", "validate", "data_drift", "train", "evaluate", "output_drift",
                                             "promote_or_archive", "publish", "train_sequential",
                                             "evaluate_sequential"}, [ti["task_id"] for ti in ran]
    # the sequential branch re-runs yesterday: it reuses the earlier run's model while its files are there
    # (its decision stands), else trains again (it used to reuse a row whose files retention had deleted, and
    # evaluate_sequential failed loading them); a dry run never makes a candidate
    reused = stack.xcom(DAG, run["dag_run_id"], "train_sequential").get("reused", False)
    decision = stack.xcom(DAG, run["dag_run_id"], "evaluate_sequential")["decision"]
    assert decision == ("kept" if reused else "archived"), (reused, decision)
    assert not missing, worker_log[-3000:]
