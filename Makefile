# The two everyday commands work on a fresh machine: they make the virtualenv first.
VENV := .venv
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint bench

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

serve: $(INSTALLED)
	$(VENV)/bin/workflow-service serve --host $(HOST) --port $(PORT)

test: $(INSTALLED)
	$(VENV)/bin/pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy

bench: $(INSTALLED)
	$(VENV)/bin/python scripts/bench_latency.py
