# The two commands of the README: `make run` and `make test` (plus `make test-fast` and `make bench`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench venv clean services

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

# the extra benchmark dependencies (implicit ALS, matplotlib, ANN index) and the training-only ones of the
# sequential model (torch CPU, onnx: requirements-train.txt), so their tests and benchmarks run too
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) requirements-bench.txt requirements-train.txt
	$(PY) -m pip install -q -r requirements-bench.txt -r requirements-train.txt
	@touch $(BENCH_STAMP)

venv: $(STAMP)

services:
	@bash scripts/ensure_services.sh

# every test (CI runs this): the parallel phase on $(PYTEST_WORKERS) pytest-xdist workers, then the `serial` tests
# (tests/operator) alone; both always run, either failing fails the target (scripts/run_tests.sh)
PYTEST_WORKERS ?= 2
test: $(BENCH_STAMP) services
	@# the layering of docs/architecture.md (import-linter's contracts in pyproject.toml), before the tests
	$(VENV)/bin/lint-imports
	PY=$(PY) PYTEST_WORKERS=$(PYTEST_WORKERS) bash scripts/run_tests.sh $(PYTEST_ARGS)

# the unit tier for the edit-test loop: no integration, slow, operator or serial test, on the same workers
test-fast: $(BENCH_STAMP) services
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not integration and not slow and not operator and not serial" $(PYTEST_ARGS)

run: $(STAMP)
	bash scripts/run_demo.sh

bench: $(BENCH_STAMP) services
	bash scripts/bench.sh

clean:
	rm -rf var .pytest_cache
