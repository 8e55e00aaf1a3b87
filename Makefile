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

# Bytecode is cached (and compiled before the workers start) even where the environment turns that off:
# each pytest worker and each server a test starts would otherwise compile every module again.
# The PostgreSQL cases run when WFS_TEST_POSTGRES_URL is set or PostgreSQL answers at 127.0.0.1:5432.
LOCAL_POSTGRES_URL := postgresql://$(shell id -un)@127.0.0.1:5432/postgres

test: $(INSTALLED)
	@if [ -z "$$WFS_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null \
	    && pg_isready --quiet --host 127.0.0.1 --port 5432; then \
	    export WFS_TEST_POSTGRES_URL="$(LOCAL_POSTGRES_URL)"; \
	fi; \
	export PYTHONDONTWRITEBYTECODE=; $(VENV)/bin/python -m compileall -q src scripts tests; \
	$(VENV)/bin/pytest -n auto --dist worksteal $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy

# The benchmark suite (BENCHMARKS.md) on both stores: BENCH_SIZE=smoke|medium|full, BENCH_ARGS for more
# (e.g. --write BENCHMARKS.md). SQLite alone when no PostgreSQL answers, as for `make test`.
BENCH_SIZE ?= smoke
bench: $(INSTALLED)
	@stores=sqlite; postgres="$$WFS_TEST_POSTGRES_URL"; \
	if [ -z "$$postgres" ] && command -v pg_isready >/dev/null \
	    && pg_isready --quiet --host 127.0.0.1 --port 5432; then postgres="$(LOCAL_POSTGRES_URL)"; fi; \
	if [ -n "$$postgres" ]; then stores=sqlite,postgres; fi; \
	$(VENV)/bin/python -m scripts.bench --size $(BENCH_SIZE) --stores $$stores \
	    $${postgres:+--postgres "$$postgres"} $(BENCH_ARGS)
