"""Run numbers against a real server: concurrent starts, several server processes on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.data import STEPS
from tests.support.servers import start_server, stop_server


def test_concurrent_starts_across_processes_get_consecutive_numbers(database_url: str) -> None:
    workers = 3 if database_url.startswith("postgresql") else 1
    server = start_server(database_url, workers=workers)
    try:
        with server.client() as client:
            workflows = [
                client.post(
                    "/api/v1/workflows/create", json={"name": f"w{i}", "pipelineSteps": STEPS}
                ).json()["id"]
                for i in range(2)
            ]

        def start(i: int) -> int:
            with server.client() as own:
                body = {"workflowId": workflows[i % 2], "prompt": f"run {i}"}
                response = own.post("/api/v1/runs/start", json=body)
                assert response.status_code == 201, response.text
                number: int = response.json()["runNumber"]
                return number

        for batch in range(2):
            with ThreadPoolExecutor(max_workers=20) as pool:
                numbers = sorted(pool.map(start, range(20)))
            assert numbers == list(range(1 + 20 * batch, 21 + 20 * batch))
        with server.client() as client:
            listed = [
                item["runNumber"]
                for workflow_id in workflows
                for item in client.get(
                    "/api/v1/workflows/runs", params={"id": workflow_id, "limit": 100}
                ).json()["items"]
            ]
        assert sorted(listed) == list(range(1, 41))
    finally:
        stop_server(server)
