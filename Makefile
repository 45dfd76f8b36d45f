# authtrail — the two commands: `make run` and `make test`. Both do all set-up first
# (idempotent and cached): system prerequisites, .venv, the Kafka broker's jars.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# rustup's cargo, for the install's native build, whether or not the shell's PATH has it.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test test-shifted-clock faults setup system system-tests go promtool bench bench-ingest-up bench-ingest bench-http-ingest bench-query bench-stream bench-store lint typecheck unit integration schema clean help

help:
	@echo "make run    - the whole system on the embedded default, with demo traffic"
	@echo "make test   - set up, then ruff, mypy and the whole test suite (the unit tests again under a clock a year ahead and a year back)"
	@echo "make faults - the fault-injection suite at full size (100,000 events per fault; make test runs it reduced)"
	@echo "make bench  - ingest, query and stream against peers and limits: one table, chart, JSON (BENCH_SCALE=0.1 for a quick run)"
	@echo "make bench-ingest-up - ingest as a user meets it: authtrail up, 1M produced into it, memory, 5 min of latency (BENCH_SCALE=...)"
	@echo "make bench-ingest - ingest from a 1M backlog beside the validating materialized-view peer (BENCH_SCALE=...)"
	@echo "make bench-http-ingest - POST /api/v1/events of one API process beside authtrail produce (BENCH_SCALE=...)"
	@echo "make bench-query - Logs view query speed at 10M events (BENCH_EVENTS=...)"
	@echo "make bench-stream - connector speed and memory per platform, 1M-event backlog (BENCH_EVENTS=...)"
	@echo "make bench-store - disk per stored event, for sizing (BENCH_SCALE=...)"
	@echo "make schema - regenerate schemas/jsonschema/raw-event-v1.schema.json"
	@echo "make clean  - remove .venv and ./var (the embedded data)"

system:
	@bash deploy/ensure-system.sh

system-tests:
	@bash deploy/ensure-system.sh --browser --tests

go: $(STAMP)
	@bash deploy/ensure-go.sh $(BIN)

# promtool builds in the background from the start (while the virtual environment is
# installed, the linters and the tests run); the rule tests run last and wait for it
# (deploy/prometheus, tests/deploy/test_prometheus.py).
promtool:
	@bash deploy/ensure-promtool.sh $(BIN) --background

# The PII rules' native path (Rust) is built by the install: its sources count too.
NATIVE := connectors/pii_native
$(STAMP): pyproject.toml $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(wildcard $(NATIVE)/src/*.rs)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "authtrail needs Python 3.11+ (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

setup: system $(STAMP)
	@$(BIN)/authtrail kafka fetch >/dev/null

run: setup
	$(BIN)/authtrail up --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(NATIVE) && cargo fmt --check && cargo clippy --release --quiet -- -D warnings

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: setup
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test: promtool system-tests setup go lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-shifted-clock

# No test may depend on the day it runs: the unit tests once more with the wall clock of
# every process (children included) a year ahead, and a year back (libfaketime), the two
# side by side. Not beside the suite: the fault tests' processes need the machine.
test-shifted-clock: system-tests $(STAMP)
	@tests/clock/unit-shifted.sh start && tests/clock/unit-shifted.sh wait

faults: setup
	AUTHTRAIL_FAULTS_SIZE=full $(BIN)/pytest tests/faults -o timeout=1800 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

bench-ingest-up: setup
	$(BIN)/python -m bench.ingest_up

bench-ingest: setup
	$(BIN)/python -m bench.ingest_bench

bench-http-ingest: setup
	$(BIN)/python -m bench.http_ingest_bench

bench-query: $(STAMP)
	$(BIN)/python -m bench.query_bench --events $${BENCH_EVENTS:-10000000}

bench-stream: setup
	$(BIN)/python -m bench.stream_bench

bench-store: $(STAMP)
	$(BIN)/python -m bench.store_size

schema: $(STAMP)
	$(BIN)/python -m schemas.jsonschema_export

clean:
	rm -rf $(VENV) var
