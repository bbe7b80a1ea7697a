"""One nightly run through `airflow dags test`, with the OpenLineage provider on a file transport.

Checks what on-call and data scientists read from it: each task's START and COMPLETE events name
the datasets it read and wrote (the day's partition, the model's folder, tables, Redis keys), and
publishing the model queued the Asset-scheduled A/B DAG (an AssetEvent with the model id, an
AssetDagRunQueue row, and the scheduler's query of DAGs ready to run lists it).
Real PostgreSQL and Redis, a local artifact folder (the run is a separate process: moto's
in-process S3 would not reach it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from shop_dates import REDIS_URL, RUN_DATE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAY = (RUN_DATE - dt.timedelta(days=1)).isoformat()
AB = "recsys_ab_results"


def _airflow(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, (args, out.stdout[-3000:], out.stderr[-3000:])
    return out


@pytest.fixture
def lineage_run(airflow_db, shop_engine, redis_client, tmp_path):
    """Run the nightly DAG for RUN_DATE with lineage to a file; the A/B DAG is unpaused meanwhile."""
    events = tmp_path / "openlineage.jsonl"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
        RECSYS_DATABASE_URL=shop_engine.url.render_as_string(hide_password=False),
        RECSYS_REDIS_URL=REDIS_URL,
        RECSYS_ARTIFACT_URI=str(tmp_path / "artifacts"),
        RECSYS_NO_COMPONENTS="16",
        RECSYS_TRAINING_WINDOW_DAYS="30",
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        AIRFLOW__OPENLINEAGE__NAMESPACE="recsys-test",
        # each event is emitted by a forked process the task waits for, 10 s by default: room for a loaded machine
        AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT="120",
    )
    _airflow("dags", "reserialize", env=env)  # both DAGs and their Assets in the metadata DB
    _airflow("dags", "unpause", AB, env=env)
    try:
        _airflow("dags", "test", "recsys_nightly", f"{RUN_DATE.isoformat()}T01:00:00+00:00",
                 "--conf", json.dumps({"epochs": 5}), env=env)
    finally:
        _airflow("dags", "pause", AB, env=env)
    lines = events.read_text().splitlines() if events.exists() else []
    return [json.loads(line) for line in lines], tmp_path / "artifacts"


def _names(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def _trained_model(engine) -> str:
    with engine.connect() as conn:
        (model_id,) = conn.execute(text("SELECT model_id FROM recommendation_models WHERE train_date = :d "
                                        "AND model_type <> 'SEQUENTIAL'"),  # the main line's model, not the branch's
                                   {"d": dt.date.fromisoformat(DAY)}).scalars().all()
    return model_id


def test_lineage_events_and_the_published_model_queues_the_ab_dag(lineage_run, shop_engine):
    events, artifacts = lineage_run
    model_id = _trained_model(shop_engine)
    by_task: dict[str, dict[str, dict]] = {}
    for e in events:
        dag_id, _, task_id = e["job"]["name"].partition(".")
        if dag_id == "recsys_nightly" and task_id:
            by_task.setdefault(task_id, {})[e["eventType"]] = e
    main_line = ["extract", "validate", "data_drift", "train", "evaluate", "output_drift", "promote_or_archive",
                 "publish", "shards", "lists", "precompute", "train_sequential", "evaluate_sequential"]
    for task_id in main_line:
        assert {"START", "COMPLETE"} <= set(by_task.get(task_id, {})), (task_id, sorted(by_task))
        assert by_task[task_id]["START"]["run"]["runId"] == by_task[task_id]["COMPLETE"]["run"]["runId"]
    assert all(e["job"]["namespace"] == "recsys-test" for e in events)

    def io(task_id: str) -> tuple[set, set]:
        done = by_task[task_id]["COMPLETE"]
        return _names(done["inputs"]), _names(done["outputs"])

    db = shop_engine.url
    table = lambda name: (f"postgres://{db.host}:{db.port}", f"{db.database}.public.{name}")  # noqa: E731
    folder = lambda key: ("file", str(artifacts.resolve() / key))  # noqa: E731
    partition, model = folder(f"events/date={DAY}"), folder(f"models/{model_id}")
    redis_ns = "redis://127.0.0.1:6379"
    db_no = REDIS_URL.rsplit("/", 1)[-1]

    assert io("extract") == ({table("user_events")}, {partition, table("user_product_interactions")})
    inputs, outputs = io("validate")
    assert partition in inputs and outputs == {folder(f"validation/date={DAY}/report.json")}
    assert partition in io("data_drift")[0] and folder(f"drift/date={DAY}") in io("data_drift")[1]
    assert io("train")[1] == {model, table("recommendation_models")}
    assert model in io("evaluate")[0] and model in io("output_drift")[0]
    assert io("publish") == ({model, table("recommendation_models"), table("users"), table("products")},
                             {model, table("recommendation_models")})
    assert (redis_ns, f"{db_no}/trending:global") in io("lists")[1]
    precompute = [e for e in events if e["job"]["name"] == "recsys_nightly.precompute" and e["eventType"] == "COMPLETE"]
    assert precompute and all((redis_ns, f"{db_no}/recs:{{*}}") in _names(e["outputs"]) for e in precompute)
    # the files named are the files written
    assert (artifacts / f"events/date={DAY}/events.parquet").exists() and (artifacts / f"models/{model_id}").is_dir()

    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        def last_event(name: str) -> AssetEvent:
            return session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                   .where(AssetModel.name == name).order_by(AssetEvent.id.desc())).first()

        validated = last_event("recsys_validated_day")
        assert validated.extra["day"] == DAY and validated.extra["partition"] == f"file://{partition[1]}"
        assert (validated.source_dag_id, validated.source_task_id) == ("recsys_nightly", "validate")
        published = last_event("recsys_published_model")
        assert published.extra["model_id"] == model_id and published.extra["artifacts"] == f"file://{model[1]}"
        assert published.source_task_id == "publish"
        queued = session.scalars(select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == AB)).all()
        assert [q.asset_id for q in queued] == [published.asset_id]
        _, triggered = DagModel.dags_needing_dagruns(session)
        assert AB in triggered, "the scheduler would not create the A/B run for the published model"
        session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == AB).delete()
