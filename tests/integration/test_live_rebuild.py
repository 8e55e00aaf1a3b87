"""`workflow-service rebuild` beside a live server: clients keep reading and writing, nothing is lost."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from composition.services import Services
from projections import rebuild
from tests.support.client import Api
from tests.support.data import STEP
from tests.support.servers import Server, run_cli

SEED_WORKFLOWS = 60
READERS = 3


@dataclass
class Acknowledged:
    """What the server has answered a write for; a read that starts later must see at least this."""

    workflows: list[str] = field(default_factory=list)
    runs: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(self, workflow_id: str) -> None:
        with self.lock:
            self.workflows.append(workflow_id)
            self.runs[workflow_id] = []

    def add_run(self, workflow_id: str, run_id: str) -> None:
        with self.lock:
            self.runs[workflow_id].append(run_id)

    def snapshot(self) -> tuple[list[str], dict[str, list[str]]]:
        with self.lock:
            return list(self.workflows), {key: list(value) for key, value in self.runs.items()}


class Traffic:
    """Writers and readers calling the real server until stopped; every failure is kept."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.acknowledged = Acknowledged()
        self.failures: list[str] = []
        self.reads = 0
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def create(self, client: httpx.Client, name: str) -> str:
        response = client.post("/api/v1/workflows/create", json={"name": name, "pipelineSteps": [STEP]})
        if response.status_code != 201:
            raise AssertionError(f"create -> {response.status_code} {response.text}")
        workflow_id: str = response.json()["id"]
        self.acknowledged.add_workflow(workflow_id)
        return workflow_id

    def start_run(self, client: httpx.Client, workflow_id: str) -> None:
        response = client.post("/api/v1/runs/start", json={"workflowId": workflow_id, "prompt": "go"})
        if response.status_code != 201:
            raise AssertionError(f"runs/start -> {response.status_code} {response.text}")
        run_id = response.json()["id"]
        reported = client.post("/api/v1/runs/report", json={"runId": run_id, "status": "running"})
        if reported.status_code != 200:
            raise AssertionError(f"runs/report -> {reported.status_code} {reported.text}")
        self.acknowledged.add_run(workflow_id, run_id)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._loop, args=(self._write,), daemon=True)]
        self.threads += [
            threading.Thread(target=self._loop, args=(self._read,), daemon=True) for _ in range(READERS)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _loop(self, step: Callable[[httpx.Client, random.Random], None]) -> None:
        chance = random.Random()
        with self.server.client() as client:
            while not self.stopped.is_set():
                try:
                    step(client, chance)
                except Exception as error:
                    self.failures.append(f"{type(error).__name__}: {error}")

    def _write(self, client: httpx.Client, chance: random.Random) -> None:
        workflow_id = self.create(client, f"during the rebuild {chance.random()}")
        if chance.random() < 0.5:
            self.start_run(client, workflow_id)

    def _read(self, client: httpx.Client, chance: random.Random) -> None:
        workflows, runs = self.acknowledged.snapshot()
        self.reads += 1
        listed = self._all_pages(client, "/api/v1/workflows/list", {})
        if len(listed) < len(workflows):
            raise AssertionError(f"list: {len(listed)} items, {len(workflows)} acknowledged before the read")
        some = chance.choice(workflows)
        got = client.get("/api/v1/workflows/get", params={"id": some})
        if got.status_code != 200:
            raise AssertionError(f"get -> {got.status_code} {got.text}")
        with_runs = [workflow for workflow, ids in runs.items() if ids]
        if with_runs:
            workflow = chance.choice(with_runs)
            found = self._all_pages(client, "/api/v1/workflows/runs", {"id": workflow})
            if len(found) < len(runs[workflow]):
                raise AssertionError(f"runs: {len(found)} items, {len(runs[workflow])} acknowledged")
        created = self._all_pages(client, "/api/v1/events", {"type": "workflow.created"})
        if len(created) < len(workflows):
            raise AssertionError(f"events: {len(created)} created, {len(workflows)} acknowledged")

    @staticmethod
    def _all_pages(client: httpx.Client, path: str, params: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        cursor = None
        while True:
            page_params = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
            response = client.get(path, params=page_params)
            if response.status_code != 200:
                raise AssertionError(f"{path} -> {response.status_code} {response.text}")
            page = response.json()
            items += page["items"]
            cursor = page.get("nextCursor")
            if not cursor:
                return items


def test_a_rebuild_beside_live_traffic_fails_no_read_and_loses_no_write(
    server: Server, database_url: str
) -> None:
    traffic = Traffic(server)
    with server.client() as client:
        for number in range(SEED_WORKFLOWS):
            workflow_id = traffic.create(client, f"seeded {number}")
            if number % 2 == 0:
                traffic.start_run(client, workflow_id)
    traffic.start()
    try:
        everything = run_cli(database_url, "rebuild")
        one = run_cli(database_url, "rebuild", "--projection", "workflow_summary")
    finally:
        traffic.stop()

    assert everything.returncode == 0, everything.stderr
    assert one.returncode == 0, one.stderr
    assert "workflow_summary: rebuilt up to position" in everything.stdout
    assert "audit: rebuilt up to position" in everything.stdout
    assert one.stdout.splitlines() == [line for line in one.stdout.splitlines() if "workflow_summary" in line]
    assert "events/s" in everything.stderr.splitlines()[-1]
    assert traffic.failures == []
    assert traffic.reads > 0

    workflows, runs = traffic.acknowledged.snapshot()
    with server.client() as client:
        listed = {item["id"] for item in Traffic._all_pages(client, "/api/v1/workflows/list", {})}
        assert listed == set(workflows)
        for workflow_id, run_ids in runs.items():
            if run_ids:
                found = Traffic._all_pages(client, "/api/v1/workflows/runs", {"id": workflow_id})
                assert {run["id"] for run in found} == set(run_ids)
    verified = run_cli(database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the read models equal a fresh replay" in verified.stderr


def test_rebuild_of_an_unknown_read_model_names_the_known_ones(database_url: str) -> None:
    result = run_cli(database_url, "rebuild", "--projection", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr
    for name in ("workflow_summary", "workflow_version", "runs", "analytics", "related", "audit"):
        assert name in result.stderr


def test_writes_between_the_build_and_the_swap_are_in_the_swapped_view(
    api: Api, services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = api.create("before the rebuild")["id"]
    late: list[str] = []
    build = rebuild._build

    def build_then_write(*args: Any) -> int:
        built = build(*args)
        late.append(api.create("after the build, before the swap")["id"])  # the live views have it
        return built

    monkeypatch.setattr(rebuild, "_build", build_then_write)
    monkeypatch.setattr(rebuild, "_catch_up", lambda *_: None)  # the swap alone must do it

    report = rebuild.rebuild_live(
        services.workflows, rebuild.rebuildable(services.projector.runners), database_url
    )

    assert [view.error for view in report.views] == [None] * len(report.views)
    listed = [item["id"] for item in api.get("/workflows/list").json()["items"]]
    assert sorted(listed) == sorted([before, *late])
    created = [item["workflowId"] for item in api.get("/events", type="workflow.created").json()["items"]]
    assert sorted(created) == sorted([before, *late])
    positions = services.projector.positions()
    assert set(positions.values()) == {services.workflows.recorder.max_notification_id()}


def test_a_rebuild_repairs_rows_changed_removed_or_added_behind_its_back(
    api: Api, services: Services, database_url: str
) -> None:
    kept = api.create("Kept")["id"]
    other = api.create("Other")["id"]
    api.post("/workflows/rename", {"workflowId": kept, "name": "Kept, renamed"})
    with services.database.transaction() as tx:
        tx.execute("UPDATE workflow_summary SET item = '{}' WHERE workflow_id = ?", (kept,))
        tx.execute("DELETE FROM workflow_summary WHERE workflow_id = ?", (other,))
        tx.execute("DELETE FROM workflow_version WHERE workflow_id = ? AND version = 2", (kept,))
        tx.execute(
            "INSERT INTO audit_run (run_id, workflow_id, project_id) VALUES ('nowhere', ?, ?)",
            (kept, api.project_id),
        )
    assert run_cli(database_url, "verify").returncode == 1

    rebuilt = run_cli(database_url, "rebuild")

    assert rebuilt.returncode == 0, rebuilt.stderr
    verified = run_cli(database_url, "verify")
    assert verified.returncode == 0, verified.stdout
    names = {item["id"]: item["name"] for item in api.get("/workflows/list").json()["items"]}
    assert names == {kept: "Kept, renamed", other: "Other"}
    assert [v["version"] for v in api.get("/workflows/versions", id=kept).json()["versions"]] == [2, 1]
