"""Idempotency-Key across real server processes on PostgreSQL: one write per key, one answer for all."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.data import STEPS
from tests.support.servers import Server, start_server, stop_server

BODY = {"name": "Release hardening", "pipelineSteps": STEPS}
REPEATS = 40


@pytest.fixture
def postgres_servers(make_postgres_url: Callable[[], str]) -> Iterator[tuple[str, Server]]:
    url = make_postgres_url()
    running = start_server(url, workers=2)
    yield url, running
    stop_server(running)


def fresh_client(server: Server, key: str) -> httpx.Client:
    """A new connection per request, so that the repeats are spread over both worker processes."""
    headers = {"Authorization": f"Bearer {server.key}", "Idempotency-Key": key}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


def send_together(server: Server, keys: list[str]) -> list[httpx.Response]:
    """Send one create per key, all released at the same moment."""
    start = threading.Barrier(len(keys))

    def create(key: str) -> httpx.Response:
        with fresh_client(server, key) as client:
            start.wait()
            return client.post("/api/v1/workflows/create", json=BODY)

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        return list(pool.map(create, keys))


def workflow_ids(server: Server) -> list[str]:
    with server.client() as client:
        items: list[dict[str, Any]] = client.get("/api/v1/workflows/list", params={"limit": 100}).json()[
            "items"
        ]
    return [item["id"] for item in items]


def test_the_same_key_sent_concurrently_to_two_processes_creates_one_workflow(
    postgres_servers: tuple[str, Server],
) -> None:
    _, server = postgres_servers
    responses = send_together(server, ["burst"] * REPEATS)

    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    assert sum("idempotent-replayed" not in response.headers for response in responses) == 1
    assert workflow_ids(server) == [responses[0].json()["id"]]


def test_several_keys_at_once_each_create_exactly_one(postgres_servers: tuple[str, Server]) -> None:
    _, server = postgres_servers
    keys = [f"key-{i % 8}" for i in range(REPEATS)]
    responses = send_together(server, keys)

    answers: dict[str, set[bytes]] = {}
    for key, response in zip(keys, responses, strict=True):
        assert response.status_code == 201
        answers.setdefault(key, set()).add(response.content)
    assert all(len(bodies) == 1 for bodies in answers.values())
    created = {response.json()["id"] for response in responses}
    assert len(created) == 8
    assert sorted(workflow_ids(server)) == sorted(created)


def test_a_restarted_deployment_still_replays(postgres_servers: tuple[str, Server]) -> None:
    url, server = postgres_servers
    with fresh_client(server, "before-restart") as client:
        first = client.post("/api/v1/workflows/create", json=BODY)
    stop_server(server)

    restarted = start_server(url, workers=2)
    restarted.key = server.key
    try:
        with fresh_client(restarted, "before-restart") as client:
            again = client.post("/api/v1/workflows/create", json=BODY)
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert workflow_ids(restarted) == [first.json()["id"]]
    finally:
        stop_server(restarted)
