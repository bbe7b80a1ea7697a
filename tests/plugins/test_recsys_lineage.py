"""plugins/recsys_lineage.py: the running task's inlets/outlets and asset-event extras, from its results."""

from __future__ import annotations

from types import SimpleNamespace

import importlib

import airflow.sdk
import pytest
import recsys_lineage
from airflow.sdk import task
from openlineage.client.event_v2 import Dataset

from recsys.lineage import Where, nightly_io


@pytest.fixture
def hooks():
    """plugins/recsys_hooks.py as recsys_lineage.where() imports it (Airflow's plugin loading may re-import it)."""
    return importlib.import_module("recsys_hooks")


@pytest.fixture
def context(monkeypatch, hooks):
    from airflow.sdk.execution_time.context import OutletEventAccessors

    monkeypatch.setenv("RECSYS_ARTIFACT_URI", "s3://recsys-prod/artifacts")
    monkeypatch.setenv("RECSYS_REDIS_URL", "redis://cache:6379/3")
    from recsys.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr(hooks, "_has_connection", lambda conn_id: False)
    monkeypatch.setattr(hooks, "engine", lambda: SimpleNamespace(url=_url("postgresql://u:pw@db:5432/shop")))
    ctx: dict = {"outlet_events": OutletEventAccessors()}
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: ctx)
    yield ctx
    get_settings.cache_clear()


def _url(text: str):
    from sqlalchemy.engine import make_url

    return make_url(text)


def _operator(**kwargs):
    from airflow.sdk import DAG

    @task(task_id="validate", **kwargs)
    def validate():
        return None

    with DAG("lineage_probe", schedule=None):
        return validate().operator


def test_where_names_the_clients_without_credentials(context):
    here = recsys_lineage.where()
    assert here == Where("postgresql://u:***@db:5432/shop", "s3://recsys-prod/artifacts", "redis://cache:6379/3")
    assert here.table("users").namespace == "postgres://db:5432"


def test_where_takes_redis_from_the_airflow_connection(context, monkeypatch, hooks):
    monkeypatch.setattr(hooks, "_has_connection", lambda conn_id: conn_id == hooks.CONN_REDIS)
    monkeypatch.setattr(airflow.sdk.BaseHook, "get_connection",
                        staticmethod(lambda conn_id: SimpleNamespace(host="redis-1", port=6390, extra_dejson={"db": 4})))
    assert recsys_lineage.where().redis_url == "redis://redis-1:6390/4"


def test_facts_are_the_upstream_results_then_the_task_result():
    upstream = {"day": "2026-11-20", "model_id": "new", "decision": "promoted"}
    facts = recsys_lineage.facts_of((upstream, "seg-1"), {"other": {"x": 1}}, {"model_id": "live", "users": 3})
    assert facts == {"day": "2026-11-20", "model_id": "live", "decision": "promoted", "x": 1, "users": 3}
    assert recsys_lineage.facts_of((upstream,), {}, ["a", "b"]) == upstream


def test_a_run_sets_the_tasks_datasets_and_the_asset_event_extra_and_a_rerun_replaces_them(context):
    op = _operator(outlets=[recsys_lineage.VALIDATED_DAY])
    context["task"] = op
    for day in ("2026-11-19", "2026-11-20"):  # dag.test() reuses one operator: the second run replaces
        recsys_lineage.report(nightly_io, "validate", {"day": day})
    here = recsys_lineage.where()
    inputs, outputs = nightly_io("validate", {"day": "2026-11-20"}, here)
    assert op.inlets == [Dataset(namespace=d.namespace, name=d.name) for d in inputs]
    assert op.outlets == [recsys_lineage.VALIDATED_DAY, *(Dataset(namespace=d.namespace, name=d.name) for d in outputs)]
    assert context["outlet_events"][recsys_lineage.VALIDATED_DAY].extra == {
        "day": "2026-11-20", "partition": "s3://recsys-prod/artifacts/events/date=2026-11-20"}


def test_the_published_model_event_names_the_model_and_its_folder(context):
    op = _operator(outlets=[recsys_lineage.PUBLISHED_MODEL])
    context["task"] = op
    recsys_lineage.report(nightly_io, "publish", {"day": "2026-11-20", "model_id": "01M", "decision": "promoted"})
    assert context["outlet_events"][recsys_lineage.PUBLISHED_MODEL].extra == {
        "model_id": "01M", "day": "2026-11-20", "decision": "promoted",
        "artifacts": "s3://recsys-prod/artifacts/models/01M"}


def test_lineage_never_fails_the_task(context, caplog):
    op = _operator()
    context["task"] = op
    recsys_lineage.report(nightly_io, "renamed_task", {"day": "2026-11-20"})
    assert "no lineage reported for step renamed_task" in caplog.text
    assert op.inlets == [] and op.outlets == []


def test_a_missing_fact_loses_the_extra_but_not_the_lineage(context, caplog):
    op = _operator(outlets=[recsys_lineage.PUBLISHED_MODEL])
    context["task"] = op
    recsys_lineage.report(nightly_io, "publish", {"day": "2026-11-20"})  # no model_id
    assert "asset recsys_published_model: no extra for step publish" in caplog.text
    assert context["outlet_events"][recsys_lineage.PUBLISHED_MODEL].extra == {}
    assert len(op.inlets) == 3  # recommendation_models, users, products (no model folder to name)


def test_the_decorator_reports_after_the_step_with_the_upstream_facts(context, monkeypatch):
    seen = []
    monkeypatch.setattr(recsys_lineage, "report", lambda io, step, facts: seen.append((io.__name__, step, facts)))

    @recsys_lineage.nightly_lineage
    def evaluate(trained: dict) -> dict:
        """Docstring kept."""
        return {"ndcg": 0.1}

    assert evaluate({"day": "2026-11-20", "model_id": "m"}) == {"ndcg": 0.1}
    assert seen == [("nightly_io", "evaluate", {"day": "2026-11-20", "model_id": "m", "ndcg": 0.1})]
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Docstring kept."
    import inspect

    assert list(inspect.signature(evaluate).parameters) == ["trained"]  # what @task reads
