"""Runs started while their workflow is being erased are refused (404) or erased with it, never kept.

Writers start runs in threads, each with a prompt found nowhere else, until their workflow is gone;
meanwhile another thread erases it. Afterwards no acknowledged run answers, and no prompt is left
in any table (the raw events included) nor, on SQLite, in the database files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from tests.support.data import STEPS
from tests.support.servers import start_server, stop_server
from tests.support.stores import all_table_bytes, sqlite_file_bytes

WRITERS = 8
STARTS_PER_WRITER = 40
ERASE_AFTER = 12
"""The erase is sent once this many runs were acknowledged, so many starts are in flight around it."""

Post = Callable[[str, dict[str, Any]], tuple[int, Any]]
Get = Callable[[str, dict[str, Any]], int]


@dataclass
class RaceOutcome:
    acknowledged: dict[str, str] = field(default_factory=dict)
    """run id → prompt, for every start answered 201."""
    prompts: list[str] = field(default_factory=list)
    """Every prompt sent, acknowledged or not."""
    statuses: list[int] = field(default_factory=list)
    erase_status: int | None = None


def race(post: Post) -> tuple[str, RaceOutcome]:
    status, created = post(
        "/api/v1/workflows/create", {"name": "erased while running", "pipelineSteps": STEPS}
    )
    assert status == 201
    workflow_id: str = created["id"]
    outcome = RaceOutcome()
    lock = threading.Lock()
    enough = threading.Event()

    def writer(_: int) -> None:
        for _ in range(STARTS_PER_WRITER):
            prompt = f"race-prompt-{uuid4().hex}"
            with lock:
                outcome.prompts.append(prompt)
            status, body = post("/api/v1/runs/start", {"workflowId": workflow_id, "prompt": prompt})
            with lock:
                outcome.statuses.append(status)
                if status == 201:
                    outcome.acknowledged[body["id"]] = prompt
                    if len(outcome.acknowledged) >= ERASE_AFTER:
                        enough.set()
            if status != 201:
                return

    def eraser(_: int) -> None:
        enough.wait(timeout=120)
        outcome.erase_status, _ = post("/api/v1/workflows/permanent-delete", {"workflowId": workflow_id})

    with ThreadPoolExecutor(max_workers=WRITERS + 1) as pool:
        list(pool.map(lambda job: job[0](job[1]), [(eraser, 0), *[(writer, i) for i in range(WRITERS)]]))
    return workflow_id, outcome


def check_nothing_readable(
    workflow_id: str, outcome: RaceOutcome, get: Get, services: Services, files: bytes = b""
) -> None:
    """No acknowledged run can be read anywhere and no prompt is stored; prints the figures."""
    assert outcome.erase_status == 200
    assert set(outcome.statuses) <= {201, 404}, sorted(set(outcome.statuses))
    readable = [run_id for run_id in outcome.acknowledged if get("/api/v1/runs/get", {"id": run_id}) != 404]
    assert get("/api/v1/workflows/runs", {"id": workflow_id}) == 404
    stored = all_table_bytes(services) + files
    left = [prompt for prompt in outcome.prompts if prompt.encode() in stored]
    print(
        f"erase race ({services.database.dialect}): {len(outcome.prompts)} starts,"
        f" {len(outcome.acknowledged)} acknowledged, {outcome.statuses.count(404)} refused,"
        f" {runs_stored_after_the_erase(services, workflow_id)} stored after the erase;"
        f" {len(readable)} readable afterwards, {len(left)} prompts left in the store"
    )
    assert readable == []
    assert left == []


def runs_stored_after_the_erase(services: Services, workflow_id: str) -> int:
    """Starts that read the key before it was destroyed but were stored after the erase."""
    notifications = services.workflows.recorder.select_notifications(start=1, limit=100_000)
    erased_at = next(
        n.id
        for n in notifications
        if n.topic.endswith("PermanentlyDeleted") and str(n.originator_id) == workflow_id
    )
    mapper: Any = services.workflows.mapper
    return sum(
        1
        for n in notifications
        if n.id > erased_at
        and n.topic.endswith("Run.Started")
        and mapper.clear_state(n)["workflow_id"] == workflow_id
    )


@pytest.mark.postgres
def test_erase_race_two_server_processes_on_postgresql(make_postgres_url: Any) -> None:
    url = make_postgres_url()
    server = start_server(url, workers=2)
    try:
        with server.client() as client:

            def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
                response = client.post(path, json=body)
                return response.status_code, response.json()

            def get(path: str, params: dict[str, Any]) -> int:
                return client.get(path, params=params).status_code

            workflow_id, outcome = race(post)
            services = Services(Settings(database_url=url), create_tables=False)
            try:
                check_nothing_readable(workflow_id, outcome, get, services)
            finally:
                services.close()
    finally:
        stop_server(server)


def test_erase_race_in_process_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    services = Services(Settings(database_url=url, files_dir=tmp_path / "files"))
    project = services.accounts.create_project("race")
    headers = {"Authorization": f"Bearer {project.secret}"}
    try:
        with TestClient(create_app(services=services)) as client:

            def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
                response = client.post(path, json=body, headers=headers)
                return response.status_code, response.json()

            def get(path: str, params: dict[str, Any]) -> int:
                return client.get(path, params=params, headers=headers).status_code

            workflow_id, outcome = race(post)
            check_nothing_readable(workflow_id, outcome, get, services, sqlite_file_bytes(url))
    finally:
        services.close()
