"""The DagBag loads, the nightly DAG is wired as documented, and parsing touches nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NIGHTLY_ORDER = ["extract", "validate", "train", "evaluate", "promote_or_archive", "publish"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "recsys_nightly" in dagbag.dags


def test_every_dag_has_tags_retries_and_alerts(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            assert t.on_failure_callback, f"{dag_id}.{t.task_id} has no on_failure_callback"
            assert t.retries == int(os.environ["RECSYS_DAG_RETRIES"]), f"{dag_id}.{t.task_id} retries"


def test_nightly_task_order(dagbag):
    dag = dagbag.dags["recsys_nightly"]
    for upstream, downstream in zip(NIGHTLY_ORDER, NIGHTLY_ORDER[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("shards").downstream_task_ids == {"precompute"}
    assert {"shards", "lists"} <= dag.get_task("publish").downstream_task_ids
    # the drift reports hang off the main line: a failed report fails the run but promotes or blocks nothing
    assert dag.get_task("validate").downstream_task_ids == {"data_drift", "train", "train_sequential"}
    # the sequential branch ends with its evaluation: it never feeds promotion, publish or precompute
    assert dag.get_task("train_sequential").downstream_task_ids == {"evaluate_sequential"}
    assert not dag.get_task("evaluate_sequential").downstream_task_ids
    assert dag.get_task("evaluate").downstream_task_ids == {"output_drift", "promote_or_archive"}
    assert not dag.get_task("data_drift").downstream_task_ids and not dag.get_task("output_drift").downstream_task_ids
    assert dag.get_task("precompute").is_mapped if hasattr(dag.get_task("precompute"), "is_mapped") else True


def test_nightly_schedule_params_and_deadline(dagbag):
    dag = dagbag.dags["recsys_nightly"]
    assert dag.max_active_runs == 1
    for name in ("window_days", "epochs", "loss", "force_promotion", "dry_run", "promotion_policy", "family",
                 "challenger_candidate"):
        assert name in dag.params, name
        assert dag.params.get_param(name).description, f"param {name} has no description for the trigger form"
    assert dag.deadline, "the 4-hour deadline alert is missing"
    assert os.environ.get("RECSYS_DAG_DEADLINE_HOURS") in (None, "4", "4.0")


def _serialized(dag):
    """The DAG as the scheduler and the UI see it (what the dag processor writes to the metadata DB)."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))


def test_validated_day_and_published_model_are_assets_and_the_ab_dag_runs_on_the_model(dagbag):
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

    nightly = _serialized(dagbag.dags["recsys_nightly"])
    outlets = {t.task_id: [(a.name, a.uri) for a in t.outlets] for t in nightly.tasks if t.outlets}
    assert outlets == {"validate": [("recsys_validated_day", "x-recsys://events/validated")],
                       "publish": [("recsys_published_model", "x-recsys://models/published")]}
    ab = _serialized(dagbag.dags["recsys_ab_results"])
    assert isinstance(ab.timetable, AssetOrTimeSchedule)
    assert [a.name for a in ab.timetable.asset_condition.objects] == ["recsys_published_model"]
    assert isinstance(ab.timetable.timetable, CronTriggerTimetable)
    assert ab.timetable.timetable._expression == "0 * * * *"  # the hourly cron it had before, kept


def test_every_task_reports_its_lineage(dagbag):
    """Each task's name is a step of recsys.lineage (a renamed task would report nothing)."""
    from recsys.lineage import Where, hourly_io, nightly_io

    where = Where("postgresql://h/db", "s3://b/artifacts", "redis://h/0")
    for dag_id, io in (("recsys_nightly", nightly_io), ("recsys_ab_results", hourly_io)):
        for t in dagbag.dags[dag_id].tasks:
            inputs, outputs = io(t.task_id, {"day": "2026-11-20", "model_id": "m"}, where)
            assert inputs, f"{dag_id}.{t.task_id} reads nothing?"
            assert getattr(t, "python_callable", None) is None or t.python_callable.__wrapped__, t.task_id


PARSE_PROBE = r"""
import json, socket, sys
def refuse(*a, **k):
    raise RuntimeError("network or database access at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
HEAVY = ("pandas", "numpy", "lightfm", "great_expectations", "sklearn", "scipy", "redis", "boto3", "psycopg")
before = {m for m in HEAVY if m in sys.modules}  # what Airflow itself already loaded
bag = DagBag(dag_folder=sys.argv[1])
added = [m for m in HEAVY if m in sys.modules and m not in before]
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags), "heavy": added}))
"""


def test_parsing_touches_no_database_or_network_and_imports_nothing_heavy():
    """Parse in a clean interpreter where every socket connect raises."""
    env = dict(os.environ, RECSYS_DATABASE_URL="postgresql://nobody@192.0.2.1:5432/none")
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(REPO / "dags")],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert "recsys_nightly" in result["dags"]
    assert result["heavy"] == [], f"the DAG files import {result['heavy']} at parse time"
