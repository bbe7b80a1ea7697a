#!/usr/bin/env bash
# The suite in two phases (`make test`, CI):
#   1. every test not marked `serial`, on PYTEST_WORKERS pytest-xdist workers (default 2), one test file per
#      worker at a time (--dist loadfile: a module's fixtures are built once), in the order tests/conftest.py
#      gives (the files of slow tests first; --no-loadscope-reorder: xdist would otherwise hand out the files
#      with the most tests first and leave the few-test, minutes-long DAG files to the end); each worker has its own Redis
#      database and AIRFLOW_HOME (tests/worker_resources.py), PostgreSQL databases are per process already;
#   2. the `serial` tests (tests/operator: a real Airflow stack; see pyproject.toml), alone.
# Both phases always run; the exit status is non-zero when either failed. Extra arguments go to both pytest runs.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORKERS=${PYTEST_WORKERS:-2}

start=$(date +%s)
"$PY" -m pytest -n "$WORKERS" --dist loadfile --no-loadscope-reorder -m "not serial" "$@"
parallel=$?
middle=$(date +%s)
"$PY" -m pytest -m serial "$@"
serial=$?
end=$(date +%s)
echo "make test: parallel phase exit $parallel in $((middle - start)) s ($WORKERS workers), serial phase exit $serial in $((end - middle)) s"
# pytest's exit 5 is "no tests collected": a phase emptied by the caller's own -k/-m/paths is not a failure
for status in $parallel $serial; do
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
done
if [ "$parallel" -eq 5 ] && [ "$serial" -eq 5 ]; then exit 5; fi
exit 0
