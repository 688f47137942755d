# Cicatrix: the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
PIP_INSTALL := $(PIP) install -q
# Both cores: the suite runs in two workers (pytest-xdist).
PYTEST_ARGS ?= -n auto
HOST ?= 127.0.0.1
PORT ?= 8000

# `make test DATABASE_URL=postgres://...` runs the suite on PostgreSQL.
ifdef DATABASE_URL
export DATABASE_URL
endif

.PHONY: run test lint format install install-dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(PIP_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.dev-installed

## run: set up, migrate, load the demo clinic once and serve on http://127.0.0.1:8000
run: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: the whole suite (unit, view and browser tests)
test: $(VENV)/.dev-installed
	@bash .ci/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: seed PostgreSQL with BENCH_PATIENTS (20000) demo patients, print the key pages
##   timings and wrk throughput (README "Benchmark"); not part of `make test`
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -r clinic patients plans -ll -q

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
