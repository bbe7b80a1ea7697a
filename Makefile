# The two commands of the README: `make run` and `make test` (plus `make bench`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench venv clean services

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

test: $(BENCH_STAMP) services
	$(PY) -m pytest $(PYTEST_ARGS)

run: $(STAMP)
	bash scripts/run_demo.sh

bench: $(BENCH_STAMP) services
	bash scripts/bench.sh

clean:
	rm -rf var .pytest_cache
