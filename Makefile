# One command runs tickguard, one command tests it. Both bootstrap uv from pip when it is
# missing, and install everything from pyproject.toml / uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_EXTRA_LOGGERS := tickguard

.PHONY: sync run test check lint typecheck fmt

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install --quiet uv

sync: $(UV)
	$(UV) sync --frozen

run: sync
	$(UV) run tickguard up $(UP_ARGS)

check: sync
	$(UV) run ruff check src tests collectors flows
	$(UV) run ruff format --check src tests collectors flows
	$(UV) run mypy

fmt: sync
	$(UV) run ruff check --fix src tests collectors flows
	$(UV) run ruff format src tests collectors flows

test: check
	$(UV) run pytest $(PYTEST_ARGS)
