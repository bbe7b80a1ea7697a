"""What each pytest-xdist worker owns, so that ``pytest -n 2`` runs tests side by side without sharing state.

``make test`` runs the suite in two phases: ``pytest -n 2 -m "not serial"`` (workers gw0, gw1 ...) and then
``pytest -m serial`` (tests/operator and the others that need fixed ports or the whole machine, one at a
time). Per worker (``PYTEST_XDIST_WORKER``; index 0 outside xdist, so a plain run is unchanged):

- Redis: the database ``RECSYS_TEST_REDIS_URL`` names (default 15) minus the worker index: gw0 on 15, gw1 on
  14, ... (the databases below stay free for people running tests by hand with their own number).
- AIRFLOW_HOME (Airflow's sqlite metadata database, its logs): a fresh temporary folder per process
  (tests/conftest.py); one set from outside gets a sub-folder per worker.
- PostgreSQL: nothing to do, tests/pg_helpers.py's ``fresh_database`` names each database after its process.
- Fixed ports: a block per worker (``port_block``); free ports (``asgi_client.free_port``) need nothing.
"""

from __future__ import annotations

import os
import re

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
REDIS_DATABASES = 16  # Redis' default `databases`


def worker_index(worker: str | None = None) -> int:
    """0 for ``gw0`` (and outside xdist), 1 for ``gw1``..."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if worker is None else worker
    if not worker:
        return 0
    match = re.fullmatch(r"gw(\d+)", worker)
    if match is None:
        raise RuntimeError(f"PYTEST_XDIST_WORKER={worker!r} is not gw<number>")
    return int(match.group(1))


def worker_redis_url(base_url: str, index: int) -> str:
    """``base_url`` with its database number lowered by ``index`` (redis://h:p/15 -> redis://h:p/14 for gw1)."""
    head, sep, db = base_url.rpartition("/")
    if not sep or not db.isdigit() or head.endswith("/"):
        raise RuntimeError(f"RECSYS_TEST_REDIS_URL={base_url!r} must end with a database number, e.g. /15")
    number = int(db) - index
    if not 0 <= number < REDIS_DATABASES:
        raise RuntimeError(f"RECSYS_TEST_REDIS_URL={base_url!r}: worker {index} would need Redis database "
                           f"{number}; start from a higher database or run fewer workers (-n)")
    return f"{head}/{number}"


def port_block(first: int, size: int, index: int | None = None) -> range:
    """The ports ``first .. first+size-1`` shifted by ``size`` per worker: gw0 gets the block itself."""
    index = worker_index() if index is None else index
    start = first + index * size
    return range(start, start + size)


def isolate_this_worker() -> None:
    """Point this process' test Redis database and AIRFLOW_HOME at its own; a no-op outside xdist."""
    index = worker_index()
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    base = os.environ.get("RECSYS_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["RECSYS_TEST_REDIS_URL"] = worker_redis_url(base, index)
    home = os.environ.get("AIRFLOW_HOME")
    if home:  # set from outside: shared by every worker unless split
        own = os.path.join(home, os.environ["PYTEST_XDIST_WORKER"])
        os.makedirs(own, exist_ok=True)
        os.environ["AIRFLOW_HOME"] = own
