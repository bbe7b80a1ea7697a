"""Fixtures of the DAG tests that run DAGs: the Airflow metadata database of the test session, and the nightly
DAG run with ``dag.test()`` on the synthetic shop (real PostgreSQL and Redis, S3 on moto)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from pg_helpers import clear_client_caches
from shop_dates import REDIS_URL


@pytest.fixture(scope="module")
def airflow_db():
    """``airflow db migrate`` of the session's throw-away AIRFLOW_HOME (tests/conftest.py)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture
def nightly(airflow_db, shop_engine, redis_client, s3_store, monkeypatch):
    monkeypatch.setenv("RECSYS_DATABASE_URL", shop_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RECSYS_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("RECSYS_ARTIFACT_URI", "s3://recsys-test/artifacts")
    monkeypatch.setenv("RECSYS_NO_COMPONENTS", "16")
    monkeypatch.setenv("RECSYS_TRAINING_WINDOW_DAYS", "30")
    monkeypatch.setenv("RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS", "3")  # the sequential branch runs too, time-boxed
    clear_client_caches()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["recsys_nightly"]
    assert dag.deadline, "dag.test() runs with the default deadline (plugins/recsys_nightly_config.py)"

    def run(logical_date: dt.date, **conf):
        when = dt.datetime(logical_date.year, logical_date.month, logical_date.day, 1, tzinfo=dt.timezone.utc)
        return dag.test(logical_date=when, run_conf={"epochs": 5, **conf})

    yield run
    clear_client_caches()
