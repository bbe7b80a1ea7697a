"""recsys_nightly: yesterday's events -> validated -> trained -> evaluated -> promoted -> served.

**Which day a run processes.** A run with a logical date D (scheduled at 01:00
UTC, backfilled, or triggered with a logical date) processes the UTC day D - 1.
A run without a logical date (a manual trigger from the UI, `airflow dags
trigger` or the REST API may leave it out in Airflow 3) processes the day before
its `run_after`, i.e. yesterday. The first task computes that day; every later
task reads it from what its upstream task returned.

**Release**: `promote_or_archive` takes the gate's decision; a promoted model is
published, its lists precomputed into its own keys (`precompute`, per shard), then
`switch` makes it LIVE and `promote_lists` moves its lists onto the LIVE keys (one path
for every way a model becomes LIVE: `recsys.pipeline.release`). A run that fails
before `switch` leaves the previous LIVE model serving its own lists.

**Sequential branch**: `train_sequential -> evaluate_sequential` runs beside the
hybrid after `validate` (`RECSYS_SEQUENTIAL_NIGHTLY`); it registers and judges the
sequential model but never switches the LIVE one.

**Params** (trigger form or `--conf`) override the settings for this run; the
effective values are logged at the start of `extract` and `train`.

The tasks are the steps of `recsys.pipeline.steps.NIGHTLY` (task id, parallelism, trigger rule, Asset and
lineage come from that list); each calls the function of `recsys.flows.nightly` named after it; clients come
from plugins/recsys_hooks.py. Backfill:
`airflow backfill create --dag-id recsys_nightly --from-date A --to-date B`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag
from recsys_alerts import task_defaults
from recsys_lineage import step_task
from recsys_nightly_config import allow_dag_test, nightly_deadline, nightly_params


@dag(
    dag_id="recsys_nightly",
    schedule="0 1 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["recsys", "nightly", "ml"],
    params=nightly_params(),
    doc_md=__doc__,
    default_args=task_defaults(retry_exponential_backoff=2.0),
    deadline=nightly_deadline(),
)
def recsys_nightly():
    from recsys_hooks import engine, redis_client, run_day, run_params, skippable, store

    from recsys.flows import nightly
    from recsys.pipeline.steps import day_of

    def step(name: str):
        return step_task("recsys_nightly", name)

    @step("extract")
    def extract() -> dict:
        return nightly.extract(engine(), store(), run_day(), run_params())

    @step("validate")
    def validate(extracted: dict) -> dict:
        return nightly.validate(engine(), store(), day_of(extracted))

    @step("train")
    def train(validated: dict) -> dict:
        return nightly.train(engine(), store(), day_of(validated), run_params())

    @step("train_sequential")
    def train_sequential(validated: dict) -> dict:
        return skippable(nightly.train_sequential, engine(), store(), day_of(validated), run_params())

    @step("evaluate_sequential")
    def evaluate_sequential(trained: dict) -> dict:
        return nightly.evaluate_sequential(engine(), store(), day_of(trained), trained["model_id"], run_params())

    @step("data_drift")
    def data_drift(validated: dict) -> dict:
        return nightly.data_drift(engine(), store(), day_of(validated))

    @step("output_drift")
    def output_drift(evaluated: dict) -> dict:
        return nightly.output_drift(engine(), store(), day_of(evaluated), evaluated["model_id"])

    @step("evaluate")
    def evaluate(trained: dict) -> dict:
        return nightly.evaluate(engine(), store(), day_of(trained), trained["model_id"])

    @step("promote_or_archive")
    def promote_or_archive(evaluated: dict) -> dict:
        return nightly.promote_or_archive(engine(), day_of(evaluated), evaluated["model_id"], run_params())

    @step("publish")
    def publish(decision: dict) -> dict:
        return skippable(nightly.publish, engine(), store(), day_of(decision), decision)

    @step("shards")
    def shards(decision: dict, published: dict) -> list[int]:
        return skippable(nightly.shards, engine(), day_of(decision), decision)

    @step("precompute")
    def precompute(decision: dict, shard: int) -> dict:
        return nightly.precompute(engine(), store(), redis_client(), day_of(decision), shard, decision)

    @step("switch")
    def switch(decision: dict, precomputed: list) -> dict:
        return skippable(nightly.switch, engine(), day_of(decision), decision)

    @step("promote_lists")
    def promote_lists(decision: dict, switched: dict, precomputed: dict) -> dict:
        return skippable(nightly.promote_lists, engine(), redis_client(), day_of(decision), precomputed["shard"],
                         decision)

    @step("lists")
    def lists(decision: dict, published: dict, switched: dict) -> dict:
        return skippable(nightly.lists, engine(), store(), redis_client(), day_of(decision), decision)

    validated = validate(extract())
    data_drift(validated)
    evaluate_sequential(train_sequential(validated))  # a parallel branch: never switches the LIVE model
    evaluated = evaluate(train(validated))
    output_drift(evaluated)
    decision = promote_or_archive(evaluated)
    published = publish(decision)
    precomputed = precompute.partial(decision=decision).expand(shard=shards(decision, published))
    switched = switch(decision, precomputed)
    promote_lists.partial(decision=decision, switched=switched).expand(precomputed=precomputed)
    lists(decision, published, switched)


allow_dag_test(recsys_nightly())
