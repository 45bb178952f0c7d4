# One command to run, one to test. Only python3 (3.11+) and make are needed; everything else is
# installed into .venv from PyPI on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432
REDIS  ?= redis://127.0.0.1:6379/0
BASE_URL ?= http://127.0.0.1:8000

.PHONY: run test test-pg install lint format openapi contract bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start the whole platform (embedded profile): gateway on http://127.0.0.1:8000
run: install
	$(BIN)/dncity run

## The whole suite (embedded profile; set DNCITY_TEST_PG_URL and DNCITY_REDIS_URL for PostgreSQL + Redis)
test: install
	$(BIN)/python -m pytest

## The suite against the PostgreSQL and Redis servers on this machine
test-pg: install
	DNCITY_TEST_PG_URL=$(PG_URL) DNCITY_REDIS_URL=$(REDIS) $(MAKE) test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared gateway dncity services

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Rewrite the committed OpenAPI documents (openapi/<service>.json) from the code
openapi: install
	$(BIN)/python -m dncity.openapi_export

## The contract checks against a running deployment, as a QA team runs them
contract: install
	$(BIN)/python -m pytest tests/contract/test_live_deployment.py --base-url=$(BASE_URL) -p no:cacheprovider

bench: install
	@ls benchmarks/*.py | xargs -n1 $(BIN)/python

clean:
	rm -rf var .pytest_cache
