"""The one list of the pipeline's steps, and the one way a step records itself.

``NIGHTLY`` (``dags/recsys_nightly.py``) and ``HOURLY`` (``dags/recsys_ab_results.py``) list every step once,
as a ``Step``: its ``name`` is the DAG's task id, the function of ``recsys.flows`` that runs it
(``recsys.flows.nightly.<name>``), the key of its lineage entry (``recsys.lineage``: ``reads`` and ``writes``
name its datasets) and, with ``record``, the name of its row in ``pipeline_runs`` (``precompute:{shard}``: a
mapped task leaves one row per shard). The DAG files build their tasks from it (``plugins/recsys_lineage.py``:
``step_task``), so a task, its flow, its lineage and its record cannot drift apart; ``tests/flows/test_steps_list.py``
checks each against the list.

Recording: a step wraps its work in ``recording(engine, day, step(...))`` (or decorates its function with
``recorded(step(...))``, which records the function's small result): SUCCESS with its details and duration,
SKIPPED with the reason (``Skip`` raised, or ``StepRecord.skip`` for a step that ends without work and without
failing its task), FAILED with the error (and the details gathered so far). Rows are keyed ``(day, record)``,
so re-runs upsert; they feed the pipeline metrics (``recsys.pipeline_metrics``). Nothing else writes a record.

Datasets of ``reads`` / ``writes`` (resolved by ``recsys.lineage``): ``table:<name>``, ``redis:<key format of
recsys.keys>``, and the run's own ``partition`` (``events/date=D``), ``validation_report``, ``drift_report``,
``model`` (``models/<model_id>``) and ``model_or_registry`` (the model's folder, or the registry table when the
run names no model).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from recsys.constants import STEP_DRIFT, STEP_OUTPUT_DRIFT, STEP_SKIPPED, STEP_SUCCESS
from recsys.keys import KEY_BESTSELLERS, KEY_IMPRESSIONS, KEY_RECS, KEY_RECS_MODEL, KEY_TRENDING

EVENTS, INTERACTIONS, USERS, PRODUCTS = ("table:user_events", "table:user_product_interactions", "table:users",
                                         "table:products")
MODELS, PROMOTIONS = "table:recommendation_models", "table:model_promotions"
AB_TESTS, IMPRESSIONS = "table:ab_tests", "table:ab_impressions"
RECS, RECS_MODEL, TRENDING, BESTSELLERS = (f"redis:{KEY_RECS}", f"redis:{KEY_RECS_MODEL}", f"redis:{KEY_TRENDING}",
                                           f"redis:{KEY_BESTSELLERS}")
STREAM = f"redis:{KEY_IMPRESSIONS}"
PARTITION, REPORT, DRIFT = "partition", "validation_report", "drift_report"
MODEL, MODEL_OR_REGISTRY = "model", "model_or_registry"
RUN_DATASETS = (PARTITION, REPORT, DRIFT, MODEL, MODEL_OR_REGISTRY)


@dataclass(frozen=True)
class Step:
    """One task of a DAG: its name (task id, flow function, lineage key), its record, its datasets and how
    Airflow runs it (``parallel``: ``max_active_tis_per_dagrun`` of a mapped task; ``trigger_rule``;
    ``outlet``: the Asset it updates, ``plugins/recsys_lineage.py``)."""

    name: str
    record: str | None
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    parallel: int | None = None
    trigger_rule: str | None = None
    outlet: str | None = None

    def record_name(self, fields: dict[str, Any] | None = None) -> str:
        """The record of this run of the step: ``precompute:{shard}`` with ``shard=3`` -> ``precompute:3``."""
        if self.record is None:
            raise ValueError(f"step {self.name!r} keeps no record")
        return self.record.format(**(fields or {}))[:64]


NIGHTLY: tuple[Step, ...] = (
    Step("extract", "extract", (EVENTS,), (PARTITION, INTERACTIONS)),
    Step("validate", "validate", (PARTITION, EVENTS, PRODUCTS), (REPORT,), outlet="validated_day"),
    Step("data_drift", STEP_DRIFT, (PARTITION, EVENTS), (DRIFT,)),
    Step("train", "train", (EVENTS, USERS, PRODUCTS), (MODEL, MODELS)),
    Step("train_sequential", "train_sequential", (EVENTS, PRODUCTS), (MODEL, MODELS)),
    Step("evaluate_sequential", "evaluate_sequential", (MODEL, EVENTS), (MODELS,)),
    Step("evaluate", "evaluate", (MODEL, EVENTS), (MODELS,)),
    Step("output_drift", STEP_OUTPUT_DRIFT, (MODEL, MODELS, EVENTS), (DRIFT,)),
    Step("promote_or_archive", "promote_or_archive", (MODELS,), (MODELS, PROMOTIONS)),
    Step("publish", "publish", (MODEL, MODELS, USERS, PRODUCTS), (MODEL, MODELS), outlet="published_model"),
    Step("shards", "shards", (MODELS, EVENTS, USERS), ()),
    Step("precompute", "precompute:{shard}", (MODEL_OR_REGISTRY, EVENTS, AB_TESTS), (RECS, RECS_MODEL), parallel=4),
    Step("switch", "switch", (MODELS,), (MODELS, PROMOTIONS)),
    Step("promote_lists", "promote_lists:{shard}", (RECS_MODEL, EVENTS), (RECS,), parallel=4),
    Step("lists", "lists", (EVENTS, PRODUCTS), (TRENDING, BESTSELLERS), trigger_rule="none_failed"),
)

HOURLY: tuple[Step, ...] = (  # the A/B run covers an hour, not a day: its steps keep no day record
    Step("flush_impressions", None, (STREAM,), (IMPRESSIONS,)),
    Step("update_results", None, (IMPRESSIONS, EVENTS, AB_TESTS), (AB_TESTS, MODELS)),
    Step("refresh_after_promotion", None, (MODEL_OR_REGISTRY, EVENTS), (RECS, TRENDING)),
)

DAGS: dict[str, tuple[Step, ...]] = {"recsys_nightly": NIGHTLY, "recsys_ab_results": HOURLY}


def steps_of(dag_id: str) -> dict[str, Step]:
    """The steps of ``dag_id`` by name, in the list's order."""
    if dag_id not in DAGS:
        raise ValueError(f"no step list for DAG {dag_id!r} (known: {sorted(DAGS)})")
    return {s.name: s for s in DAGS[dag_id]}


