"""recsys_ab_results: every hour and after each published model, A/B impressions -> results -> winner -> promotion.

The run for logical date L covers the hour [L - 1h, L): it flushes the impression
stream into the database, writes every running test's results as of L to ab_tests,
closes the tests that ended (promoting a winning treatment through the registry,
archiving a losing one) and precomputes the new LIVE model's lists after a promotion.
A run without a logical date (a manual trigger from the UI, the CLI or the REST
API, or a run triggered by the `recsys_published_model` Asset) stands for its
`run_after`: it covers the hour before the trigger.
The tasks are the steps of `recsys.pipeline.steps.HOURLY`; each calls the function of `recsys.flows.hourly`
named after it; clients come from plugins/recsys_hooks.py. Backfill:
`airflow backfill create --dag-id recsys_ab_results --from-date A --to-date B`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag
from recsys_alerts import task_defaults
from recsys_lineage import PUBLISHED_MODEL, step_task


@dag(
    dag_id="recsys_ab_results",
    # hourly, and as soon as the nightly run publishes a model (plugins/recsys_lineage.py)
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("@hourly", timezone="UTC"),
                                 assets=[PUBLISHED_MODEL]),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["recsys", "ab_test", "hourly"],
    doc_md=__doc__,
    default_args=task_defaults(),
)
def recsys_ab_results():
    from recsys_hooks import engine, redis_client, run_instant, skippable, store

    from recsys.flows import hourly

    def step(name: str):
        return step_task("recsys_ab_results", name)

    @step("flush_impressions")
    def flush_impressions() -> dict:
        return hourly.flush_impressions(engine(), redis_client())

    @step("update_results")
    def update_results(flushed: dict) -> dict:
        return hourly.update_results(engine(), run_instant())

    @step("refresh_after_promotion")
    def refresh_after_promotion(outcome: dict) -> dict:
        return skippable(hourly.refresh_after_promotion, engine(), store(), redis_client(), outcome)

    refresh_after_promotion(update_results(flush_impressions()))


recsys_ab_results()
