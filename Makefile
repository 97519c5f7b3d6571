# Every habit has a name. The first two targets are the README's set-up commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := lambdas:.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
PORT ?= 8000
# mcp-proxy serves a published stdio MCP server over HTTP for the tests. It requires mcp<2 and the
# harness pins mcp 2, so it gets a venv of its own.
MCP_PROXY := .build/mcp-proxy/bin/mcp-proxy

.PHONY: local demo demo-session test lint unit integration infra e2e synth bench clean

## Start the harness on http://127.0.0.1:$(PORT) (installs what it needs first).
local: $(STAMP)
	$(BIN)/python -m local_runtime --port $(PORT) $(ARGS)

## The local harness with the demo's tool servers (README, "Demo"); then: make demo-session.
demo: $(STAMP)
	$(BIN)/python -m local_runtime --port $(PORT) --demo $(ARGS)

demo-session: $(STAMP)
	$(BIN)/python -m local_runtime.demo_session --url http://127.0.0.1:$(PORT)

## Lint, type-check and run every test suite (what CI runs).
test: $(STAMP) $(MCP_PROXY) lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) $(MCP_PROXY)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP) $(MCP_PROXY)
	$(BIN)/python -m pytest tests/integration

infra: $(STAMP)
	$(BIN)/python -m pytest tests/infrastructure

e2e: $(STAMP) $(MCP_PROXY)
	$(BIN)/python -m pytest tests/e2e

synth: $(STAMP)
	$(BIN)/python app.py

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(MCP_PROXY):
	$(PYTHON) -m venv .build/mcp-proxy && .build/mcp-proxy/bin/python -m pip install --quiet mcp-proxy==0.13.0

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
