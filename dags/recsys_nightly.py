"""recsys_nightly: yesterday's events -> validated -> trained -> evaluated -> promoted -> served.

The run for logical date D processes the UTC day D - 1. Every task calls one
function of recsys.pipeline.nightly; clients come from plugins/recsys_hooks.py.
Backfill: ``airflow backfill create --dag-id recsys_nightly --from-date A --to-date B``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback
from recsys_alerts import task_defaults

from recsys.settings import get_settings

_defaults = get_settings()  # environment variables only: no I/O at parse time

# Airflow 3.3.2's dag.test() (and `airflow dags test`) crashes when a run with a
# deadline succeeds (DeadlineAlertModel.get_by_id gets a dict), so tests and
# `make run` switch it off with RECSYS_DAG_DEADLINE_HOURS=0; the scheduler keeps it.
DEADLINE = (
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(hours=_defaults.dag_deadline_hours),
        callback=SyncCallback("recsys_alerts.on_deadline_missed", kwargs={"limit": f"{_defaults.dag_deadline_hours:g} hours"}),
    )
    if _defaults.dag_deadline_hours
    else None
)

PARAMS = {
    "window_days": Param(_defaults.training_window_days, type="integer", minimum=2, maximum=730,
                         description="Training window in days, ending with the processed day (the newest day is the hold-out)."),
    "epochs": Param(_defaults.epochs, type="integer", minimum=1, maximum=500, description="LightFM training epochs."),
    "loss": Param(_defaults.loss, type="string", enum=["warp", "bpr", "logistic", "warp-kos"], description="LightFM loss."),
    "force_promotion": Param(False, type="boolean", description="Promote the new model even if it does not beat the LIVE one."),
    "dry_run": Param(False, type="boolean", description="Train and evaluate only: promote, publish and precompute nothing."),
    "promotion_policy": Param(_defaults.promotion_policy, type="string", enum=["auto", "ab_test"],
                              description="auto: promote or archive; ab_test: a winner waits as CANDIDATE for an A/B test."),
}


def _skip_on(fn, *args):
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.pipeline.nightly import Skip

    try:
        return fn(*args)
    except Skip as exc:
        raise AirflowSkipException(str(exc)) from exc


@dag(
    dag_id="recsys_nightly",
    schedule="0 1 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["recsys", "nightly", "ml"],
    params=PARAMS,
    doc_md=__doc__,
    default_args=task_defaults(retry_exponential_backoff=2.0),
    deadline=DEADLINE,
)
def recsys_nightly():
    from recsys_hooks import engine, redis_client, run_day, run_params, store

    from recsys.pipeline import nightly

    @task
    def extract() -> dict:
        return nightly.extract(engine(), store(), run_day())

    @task
    def validate(extracted: dict) -> dict:
        return nightly.validate(engine(), store(), run_day())

    @task
    def train(validated: dict) -> dict:
        return nightly.train(engine(), store(), run_day(), run_params())

    @task
    def evaluate(trained: dict) -> dict:
        return nightly.evaluate(engine(), store(), run_day(), trained["model_id"])

    @task
    def promote_or_archive(evaluated: dict) -> dict:
        return nightly.promote_or_archive(engine(), run_day(), evaluated["model_id"], run_params())

    @task
    def publish(decision: dict) -> dict:
        return _skip_on(nightly.publish, engine(), store(), run_day(), decision)

    @task
    def segments(decision: dict, published: dict) -> list[str]:
        return _skip_on(nightly.segments, engine(), run_day(), decision)

    @task(max_active_tis_per_dagrun=4)
    def precompute(segment: str) -> dict:
        return nightly.precompute_segment(engine(), store(), redis_client(), run_day(), segment)

    @task
    def lists(decision: dict, published: dict) -> dict:
        return _skip_on(nightly.lists, engine(), store(), redis_client(), run_day(), decision)

    decision = promote_or_archive(evaluate(train(validate(extract()))))
    published = publish(decision)
    precompute.expand(segment=segments(decision, published))
    lists(decision, published)


recsys_nightly()
