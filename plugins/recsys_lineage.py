"""The recsys DAGs' Airflow Assets, and what each task reports to OpenLineage.

**Assets** (README "Assets"): ``VALIDATED_DAY`` is an outlet of the nightly ``validate``
task (one event per validated day, ``extra`` = the day and its partition), ``PUBLISHED_MODEL``
of ``publish`` (``extra`` = the model id, its decision and its folder). ``recsys_ab_results``
is scheduled on ``PUBLISHED_MODEL`` or its hourly cron, so a new model gets fresh A/B results.
A skipped ``publish`` (a dry run) emits no event.

**Lineage** (README "Lineage"): the tasks are TaskFlow functions, for which the OpenLineage
provider (``apache-airflow-providers-openlineage``) has no extractor, so it reports the task's
``inlets`` and ``outlets`` (``ExtractorManager.extract_inlets_and_outlets``; OpenLineage
``Dataset`` objects are taken as they are). What a run reads and writes depends on its day and
model, known only once the step has run: ``step_task`` (the task of a step of ``recsys.pipeline.steps``,
which both DAGs build their tasks with) wraps a task function and, after it returns, sets the running
task's inlets and outlets to the datasets ``recsys.lineage`` names from the task's upstream results and
its own (the day's partition ``artifacts/events/date=D``, ``artifacts/models/<model_id>``, tables, Redis key patterns). The
provider reads them for the task's COMPLETE event. We do not use the hook-lineage collector: it
takes Airflow Assets only, so Redis keys (no OpenLineage converter) would be dropped, and it is
one process-wide object that ``dag.test()`` (every task in one process) never empties.
Events go where ``AIRFLOW__OPENLINEAGE__TRANSPORT`` says (console in docker-compose.yml and
``make run``); without any transport setting the provider is off and nothing is reported.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from airflow.sdk import Asset

log = logging.getLogger(__name__)

# an ``x-`` URI scheme is Airflow's mark of a custom scheme: no provider normalizes it, so declaring
# the Assets loads no provider's URI handlers (boto3 and the like) at DAG parse time
VALIDATED_DAY = Asset(name="recsys_validated_day", uri="x-recsys://events/validated", group="recsys")
PUBLISHED_MODEL = Asset(name="recsys_published_model", uri="x-recsys://models/published", group="recsys")


def where():
    """The locations of this task's clients (plugins/recsys_hooks.py), without opening a connection."""
    from recsys_hooks import CONN_REDIS, _has_connection, engine

    from recsys.lineage import Where
    from recsys.settings import get_settings

    settings = get_settings()
    redis_url = settings.redis_url
    if _has_connection(CONN_REDIS):
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(CONN_REDIS)
        redis_url = f"redis://{conn.host}:{conn.port or 6379}/{conn.extra_dejson.get('db', 0)}"
    return Where(database_url=engine().url.render_as_string(hide_password=True),
                 artifact_uri=settings.resolved_artifact_uri, redis_url=redis_url)


def facts_of(args: tuple, kwargs: dict, result: Any) -> dict:
    """What names a run's datasets: the upstream results (dicts) handed to the task, then its own."""
    facts: dict = {}
    for value in (*args, *kwargs.values(), result):
        if isinstance(value, dict):
            facts.update(value)
    return facts


def asset_extra(asset: Asset, facts: dict, where) -> dict:
    """The ``extra`` of the asset event: the day (and model) it stands for, and where its data is."""
    from recsys.lineage import day_partition, model_artifacts

    if asset == VALIDATED_DAY:
        return {"day": facts["day"], "partition": day_partition(where, facts["day"]).uri}
    if asset == PUBLISHED_MODEL:
        return {"model_id": facts["model_id"], "day": facts.get("day"), "decision": facts.get("decision"),
                "artifacts": model_artifacts(where, facts["model_id"]).uri}
    return {}


def report(step_io: Callable, step: str, facts: dict) -> None:
    """Fill the running task's asset events, then set its inlets/outlets to what ``step`` read and wrote.

    Observability never fails a task that did its work: a failure here is logged (the DagBag test
    checks that every task of both DAGs has its entry in ``recsys.lineage``, the unit tests the extras)."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    task, here = context["task"], where()
    for asset in task.outlets:
        if isinstance(asset, Asset):
            try:
                context["outlet_events"][asset].extra = asset_extra(asset, facts, here)
            except Exception:
                log.warning("asset %s: no extra for step %s", asset.name, step, exc_info=True)
    try:
        inputs, outputs = step_io(step, facts, here)
        task.inlets = _declared(task.inlets) + _datasets(inputs)
        task.outlets = _declared(task.outlets) + _datasets(outputs)
    except Exception:
        log.warning("no lineage reported for step %s", step, exc_info=True)


def _declared(objs) -> list:
    """The task's own inlets/outlets (its Assets), without the datasets an earlier run of it set."""
    from openlineage.client.event_v2 import Dataset

    return [o for o in objs or [] if not isinstance(o, Dataset)]


def _datasets(datasets) -> list:
    from openlineage.client.event_v2 import Dataset

    return [Dataset(namespace=d.namespace, name=d.name) for d in datasets]


def _reporting(io_name: str, step: str | None = None) -> Callable:
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            from recsys import lineage

            result = fn(*args, **kwargs)
            report(getattr(lineage, io_name), step or fn.__name__, facts_of(args, kwargs, result))
            return result

        return run

    return decorate


nightly_lineage = _reporting("nightly_io")  # the task's name is its step in recsys.lineage.nightly_io
hourly_lineage = _reporting("hourly_io")    # ... in recsys.lineage.hourly_io

ASSETS = {"validated_day": VALIDATED_DAY, "published_model": PUBLISHED_MODEL}  # a Step's ``outlet``
_LINEAGE_OF = {"recsys_nightly": "nightly_io", "recsys_ab_results": "hourly_io"}


def step_task(dag_id: str, name: str) -> Callable:
    """The TaskFlow task of step ``name`` of ``dag_id`` in ``recsys.pipeline.steps``: its task id, how Airflow runs
    it (mapped parallelism, trigger rule, the Asset it updates) and its lineage report, all from the step list."""
    from airflow.sdk import task

    from recsys.pipeline.steps import step

    the_step = step(name, dag_id)
    options: dict[str, Any] = {"task_id": the_step.name}
    if the_step.parallel is not None:
        options["max_active_tis_per_dagrun"] = the_step.parallel
    if the_step.trigger_rule is not None:
        options["trigger_rule"] = the_step.trigger_rule
    if the_step.outlet is not None:
        options["outlets"] = [ASSETS[the_step.outlet]]

    def decorate(fn: Callable) -> Callable:
        return task(**options)(_reporting(_LINEAGE_OF[dag_id], the_step.name)(fn))

    return decorate
