# Outbound — every set-up step lives here, so a fresh clone needs only `make run` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
THREADS ?= 4
export DJANGO_SETTINGS_MODULE := outbound.settings

CHROMIUM ?= /usr/bin/chromium

.PHONY: run dev worker test lint schema schema-check bench install migrate clean screenshots

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser).
$(CHROMIUM):
	@echo "installing Debian's chromium for the console's browser tests"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -qq chromium >/dev/null \
		|| { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

migrate: $(STAMP)
	@mkdir -p var
	$(BIN)/outbound migrate --noinput
	$(BIN)/outbound bootstrap-admin

# The web server and, beside it, the mail workers under `outbound supervise` (OUTBOUND_WORKERS
# of them, 1 by default; one that exits is restarted with backoff). When the web server stops,
# the trap stops the supervisor, which stops its workers (`outbound worker` runs more, anywhere).
run: migrate
	@$(BIN)/outbound supervise & supervisor=$$!; \
	trap 'kill $$supervisor 2>/dev/null; wait $$supervisor 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn -c gunicorn.conf.py outbound.wsgi:application --bind $(HOST):$(PORT) \
		--workers $(WORKERS) --threads $(THREADS) --access-logfile - --timeout 60

dev: migrate
	@$(BIN)/outbound supervise & supervisor=$$!; \
	trap 'kill $$supervisor 2>/dev/null; wait $$supervisor 2>/dev/null' EXIT INT TERM; \
	DJANGO_DEBUG=1 $(BIN)/outbound runserver $(HOST):$(PORT)

# More mail workers on this machine, supervised like those of `make run` (OUTBOUND_WORKERS).
worker: migrate
	$(BIN)/outbound supervise

# The tests' metrics go to a directory of their own, not var/metrics (GET /metrics of a
# `make run` on this checkout would otherwise count them).
test: $(STAMP) $(CHROMIUM)
	@mkdir -p var
	@metrics=$$(mktemp -d); \
	PROMETHEUS_MULTIPROC_DIR=$$metrics $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; rm -rf "$$metrics"; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) --no-print-directory schema-check

schema: $(STAMP)
	$(BIN)/outbound spectacular --file docs/openapi.yaml --validate --fail-on-warn
	@echo "docs/openapi.yaml regenerated"

schema-check: $(STAMP)
	@$(BIN)/outbound spectacular --file var/openapi.check.yaml --validate --fail-on-warn
	@diff -u docs/openapi.yaml var/openapi.check.yaml >/dev/null \
		|| { echo "docs/openapi.yaml is out of date: run make schema"; diff -u docs/openapi.yaml var/openapi.check.yaml | head -40; exit 1; }
	@echo "OpenAPI schema: no drift"

# Re-take docs/screenshots/*.png from the browser tests (each calls console.shot(name)).
screenshots: $(STAMP) $(CHROMIUM)
	OUTBOUND_SCREENSHOTS=docs/screenshots $(BIN)/pytest -m browser -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
