# Every habit has a name. The first two targets are the README's set-up commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := lambdas:.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
PORT ?= 8000

.PHONY: local test lint unit integration infra e2e synth bench clean

## Start the harness on http://127.0.0.1:$(PORT) (installs what it needs first).
local: $(STAMP)
	$(BIN)/python -m local_runtime --port $(PORT) $(ARGS)

## Lint, type-check and run every test suite (what CI runs).
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

infra: $(STAMP)
	$(BIN)/python -m pytest tests/infrastructure

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

synth: $(STAMP)
	$(BIN)/python app.py

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
