"""A real `workflow-service serve` process per test, on the store under test, and the CLI in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import cli_in_process
from tests.support.servers import Server, start_server, stop_server


@pytest.fixture
def tables_from_template() -> bool:
    """A server process starts from what a deployment starts from: an empty store."""
    return False


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A server as deployed: two worker processes on PostgreSQL, one on SQLite."""
    workers = 2 if database_url.startswith("postgresql") else 1
    running = start_server(database_url, workers=workers)
    yield running
    stop_server(running)


@pytest.fixture
def one_process_server(database_url: str) -> Iterator[Server]:
    """A server of one process, for tests of what a client sees rather than of several processes."""
    running = start_server(database_url)
    yield running
    stop_server(running)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `workflow-service ARGS` in this process against the store under test; answers (code, stdout)."""
    monkeypatch.setenv("WFS_FILES_DIR", str(tmp_path / "files"))

    def run(*args: str) -> tuple[int, str]:
        done = cli_in_process(database_url, *args)
        return done.returncode, done.stdout

    return run
