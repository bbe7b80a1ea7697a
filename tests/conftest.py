"""Shared fixtures: a fresh PostgreSQL database per test session, the real Redis,
moto for S3, and a small synthetic shop.

Environment knobs (defaults fit this machine and CI):
- RECSYS_TEST_PG_ADMIN_URL  postgresql://postgres@127.0.0.1:5432/test
- RECSYS_TEST_REDIS_URL     redis://127.0.0.1:6379/15 (a pytest-xdist worker gwN uses database 15 - N)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from worker_resources import isolate_this_worker

# under pytest-xdist each worker gets its own Redis test database and AIRFLOW_HOME (tests/worker_resources.py),
# set before any module reads RECSYS_TEST_REDIS_URL
isolate_this_worker()

# Airflow reads its configuration when first imported: point it at a throw-away
# home with this repository's dags/ and plugins/ before any test imports it.
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="recsys-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(_REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("RECSYS_DAG_RETRIES", "0")  # a failed task fails the run at once in tests
# nightly runs in tests train the production default only (one candidate: no selection fits); the tests of
# model selection set their own candidates (tests/pipeline/test_model_choice.py, tests/dags/test_nightly_e2e.py)
os.environ.setdefault("RECSYS_SELECTION_CANDIDATES", "hybrid-default")
os.environ.setdefault("RECSYS_TUNING_INTERVAL_DAYS", "0")  # no weekly search unless a test asks for one
# the nightly sequential branch runs in every DAG test, time-boxed (tests/sequential and
# tests/api/test_api_sequential_realtime.py train it with their own configurations)
os.environ.setdefault("RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS", "10")
# every API of the suite knows the tests' key (tests/asgi_client.py sends it); the token bucket is
# checked on every request, but sized so that no functional test is throttled (test_api_security.py
# tests the limit with a small one)
from asgi_client import TEST_API_KEYS, TEST_REQUEST_ID_SECRET  # noqa: E402

# the suite runs as a deployment does: RECSYS_ENVIRONMENT unset (production), real secrets
os.environ.pop("RECSYS_ENVIRONMENT", None)
os.environ.setdefault("RECSYS_REQUEST_ID_SECRET", TEST_REQUEST_ID_SECRET)
os.environ.setdefault("RECSYS_API_KEYS", TEST_API_KEYS)
os.environ.setdefault("RECSYS_RATE_LIMIT_PER_SECOND", "100000")
os.environ.setdefault("RECSYS_RATE_LIMIT_BURST", "1000000")
os.environ.setdefault("RECSYS_ADMIN_ATTEMPTS_PER_MINUTE", "1000000")  # test_api_admin_throttle.py: a small one

import pytest
from sqlalchemy import text

from recsys.clients import make_engine
from recsys.db.migrate import upgrade
from recsys.db.models import Base
from pg_helpers import flushed_redis, fresh_database
from shop_dates import LAST_EVENT_DAY, REDIS_URL

def pytest_collection_modifyitems(config, items):
    """An operator test is a serial one: its Airflow stack wants the machine to itself (``make test`` runs
    ``-m "not serial"`` under pytest-xdist, then ``-m serial`` alone)."""
    for item in items:
        if item.get_closest_marker("operator") and not item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.serial)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = heaviest_files_first(items)


def heaviest_files_first(items):
    """Under pytest-xdist (--dist loadfile --no-loadscope-reorder hands out whole files in collection order)
    the files holding a ``slow`` test (whole DAG runs, minutes each), then those holding an ``integration``
    test, then the rest: a long file started last would run alone at the end while the other worker idles.
    Every worker computes the same order (xdist requires it); inside a file the order is unchanged."""
    def file_of(item):
        return item.nodeid.split("::")[0]

    weight: dict[str, int] = {}
    for item in items:
        w = 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("integration") else 2
        weight[file_of(item)] = min(w, weight.get(file_of(item), 2))
    return sorted(items, key=lambda item: weight[file_of(item)])  # a stable sort: the files' order is kept


@pytest.fixture(scope="session")
def pg_url():
    """A fresh database for this pytest session, migrated with Alembic, dropped at the end."""
    with fresh_database("recsys_test") as url:
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_url):
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def truncate_all(engine) -> None:
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for n in names:
                conn.execute(text(f'DELETE FROM "{n}"'))


@pytest.fixture
def engine(pg_engine):
    """The session's PostgreSQL database, emptied before each test."""
    truncate_all(pg_engine)
    return pg_engine


@pytest.fixture
def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_client():
    with flushed_redis(REDIS_URL) as client:
        yield client


@pytest.fixture
def s3_store():
    """An S3 artifact store on moto's in-memory S3."""
    from moto import mock_aws

    from recsys.artifacts import S3ArtifactStore

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="recsys-test")
        yield S3ArtifactStore("s3://recsys-test/artifacts", client=client)


@pytest.fixture
def local_store(tmp_path):
    from recsys.artifacts import LocalArtifactStore

    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture(scope="session")
def small_shop():
    """A small synthetic shop (hidden tastes; ~1.5K users, 300 products, 21 days)."""
    from recsys.data.synthetic import generate_shop

    return generate_shop(n_users=1500, n_products=300, days=21, seed=7, end_date=LAST_EVENT_DAY)


@pytest.fixture
def shop_engine(engine, small_shop):
    """PostgreSQL loaded with ``small_shop``."""
    from recsys.data.loading import load_shop

    load_shop(engine, small_shop)
    return engine