def step(name: str, dag_id: str = "recsys_nightly") -> Step:
    """The step ``name`` of ``dag_id``; an unknown name is a clear error (at import, for a decorated step)."""
    steps = steps_of(dag_id)
    if name not in steps:
        raise ValueError(f"{dag_id} has no step {name!r} (known: {sorted(steps)})")
    return steps[name]


class Skip(Exception):
    """Nothing to do for this task in this run (the DAG marks the task skipped, the record says SKIPPED)."""


class StepRecord:
    """What a running step leaves in its record: ``details`` (plain JSON), or ``skip`` for a step that ends
    without work while its task succeeds."""

    def __init__(self, name: str):
        self.name = name
        self.status = STEP_SUCCESS
        self.details: dict[str, Any] = {}

    def skip(self, reason: str, **details: Any) -> None:
        self.status, self.details = STEP_SKIPPED, {"reason": reason, **details}


@contextmanager
def recording(engine, day: dt.date, the_step: Step | str, fields: dict[str, Any] | None = None) -> Iterator[StepRecord]:
    """Record the step run inside the ``with`` block under ``(day, record name)``; ``the_step`` is a ``Step`` of
    the lists (``step("validate")``) or, for a step outside them, a record name (which may name ``fields``)."""
    from recsys.pipeline.runs import record_failure, record_step

    name = the_step.record_name(fields) if isinstance(the_step, Step) else the_step.format(**(fields or {}))[:64]
    record, started = StepRecord(name), time.perf_counter()
    try:
        yield record
    except Skip as exc:
        record_step(engine, day, name, STEP_SKIPPED, {"reason": str(exc)})
        raise
    except Exception as exc:
        record_failure(engine, day, name, exc, record.details)
        raise
    details = dict(record.details)
    if record.status != STEP_SKIPPED:
        details["duration_seconds"] = round(time.perf_counter() - started, 3)
    record_step(engine, day, name, record.status, details)


def small_details(result: Any) -> dict:
    """The scalars of a step's result (a list: its length), for its record."""
    details = dict(result) if isinstance(result, dict) else {"count": len(result)}
    return {k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, type(None)))}


def recorded(the_step: Step | str) -> Callable:
    """Record each run of the decorated function (its arguments include ``engine`` and ``day``; a record name with
    fields takes them from the arguments: ``precompute:{shard}``); its small result is the record's details."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs).arguments
            with recording(bound["engine"], bound["day"], the_step, bound) as record:
                result = fn(*args, **kwargs)
                record.details = small_details(result)
            return result

        run.step = the_step
        return run

    return decorate


def day_of(produced: dict) -> dt.date:
    """The processed day an upstream task handed on (its ``day``, ISO format)."""
    try:
        return dt.date.fromisoformat(produced["day"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("the upstream task's result names no processed day (a 'day' in ISO format): "
                         f"{produced!r}") from exc
