# arche-predict: two commands on a fresh machine, `make demo` and `make test`.
# Every target creates .venv when it is missing and installs from the pinned locks; a second run
# only re-installs when a lock file or pyproject.toml changed (the stamp file records that).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CONFIG ?= instance/demo.toml
# torch==2.13.0 as a CPU build: taken from a local wheel directory when the machine has one
# (pip's find-links), else from the PyTorch CPU index. PyPI alone would pull a multi-GB CUDA build.
TORCH_INDEX ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu*),,--extra-index-url https://download.pytorch.org/whl/cpu)
PIP := $(BIN)/python -m pip
# -qq: errors only (a machine-wide pip config may add an index that warns on every package).
PIP_QUIET ?= -qq

.PHONY: help venv demo serve test lint typecheck imports pytest lock vendor clean bench

help:
	@echo "make demo   - install, simulate a Moodle, sync, train, predict and serve on 127.0.0.1"
	@echo "make test   - lint, type-check, import contracts and the test suite"
	@echo "make lint   - ruff (lint and format check)"
	@echo "make lock   - recompile requirements/*.txt from requirements/*.in"
	@echo "make bench  - benchmarks up to 1M events (BENCH_ARGS=--full adds 10M); one table"

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_QUIET) --upgrade "pip>=24.2"
	$(PIP) install $(PIP_QUIET) $(TORCH_INDEX) -r requirements/dev.txt
	$(PIP) install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	@touch $@

# The whole pipeline on this machine: a simulated Moodle synced over web services, models
# trained and predictions made, the tool and a development LTI platform served (see README).
demo: $(STAMP)
	@test -f $(DEMO_CONFIG) || $(BIN)/arche-predict config init --demo $(DEMO_CONFIG)
	$(BIN)/arche-predict --config $(DEMO_CONFIG) db upgrade
	$(BIN)/arche-predict --config $(DEMO_CONFIG) demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# pytest exits 5 when it collects no test; make treats any non-zero exit as a failure.
# The suite runs on every core (pytest-xdist; a test file stays on one worker, so its
# module-scoped fixtures are built once): 2 workers took the CI suite from 20 to about 9 minutes.
# PYTEST_ARGS="-n 0" runs it in one process.
PYTEST_ARGS ?=
pytest: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile $(PYTEST_ARGS)

test: lint typecheck imports pytest

# Benchmarks (bench/): prints one table, writes bench/results/latest.json. PostgreSQL is the
# throwaway cluster of .ci/postgres.sh unless ARCHE_PREDICT_TEST_POSTGRES_URL names one.
BENCH_ARGS ?=
# The dashboard load test drives wrk (Debian package `wrk`): installed here when missing and we
# are root, as .ci/run does for its packages; otherwise that section says how to get it.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; } || \
		echo "bench: wrk missing (apt-get install wrk): the dashboard load test is skipped" >&2
	@if [ -z "$$ARCHE_PREDICT_TEST_POSTGRES_URL" ]; then \
		eval "$$(.ci/postgres.sh start)" || echo "bench: no PostgreSQL, SQLite only" >&2; \
	fi; \
	$(BIN)/python -m bench $(BENCH_ARGS)

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements/base.txt requirements/base.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements/dev.txt requirements/dev.in

# Front-end libraries are vendored (committed) under lti_app/static/vendor; this refreshes them
# from the versions pinned in assets/package.json. Needs node and npm; the app never does.
vendor:
	assets/vendor.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
