"""The database goes away and comes back: 503 with Retry-After meanwhile, recovery without a restart.

A small TCP proxy between a real server process and PostgreSQL lets the test cut the connection:
every open connection is closed, and new ones are refused or accepted and never answered.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from tests.support.data import STEPS
from tests.support.servers import Server, start_server, stop_server

PROMPTLY = 5.0
"""Client timeout while the store is cut: generous against the 3 s the contract allows, far below a hang."""
RECOVERY_BOUND = 60.0
RETRY_KEY = {"Idempotency-Key": "create-during-the-outage"}

Cut = Literal["refuse", "blackhole"]


class Proxy:
    """Forwards TCP connections from a local port to a target until cut; restorable on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.mode: Literal["forward", "blackhole"] = "forward"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.listen()

    def listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self, how: Cut) -> None:
        """Close every open connection; then refuse new ones, or accept them and never answer."""
        if how == "refuse":
            self._stop_listening()
        else:
            self.mode = "blackhole"
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        self.mode = "forward"
        if self._listener is None:
            self.listen()

    def close(self) -> None:
        self._stop_listening()
        self.cut("blackhole")

    def _stop_listening(self) -> None:
        if self._listener is not None:
            _close(self._listener)
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            if self.mode == "forward":
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._sockets.add(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxied(
    make_postgres_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Proxy, Server]]:
    """A real server process whose every database connection goes through a proxy the test controls."""
    if not os.environ.get("WFS_MASTER_KEY"):
        monkeypatch.setenv("WFS_MASTER_KEY", "11" * 32)
    parts = urlsplit(make_postgres_url())
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    server = start_server(urlunsplit(parts._replace(netloc=netloc)))
    try:
        yield proxy, server
    finally:
        stop_server(server)
        proxy.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503


def eventually_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + RECOVERY_BOUND
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if client.get("/ready").status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("the service did not recover after the database came back")


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["refuse", "blackhole"])
def test_cut_database_answers_503_then_recovers_without_restart(
    proxied: tuple[Proxy, Server], how: Cut
) -> None:
    proxy, server = proxied
    with server.client() as client:
        created = client.post("/api/v1/workflows/create", json={"name": "kept", "pipelineSteps": STEPS})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        for i in range(3):
            update = {"workflowId": workflow_id, "description": f"before {i}"}
            assert client.post("/api/v1/workflows/update", json=update).status_code == 200

    proxy.cut(how)
    with server.client() as client:
        client.timeout = httpx.Timeout(PROMPTLY)
        for _ in range(2):
            assert_unavailable(client.get("/ready"))
            assert_unavailable(client.get("/api/v1/workflows/get", params={"id": workflow_id}))
            during = {"workflowId": workflow_id, "description": "during the cut"}
            assert_unavailable(client.post("/api/v1/workflows/update", json=during))
            create = {"name": "during the cut", "pipelineSteps": STEPS}
            assert_unavailable(client.post("/api/v1/workflows/create", json=create))
            retried = {"name": "retried", "pipelineSteps": STEPS}
            assert_unavailable(client.post("/api/v1/workflows/create", json=retried, headers=RETRY_KEY))

    proxy.restore()
    with server.client() as client:
        eventually_ready(client)
        after = {"workflowId": workflow_id, "description": "after"}
        updated = client.post("/api/v1/workflows/update", json=after)
        assert updated.status_code == 200, updated.text
        document = client.get("/api/v1/workflows/get", params={"id": workflow_id}).json()
        assert (document["version"], document["description"]) == (5, "after")
        versions = client.get("/api/v1/workflows/versions", params={"id": workflow_id}).json()
        assert [v["version"] for v in versions["versions"]] == [5, 4, 3, 2, 1]
        listed = client.get("/api/v1/workflows/list").json()["items"]
        assert [item["name"] for item in listed] == ["kept"]
        retried = {"name": "retried", "pipelineSteps": STEPS}
        first = client.post("/api/v1/workflows/create", json=retried, headers=RETRY_KEY)
        assert first.status_code == 201, first.text
        again = client.post("/api/v1/workflows/create", json=retried, headers=RETRY_KEY)
        assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert server.process.poll() is None


def test_locked_sqlite_answers_503_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    services = Services(Settings(database_url=f"sqlite:///{path}", files_dir=tmp_path / "files"))
    try:
        with TestClient(create_app(services=services)) as client:
            client.headers["Authorization"] = f"Bearer {services.accounts.create_project('p').secret}"
            created = client.post("/api/v1/workflows/create", json={"name": "kept", "pipelineSteps": STEPS})
            workflow_id = created.json()["id"]
            with holding_write_lock(path):
                blocked = {"workflowId": workflow_id, "description": "while locked"}
                assert_unavailable(client.post("/api/v1/workflows/update", json=blocked))
            after = client.post(
                "/api/v1/workflows/update", json={"workflowId": workflow_id, "description": "after"}
            )
            assert after.status_code == 200, after.text
            document = client.get("/api/v1/workflows/get", params={"id": workflow_id}).json()
            assert (document["version"], document["description"]) == (2, "after")
    finally:
        services.close()


@contextlib.contextmanager
def holding_write_lock(path: Path) -> Iterator[Any]:
    """Another process's long write transaction, as a second connection holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        other.execute("ROLLBACK")
    finally:
        other.close()
