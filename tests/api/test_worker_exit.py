"""A `serve` worker ends by `os._exit` once its lifespan has shut down, never by finalizing.

granian's stop thread races CPython's finalization of a spawned worker and can abort it with a Rust
panic (api/cli/worker.py). The real stop is exercised by every test that stops a server
(tests/integration/test_logs.py checks that its output stays JSON); this checks the hook is armed.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.cli import worker


@pytest.mark.sqlite_only
def test_a_clean_shutdown_arms_the_exit_that_skips_finalization(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed: list[Callable[..., Any]] = []
    monkeypatch.setattr(atexit, "register", armed.append)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WFS_FILES_DIR", str(tmp_path / "files"))
    with TestClient(worker.worker_app()) as client:
        assert client.get("/health").status_code == 200
        assert armed == []  # not while serving
    assert armed == [worker._exit_now]
