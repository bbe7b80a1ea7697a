"""Fixtures of the DAG tests that run DAGs: the Airflow metadata database of the test session."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def airflow_db():
    """``airflow db migrate`` of the session's throw-away AIRFLOW_HOME (tests/conftest.py)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
