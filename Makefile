# Kanban Orchestrator: `make run` serves the board, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FRONTEND := frontend
PYTHON_SOURCES := backend mcp_client mcp_servers tests bench
FRONTEND_SOURCES := $(shell find $(FRONTEND)/src $(FRONTEND)/static -type f 2>/dev/null) \
	$(wildcard $(FRONTEND)/*.json $(FRONTEND)/*.js $(FRONTEND)/*.ts)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run dev test test-python test-frontend lint bench frontend chromium clean help

help:
	@echo "make run    install what is missing, migrate, serve on http://127.0.0.1:8000"
	@echo "make test   install test tools, lint, run the whole suite (Python, frontend, browser)"
	@echo "make lint   ruff check, ruff format --check and mypy on the Python code"
	@echo "make bench  run the benchmarks and print a table"
	@echo "make dev    backend with reload + Vite dev server with /api proxy"

# --- Python -----------------------------------------------------------------------
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# --- Frontend ---------------------------------------------------------------------
$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(FRONTEND)/build/index.html: $(FRONTEND)/node_modules/.installed $(FRONTEND_SOURCES)
	cd $(FRONTEND) && npm run build
	touch $@

frontend: $(FRONTEND)/build/index.html

# Browser tests use the system's Chromium (test tools cannot download browsers here).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium not found at $(CHROMIUM): browser tests will be skipped (install it, or set CHROMIUM=...)"; \
		fi; \
	fi

# --- Commands ---------------------------------------------------------------------
run: $(VENV)/.installed frontend
	$(BIN)/kanban serve

dev: $(VENV)/.installed $(FRONTEND)/node_modules/.installed
	$(BIN)/kanban db upgrade
	trap 'kill 0' EXIT; \
	$(BIN)/uvicorn --factory backend.main:create_app --reload --reload-dir backend --host 127.0.0.1 --port 8000 & \
	(cd $(FRONTEND) && KANBAN_API_URL=http://127.0.0.1:8000 npm run dev) ; wait

test: test-frontend test-python

# Any finding fails the build: lint errors, unformatted files, type errors (packages in pyproject's [tool.mypy]).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(PYTHON_SOURCES)
	$(BIN)/ruff format --check $(PYTHON_SOURCES)
	$(BIN)/mypy

test-python: lint $(VENV)/.installed-test frontend chromium
	KANBAN_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-frontend: $(FRONTEND)/node_modules/.installed $(VENV)/.installed
	cd $(FRONTEND) && npm run check:api && npm run check && npm test

bench: $(VENV)/.installed-test frontend chromium
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FRONTEND)/node_modules $(FRONTEND)/build $(FRONTEND)/.svelte-kit
