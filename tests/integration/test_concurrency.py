"""Concurrent writers against a real server: optimistic concurrency holds and nothing is lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.data import STEPS
from tests.support.servers import Server


def test_16_updates_with_the_same_expected_version_one_wins(server: Server) -> None:
    with server.client() as client:
        created = client.post(
            "/api/v1/workflows/create", json={"name": "race", "pipelineSteps": STEPS}
        ).json()

        def update(i: int) -> int:
            body = {"workflowId": created["id"], "description": f"writer {i}", "expectedVersion": 1}
            return client.post("/api/v1/workflows/update", json=body).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(update, range(16)))
        assert sorted(statuses) == [200] + [409] * 15
        versions = client.get("/api/v1/workflows/versions", params={"id": created["id"]}).json()
        assert versions["currentVersion"] == 2
        assert len(versions["versions"]) == 2


def test_concurrent_updates_without_expected_version_all_land(server: Server) -> None:
    with server.client() as client:
        created = client.post(
            "/api/v1/workflows/create", json={"name": "race", "pipelineSteps": STEPS}
        ).json()

        def update(i: int) -> int:
            body = {"workflowId": created["id"], "description": f"writer {i}"}
            return client.post("/api/v1/workflows/update", json=body).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(update, range(8)))
        assert statuses == [200] * 8
        versions = client.get("/api/v1/workflows/versions", params={"id": created["id"]}).json()
        assert versions["currentVersion"] == 9


def test_50_simultaneous_creates_all_appear_exactly_once(server: Server) -> None:
    with server.client() as client:

        def create(i: int) -> str:
            response = client.post(
                "/api/v1/workflows/create", json={"name": f"wf {i}", "pipelineSteps": STEPS}
            )
            assert response.status_code == 201, response.text
            workflow_id: str = response.json()["id"]
            return workflow_id

        with ThreadPoolExecutor(max_workers=50) as pool:
            created = list(pool.map(create, range(50)))
        listed = client.get("/api/v1/workflows/list", params={"limit": 100}).json()
        ids = [item["id"] for item in listed["items"]]
        assert len(ids) == 50
        assert sorted(ids) == sorted(created)


def test_reads_on_any_process_see_a_write_as_soon_as_it_answers(server: Server) -> None:
    with server.client() as client:
        for i in range(20):
            created = client.post(
                "/api/v1/workflows/create", json={"name": f"wf {i}", "pipelineSteps": STEPS}
            ).json()
            renamed = client.post(
                "/api/v1/workflows/rename", json={"workflowId": created["id"], "name": f"r{i}"}
            )
            assert renamed.status_code == 200
            assert client.get("/api/v1/workflows/get", params={"id": created["id"]}).json()["name"] == f"r{i}"
            top = client.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
            assert top["id"] == created["id"]
            assert top["version"] == 2
