# Two commands (see README):  `make demo` runs the product, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint typecheck pytest install system-deps services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch must come first: a bare `torch` requirement pulls CUDA (GBs).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the product on the embedded default (nothing to configure): API on 127.0.0.1:8000.
demo: install
	$(BIN)/helpdesk demo

serve: install
	$(BIN)/helpdesk serve

system-deps:
	bash scripts/install-system-deps.sh

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check backend tests bench scripts
	$(BIN)/ruff format --check backend tests bench scripts

typecheck: install
	$(BIN)/mypy

pytest: install system-deps services
	$(BIN)/pytest

## Everything CI runs: install, lint, type check, the whole test suite on real services.
test: install system-deps services lint typecheck pytest

clean:
	rm -rf $(VENV) .helpdesk-data .mypy_cache .ruff_cache .pytest_cache
