"""Several server processes over one PostgreSQL store: one projection leader, fail-over, read-your-writes.

Each `serve` here is a real process tree (granian and its workers). Which process leads is read from
PostgreSQL (the advisory lock's holder names its pid in `application_name`) and from each server's
`/metrics` (`wfs_projection_leader`).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings
from store.notifications import APPLIED_CHANNEL, PROJECTION_LEADER_LOCK, ListeningSession
from tests.support.data import STEPS
from tests.support.servers import Server, run_cli, start_server, stop_server

FAIL_OVER_BOUND = 30.0
"""Generous: a new leader takes the lock about a second after the old one's session ends."""

LEADER_QUERY = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def leader_pids(database_url: str) -> list[int]:
    """The operating-system pids of the processes holding the projection leader's lock."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        names = [row[0] for row in connection.execute(LEADER_QUERY, (PROJECTION_LEADER_LOCK,))]
    return [int(match.group(1)) for name in names if (match := re.search(r"pid (\d+)", name))]


def leads(server: Server) -> bool:
    body = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    match = re.search(r"^wfs_projection_leader (\S+)$", body, re.MULTILINE)
    assert match is not None, "no wfs_projection_leader gauge"
    return float(match.group(1)) == 1


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^PPid:\s+(\d+)$", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def eventually(condition: Callable[[], bool], bound: float = FAIL_OVER_BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.2)


def answers_ready(client: httpx.Client) -> bool:
    try:
        return client.get("/ready").status_code == 200
    except httpx.TransportError:
        return False


def assert_current(client: httpx.Client) -> None:
    """Every read model has applied every stored event (nothing else writes meanwhile)."""
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    lagging = {name: view for name, view in ready.json()["projections"].items() if view["lagEvents"]}
    assert not lagging, lagging


@pytest.fixture
def two_servers(make_postgres_url: Callable[[], str]) -> Iterator[tuple[str, Server, Server]]:
    """`serve --workers 2` and `serve` over one store: three API processes."""
    database_url = make_postgres_url()
    first = start_server(database_url, workers=2)
    second = start_server(database_url)
    second.key = first.key  # the first start made the default project; the second found it
    try:
        yield database_url, first, second
    finally:
        stop_server(second)
        stop_server(first)


@pytest.mark.postgres
def test_a_write_through_one_process_is_read_at_once_through_another(
    two_servers: tuple[str, Server, Server],
) -> None:
    database_url, first, second = two_servers
    assert len(leader_pids(database_url)) == 1
    with first.client() as one, second.client() as other:
        for i in range(15):
            writer, reader = (one, other) if i % 2 else (other, one)
            created = writer.post(
                "/api/v1/workflows/create", json={"name": f"wf {i}", "pipelineSteps": STEPS}
            )
            assert created.status_code == 201, created.text
            workflow_id = created.json()["id"]
            assert_current(reader)
            top = reader.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
            assert (top["id"], top["version"]) == (workflow_id, 1)

            renamed = reader.post(
                "/api/v1/workflows/rename", json={"workflowId": workflow_id, "name": f"r{i}"}
            )
            assert renamed.status_code == 200, renamed.text
            assert_current(writer)
            versions = writer.get("/api/v1/workflows/versions", params={"id": workflow_id}).json()
            assert versions["currentVersion"] == 2
            top = writer.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
            assert (top["name"], top["version"]) == (f"r{i}", 2)


@pytest.mark.postgres
def test_killing_the_leader_hands_the_projections_to_another_process(
    two_servers: tuple[str, Server, Server],
) -> None:
    database_url, first, second = two_servers
    [leader] = leader_pids(database_url)
    leading_server, survivor = (first, second) if parent_of(leader) == first.process.pid else (second, first)
    assert parent_of(leader) == leading_server.process.pid
    assert leads(second) == (leading_server is second)  # `second` has one worker: it answers every scrape

    os.kill(leader, signal.SIGKILL)
    created_ids: list[str] = []
    with survivor.client() as client:
        # At once, maybe before a new leader: each write is answered with every view current (its
        # process catches up itself when no leader announces the write in time).
        for i in range(10):
            created = client.post(
                "/api/v1/workflows/create", json={"name": f"after {i}", "pipelineSteps": STEPS}
            )
            assert created.status_code == 201, created.text
            created_ids.append(created.json()["id"])
            assert_current(client)
            top = client.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
            assert top["id"] == created_ids[-1]

        eventually(lambda: len(new := leader_pids(database_url)) == 1 and new[0] != leader)
        [new_leader] = leader_pids(database_url)
        assert parent_of(new_leader) in (first.process.pid, second.process.pid)
        if parent_of(new_leader) == second.process.pid:
            assert leads(second)

        more = client.post(
            "/api/v1/workflows/create", json={"name": "under the new leader", "pipelineSteps": STEPS}
        )
        assert more.status_code == 201, more.text
        created_ids.append(more.json()["id"])
        assert_current(client)
        listed = client.get("/api/v1/workflows/list", params={"limit": 100}).json()["items"]
        assert sorted(item["id"] for item in listed) == sorted(created_ids)

    with leading_server.client() as client:  # its killed worker was replaced, and reads the same views
        eventually(lambda: answers_ready(client))
        assert_current(client)
        listed = client.get("/api/v1/workflows/list", params={"limit": 100}).json()["items"]
        assert sorted(item["id"] for item in listed) == sorted(created_ids)


@pytest.mark.postgres
def test_a_stopped_leader_hands_over_and_the_new_one_serves_every_writer(
    two_servers: tuple[str, Server, Server], tmp_path: Path
) -> None:
    """A clean stop releases the lock at once; a write through yet another process (this test's own
    app, which does not lead) is answered once the leader in the server process applied it."""
    database_url, first, second = two_servers
    [leader] = leader_pids(database_url)
    leading_server, other = (first, second) if parent_of(leader) == first.process.pid else (second, first)
    stop_server(leading_server)
    eventually(lambda: [parent_of(pid) for pid in leader_pids(database_url)] == [other.process.pid])

    settings = Settings(
        database_url=database_url,
        files_dir=tmp_path / "files",
        allowed_hosts=(*LOOPBACK_HOSTS, "testserver.local"),  # the test client's Host
    )
    writer = Services(settings, create_tables=False)
    try:
        with TestClient(create_app(services=writer)) as client:
            created = client.post(
                "/api/v1/workflows/create",
                json={"name": "from elsewhere", "pipelineSteps": STEPS},
                headers={"Authorization": f"Bearer {first.key}"},
            )
            assert created.status_code == 201, created.text
            assert not writer.is_projection_leader
    finally:
        writer.close()
    with other.client() as client:
        assert_current(client)
        top = client.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
        assert top["id"] == created.json()["id"]


@pytest.mark.postgres
def test_a_wake_up_ends_a_wait_for_notifications_at_once_and_is_not_passed_on(
    make_postgres_url: Callable[[], str],
) -> None:
    """How `stop` interrupts the leadership thread: without it, a stop waits out the thread's tick."""
    database_url = make_postgres_url()
    session = ListeningSession.connect(database_url, [APPLIED_CHANNEL], "test")
    try:

        def wake() -> None:
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute("SELECT pg_notify(%s, '')", (session.wake_channel,))

        threading.Timer(0.1, wake).start()
        began = time.monotonic()
        assert session.receive(timeout=FAIL_OVER_BOUND) == []
        assert time.monotonic() - began < FAIL_OVER_BOUND / 2
    finally:
        session.close()


def test_sqlite_serves_one_process_and_refuses_more(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    refused = run_cli(database_url, "serve", "--workers", "2")
    assert refused.returncode == 2
    assert "--workers 2 needs PostgreSQL" in refused.stderr
    server = start_server(database_url)
    try:
        assert not leads(server)
        with server.client() as client:
            created = client.post(
                "/api/v1/workflows/create", json={"name": "embedded", "pipelineSteps": STEPS}
            )
            assert created.status_code == 201, created.text
            assert_current(client)
            top = client.get("/api/v1/workflows/list", params={"limit": 1}).json()["items"][0]
            assert top["id"] == created.json()["id"]
    finally:
        stop_server(server)
