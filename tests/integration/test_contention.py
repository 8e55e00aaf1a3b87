"""Writes that name no version never fail because others write the same aggregate at the same time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from domain import service as service_module
from domain.service import WRITERS
from tests.support.data import STEPS
from tests.support.servers import Server, start_server, stop_server

BURST = 60


class Service:
    """Somewhere to send requests: request i of a burst may go to a different server process."""

    def __init__(self, senders: list[Any]) -> None:
        self.senders = senders

    def post(self, path: str, body: dict[str, Any], i: int = 0) -> httpx.Response:
        response: httpx.Response = self.senders[i % len(self.senders)].post(f"/api/v1{path}", json=body)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.senders[0].get(f"/api/v1{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def burst(self, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
        """Send every request at once (one thread each) and return the answers in order."""
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(lambda item: self.post(*item[1], i=item[0]), enumerate(requests)))

    def create_workflow(self) -> str:
        response = self.post("/workflows/create", {"name": "contended", "pipelineSteps": STEPS})
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        return workflow_id


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[Service]:
    """The real app in this process on SQLite, many requests in flight at once."""
    services = Services(
        Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", files_dir=tmp_path / "files")
    )
    try:
        with TestClient(create_app(services=services), timeout=60) as client:
            client.headers["Authorization"] = f"Bearer {services.accounts.create_project('c').secret}"
            yield Service([client])
    finally:
        services.close()


@pytest.fixture
def two_processes(make_postgres_url: Callable[[], str]) -> Iterator[Service]:
    """Two `serve` processes on one PostgreSQL database; request i goes to process i % 2."""
    url = make_postgres_url()
    servers: list[Server] = []
    try:
        servers.append(start_server(url))
        servers.append(start_server(url))
        headers = {"Authorization": f"Bearer {servers[0].key}"}
        with (
            httpx.Client(base_url=servers[0].base_url, headers=headers, timeout=60) as first,
            httpx.Client(base_url=servers[1].base_url, headers=headers, timeout=60) as second,
        ):
            yield Service([first, second])
    finally:
        for server in servers:
            stop_server(server)


@pytest.fixture(
    params=["sqlite-in-process", pytest.param("postgres-2-processes", marks=pytest.mark.postgres)]
)
def service(request: pytest.FixtureRequest) -> Service:
    name = "in_process" if request.param == "sqlite-in-process" else "two_processes"
    chosen: Service = request.getfixturevalue(name)
    return chosen


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def refused(responses: list[httpx.Response]) -> list[str]:
    return [f"{r.status_code} {r.text}" for r in responses if r.status_code != 200]


def test_60_unconditional_updates_of_one_workflow_all_land(service: Service) -> None:
    workflow_id = service.create_workflow()
    updates = [
        ("/workflows/update", {"workflowId": workflow_id, "description": f"writer {i}"}) for i in range(BURST)
    ]

    answers = service.burst(updates)

    assert statuses(answers) == Counter({200: BURST}), refused(answers)
    assert sorted(a.json()["version"] for a in answers) == list(range(2, BURST + 2))
    history = service.get("/workflows/versions", id=workflow_id)
    assert history["currentVersion"] == BURST + 1
    assert sorted(entry["version"] for entry in history["versions"]) == list(range(1, BURST + 2))
    assert Counter(entry["source"] for entry in history["versions"]) == Counter(create=1, update=BURST)
    final = service.get("/workflows/get", id=workflow_id)
    assert final["version"] == BURST + 1
    assert final["description"] == next(
        a.json()["description"] for a in answers if a.json()["version"] == BURST + 1
    )


def test_a_version_mismatch_is_still_409_under_contention(service: Service) -> None:
    workflow_id = service.create_workflow()
    updates = [
        ("/workflows/update", {"workflowId": workflow_id, "description": f"writer {i}", "expectedVersion": 1})
        for i in range(20)
    ]

    answers = service.burst(updates)

    assert statuses(answers) == Counter({200: 1, 409: 19})
    assert all("expected version 1" in a.json()["detail"] for a in answers if a.status_code == 409)
    assert service.get("/workflows/get", id=workflow_id)["version"] == 2


def test_concurrent_run_reports_all_land_and_only_state_refuses_a_cancel(service: Service) -> None:
    workflow_id = service.create_workflow()
    started = service.post("/runs/start", {"workflowId": workflow_id, "prompt": "go"})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    line = {"cliId": "claude", "costUsd": 1}
    reports = [
        (
            "/runs/report",
            {"runId": run_id, "status": "running", "costBreakdown": [{"model": f"m{i}", **line}]},
        )
        for i in range(40)
    ]

    answers = service.burst(reports)

    assert statuses(answers) == Counter({200: 40}), refused(answers)
    cancels = service.burst([("/runs/cancel", {"runId": run_id})] * 10)
    assert statuses(cancels) == Counter({200: 1, 409: 9})
    assert all("already cancelled" in a.json()["detail"] for a in cancels if a.status_code == 409)
    run = service.get("/runs/get", id=run_id)
    assert run["status"] == "cancelled"
    assert sorted(line["model"] for line in run["costBreakdown"]) == sorted(f"m{i}" for i in range(40))
    assert run["costUsd"] == 40


def test_unconditional_writes_spread_over_several_workflows_all_land(service: Service) -> None:
    workflow_ids = [service.create_workflow() for _ in range(3)]
    targets = cycle(workflow_ids)
    renames = [("/workflows/rename", {"workflowId": next(targets), "name": f"name {i}"}) for i in range(30)]

    answers = service.burst(renames)

    assert statuses(answers) == Counter({200: 30}), refused(answers)
    for workflow_id in workflow_ids:
        mine = [a.json()["version"] for a in answers if a.json()["id"] == workflow_id]
        assert sorted(mine) == list(range(2, 12))


def test_a_write_that_cannot_get_its_turn_in_time_is_503_not_409(
    in_process: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = in_process.create_workflow()
    monkeypatch.setattr(service_module, "SAVE_DEADLINE_SECONDS", 0.2)
    update = {"workflowId": workflow_id, "description": "late"}

    with WRITERS.turn(UUID(workflow_id), deadline=float("inf"), busy="held by the test"):
        answer = in_process.post("/workflows/update", update)

    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert "being changed by others" in answer.json()["detail"]
    assert in_process.get("/workflows/get", id=workflow_id)["version"] == 1
    assert in_process.post("/workflows/update", update).status_code == 200
    assert len(WRITERS) == 0
