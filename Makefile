# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test bench demo docs docs-check clean peers

# Jaeger v2, the OpenTelemetry Collector and the Go test service, built from pinned Go modules into
# .peers/bin (cached: rebuilt only when a pin changes). `make test` builds them first when Go is on
# PATH; without Go the tests that need them are skipped and say why.
GO_FOUND := $(shell command -v go 2>/dev/null)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

peers:
	bash tools/peers/build.sh

test: $(STAMP) $(if $(GO_FOUND),peers)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/chainotel demo $(DEMO_ARGS)

# docs/configuration.md is generated from the settings classes; docs-check fails when it is stale
docs: $(STAMP)
	$(BIN)/python docs/generate.py

docs-check: $(STAMP)
	$(BIN)/python docs/generate.py --check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .peers
