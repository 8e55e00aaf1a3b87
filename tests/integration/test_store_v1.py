"""A store written by earlier code (tests/fixtures/store-v1.db) loads and answers as it did then."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.cli import main
from composition.services import Services
from composition.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED: dict[str, Any] = json.loads((FIXTURES / "store-v1.json").read_text())
TIME_DEPENDENT = ("from", "to", "successRateSeries", "runsOverTime")
"""Analytics fields that move with today's date: the rest must not change."""


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copy(FIXTURES / "store-v1.db", tmp_path / "store-v1.db")
    url = f"sqlite:///{tmp_path / 'store-v1.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WFS_FILES_DIR", str(tmp_path / "files"))
    return url


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    services = Services(Settings(database_url=store_url, files_dir=tmp_path / "files"))
    with TestClient(create_app(services=services)) as client:
        client.headers["Authorization"] = f"Bearer {RECORDED['key']}"
        yield client
    services.close()


def comparable(path: str, answer: Any) -> Any:
    if "/analytics" in path:
        return {name: value for name, value in answer.items() if name not in TIME_DEPENDENT}
    if "/versions" in path and "hasMore" in answer:
        # Paging came later (spec §5): a short history is one page, the rest as it was recorded.
        assert (answer.pop("nextCursor"), answer.pop("hasMore")) == (None, False), path
    return answer


def assert_same_answers(client: TestClient[Any]) -> None:
    for path, recorded in RECORDED["reads"].items():
        response = client.get(f"/api/v1{path}")
        assert response.status_code == 200, (path, response.text)
        assert comparable(path, response.json()) == comparable(path, recorded), path


def test_the_old_store_gives_the_same_answers(client: TestClient[Any]) -> None:
    assert_same_answers(client)
    erased = client.get("/api/v1/workflows/get", params={"id": RECORDED["erasedId"]})
    assert erased.status_code == 404


def test_views_rebuilt_from_the_old_events_give_the_same_answers(store_url: str, tmp_path: Path) -> None:
    assert main(["rebuild"]) == 0
    services = Services(Settings(database_url=store_url, files_dir=tmp_path / "files"))
    try:
        with TestClient(create_app(services=services)) as client:
            client.headers["Authorization"] = f"Bearer {RECORDED['key']}"
            assert_same_answers(client)
    finally:
        services.close()


def test_the_old_store_takes_new_writes(client: TestClient[Any]) -> None:
    workflow_id = RECORDED["workflowId"]
    renamed = client.post("/api/v1/workflows/rename", json={"workflowId": workflow_id, "name": "Renamed now"})
    assert renamed.status_code == 200, renamed.text
    run_id = RECORDED["runIds"][1]
    assert client.get("/api/v1/runs/get", params={"id": run_id}).json()["status"] == "failed"
    started = client.post("/api/v1/runs/start", json={"workflowId": workflow_id, "prompt": "again"})
    assert started.status_code == 201, started.text
    assert started.json()["runNumber"] == 5
