"""Each pytest-xdist worker's own Redis database and port block (tests/worker_resources.py)."""

from __future__ import annotations

import os

import pytest

from worker_resources import isolate_this_worker, port_block, worker_index, worker_redis_url


@pytest.mark.parametrize(("worker", "index"), [("", 0), ("gw0", 0), ("gw1", 1), ("gw12", 12)])
def test_worker_index(worker, index):
    assert worker_index(worker) == index


def test_a_worker_name_that_is_not_gw_n_is_refused():
    with pytest.raises(RuntimeError, match="'master' is not gw<number>"):
        worker_index("master")


def test_each_worker_gets_the_database_below():
    assert worker_redis_url("redis://127.0.0.1:6379/15", 0) == "redis://127.0.0.1:6379/15"
    assert worker_redis_url("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/14"
    assert worker_redis_url("redis://:pw@cache:6380/3", 3) == "redis://:pw@cache:6380/0"


@pytest.mark.parametrize(("url", "message"), [
    ("redis://127.0.0.1:6379/1", "worker 2 would need Redis database -1"),
    ("redis://127.0.0.1:6379", "must end with a database number"),
    ("redis://127.0.0.1:6379/", "must end with a database number"),
])
def test_a_url_without_room_for_the_workers_is_a_readable_error(url, message):
    with pytest.raises(RuntimeError, match=message):
        worker_redis_url(url, 2)


def test_port_blocks_do_not_overlap():
    assert port_block(7101, 3, 0) == range(7101, 7104)
    assert port_block(7101, 3, 1) == range(7104, 7107)
    assert set(port_block(18300, 50, 0)).isdisjoint(port_block(18300, 50, 1))


def test_a_worker_isolates_its_redis_database_and_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    isolate_this_worker()
    assert os.environ["RECSYS_TEST_REDIS_URL"] == "redis://127.0.0.1:6379/14"
    assert os.environ["AIRFLOW_HOME"] == str(tmp_path / "gw1") and (tmp_path / "gw1").is_dir()


def test_outside_xdist_nothing_changes(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    isolate_this_worker()
    assert os.environ["RECSYS_TEST_REDIS_URL"] == "redis://127.0.0.1:6379/9"
    assert os.environ["AIRFLOW_HOME"] == str(tmp_path)

