"""recsys_ab_results: every hour and after each published model, A/B impressions -> results -> winner -> promotion.

The run for logical date L covers the hour [L - 1h, L): it flushes the impression
stream into the database, writes every running test's results as of L to ab_tests,
closes the tests that ended (promoting a winning treatment through the registry,
archiving a losing one) and precomputes the new LIVE model's lists after a promotion.
A run without a logical date (a manual trigger from the UI, the CLI or the REST
API, or a run triggered by the `recsys_published_model` Asset) stands for its
`run_after`: it covers the hour before the trigger.
Every task calls one function of `recsys.flows.hourly`; clients come from
plugins/recsys_hooks.py. Backfill:
`airflow backfill create --dag-id recsys_ab_results --from-date A --to-date B`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from recsys_alerts import task_defaults
from recsys_lineage import PUBLISHED_MODEL, hourly_lineage


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

    @task
    @hourly_lineage
    def flush_impressions() -> dict:
        return hourly.flush(engine(), redis_client())

    @task
    @hourly_lineage
    def update_results(flushed: dict) -> dict:
        return hourly.update_results(engine(), run_instant())

    @task
    @hourly_lineage
    def refresh_after_promotion(outcome: dict) -> dict:
        return skippable(hourly.refresh_after_promotion, engine(), store(), redis_client(), outcome)

    refresh_after_promotion(update_results(flush_impressions()))


recsys_ab_results()
