# Centricity developer commands. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := -e ./contracts -e './plumbing[local]' -e ./services/ideas -e ./services/votes -e ./services/insights -e ./services/notifications -e ./services/portal -e .
STAMP := $(VENV)/.installed
SOURCES := contracts/src plumbing/src services/ideas/src services/votes/src services/insights/src services/notifications/src services/portal/src tests bench demo

.PHONY: help install run demo screenshot test test-unit test-integration test-e2e lint format schemas bench constraints clean

help:
	@echo "make run     start Kafka, MongoDB and every service locally (Ctrl-C stops all);"
	@echo "             make run REPLICAS=2 starts two of each"
	@echo "make demo    post a day of four business units' activity to the system 'make run' started"
	@echo "make screenshot  the dashboard of 'make run', signed in as the analyst, as PNGs"
	@echo "make test    run unit, integration and end-to-end tests"
	@echo "make lint    ruff and mypy"
	@echo "make bench   benchmarks, written to bench-results.json"
	@echo "make schemas regenerate contracts/schemas after changing an event model"

$(STAMP): constraints.txt pyproject.toml contracts/pyproject.toml plumbing/pyproject.toml services/*/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install --quiet pip setuptools
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install --quiet $(PACKAGES)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m centricity_plumbing.localrun --replicas $(or $(REPLICAS),1)

# Needs `make run` in another terminal; then open the dashboard it prints.
demo: $(STAMP)
	$(PY) -m demo.day

# Needs `make run`; signs in as the analyst and saves the dashboard as PNGs in .local/shots.
screenshot: $(STAMP)
	$(PY) -m demo.screenshot

test: $(STAMP)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

lint: $(STAMP)
	$(PY) -m ruff check $(SOURCES)
	$(PY) -m ruff format --check $(SOURCES)
	$(PY) -m mypy $(SOURCES)

format: $(STAMP)
	$(PY) -m ruff check --fix $(SOURCES)
	$(PY) -m ruff format $(SOURCES)

# Throughput and quality figures, as ratios to baselines measured in the same run; see bench/.
bench: $(STAMP)
	$(PY) -m bench.run
	@echo "Figures written to bench-results.json"

schemas: $(STAMP)
	$(PY) -m centricity_contracts.registry

# Re-pin every third-party dependency to what is installed now. A local version label
# (torch's "+cpu") is dropped: torch==2.13.0 matches the CPU wheel pip's find-links offers.
constraints: $(STAMP)
	{ echo "# Every third-party version, pinned. Regenerate with 'make constraints'."; \
	  $(PY) -m pip freeze --all --exclude-editable | grep -v '^centricity' | sed -E 's/\+[A-Za-z0-9.]+$$//'; } > constraints.txt

include deploy/deploy.mk

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
