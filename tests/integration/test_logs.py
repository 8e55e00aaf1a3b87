"""A real `workflow-service serve`'s output: JSON lines only, never a key, a prompt or an upload's bytes,
and one request id tying an answer, its log line and the event it stored together."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.data import PNG, STEPS
from tests.support.servers import free_port

TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
EVERY_LINE = {"time", "level", "logger", "message", "requestId"}
ACCESS_LINE = EVERY_LINE | {"method", "route", "status", "durationMs", "keyId", "project"}


@dataclass
class LoggedServer:
    """A server whose stdout and stderr both go to one file, and the key of a project made beforehand."""

    base_url: str
    key: str
    key_id: str
    output: Path
    process: subprocess.Popen[bytes]

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}", **headers}, timeout=60
        )

    def stop(self) -> list[str]:
        """Stop the server (its shutdown lines are logs too) and answer everything it wrote."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()


def create_project(database_url: str) -> tuple[str, str]:
    """A project made with the CLI before serving, so the server prints no first-start key."""
    created = subprocess.run(
        [sys.executable, "-m", "api.cli", "projects", "create", "logs"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    match = re.search(r"api key (\w+): (wfs_\S+)", created.stdout)
    assert match is not None, created.stdout
    return match.group(1), match.group(2)


def start_logged_server(database_url: str, output: Path, workers: int) -> LoggedServer:
    key_id, key = create_project(database_url)
    port = free_port()
    with output.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)],
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = LoggedServer(f"http://127.0.0.1:{port}", key, key_id, output, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.base_url}/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("the server did not become ready:\n" + output.read_text(errors="replace"))


@pytest.fixture
def logged_server(database_url: str, tmp_path: Path) -> Iterator[LoggedServer]:
    workers = 2 if database_url.startswith("postgresql") else 1
    server = start_logged_server(database_url, tmp_path / "server.log", workers)
    yield server
    if server.process.poll() is None:
        server.stop()


@dataclass(frozen=True)
class Secrets:
    """What must never reach the logs, each unique to this run so that a match can only be a leak."""

    prompt: str
    upload: str
    content: str
    wrong_key: str


def exercise(server: LoggedServer, secrets: Secrets, tie: str) -> dict[str, Any]:
    """A representative session: writes with content, a run, an upload, and errors a client can cause."""
    with server.client() as client:
        body = {
            "name": f"name {secrets.content}",
            "description": f"description {secrets.content}",
            "pipelineSteps": STEPS,
            "defaultCheckerInstructions": f"instructions {secrets.content}",
        }
        created = client.post("/api/v1/workflows/create", json=body, headers={"X-Request-Id": tie})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        update = {"workflowId": workflow_id, "description": f"update {secrets.content}"}
        assert client.post("/api/v1/workflows/update", json=update).status_code == 200
        run = client.post("/api/v1/runs/start", json={"workflowId": workflow_id, "prompt": secrets.prompt})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        assert (
            client.post("/api/v1/runs/report", json={"runId": run_id, "status": "running"}).status_code == 200
        )
        report = {"runId": run_id, "status": "failed", "error": f"error {secrets.content}"}
        assert client.post("/api/v1/runs/report", json=report).status_code == 200
        assert client.get("/api/v1/workflows/list", params={"limit": 5}).status_code == 200
        assert client.get("/api/v1/workflows/history", params={"id": workflow_id}).status_code == 200

        url = client.post("/api/v1/files/upload-url", json={}).json()["uploadUrl"]
        image = PNG + secrets.upload.encode()
        uploaded = httpx.post(url, content=image, headers={"Content-Type": "image/png"}, timeout=60)
        assert uploaded.status_code == 200, uploaded.text
        not_an_image = secrets.upload.encode() * 10
        refused = httpx.post(
            client.post("/api/v1/files/upload-url", json={}).json()["uploadUrl"],
            content=not_an_image,
            headers={"Content-Type": "image/png"},
            timeout=60,
        )
        assert refused.status_code == 415

        errors = [
            client.post("/api/v1/workflows/create", json={"name": secrets.content}),  # 400: no steps
            client.post("/api/v1/workflows/create", content=f"{{{secrets.content}".encode()),  # 415/400
            client.get("/api/v1/workflows/get", params={"id": secrets.content}),  # 400/404
            client.get(f"/api/v1/{secrets.content}"),  # 404, no route
            httpx.post(
                f"{server.base_url}/api/v1/workflows/create",
                json=body,
                headers={"Authorization": f"Bearer {secrets.wrong_key}"},
            ),  # 401
        ]
        assert all(400 <= response.status_code < 500 for response in errors)
        return {"created": created, "workflow_id": workflow_id, "errors": errors}


def test_logs_are_json_lines_without_secrets_and_a_request_id_ties_answer_log_and_event(
    logged_server: LoggedServer,
) -> None:
    marker = uuid.uuid4().hex
    secrets = Secrets(
        prompt=f"prompt-{marker}",
        upload=f"upload-{marker}",
        content=f"content-{marker}",
        wrong_key=f"wfs_{marker}",
    )
    tie = f"tie-{marker}"
    session = exercise(logged_server, secrets, tie)
    with logged_server.client() as client:
        history = client.get("/api/v1/workflows/history", params={"id": session["workflow_id"]}).json()

    lines = logged_server.stop()

    output = "\n".join(lines)
    for secret in (logged_server.key, secrets.prompt, secrets.upload, secrets.content, secrets.wrong_key):
        assert secret not in output
    logs = [parse(line) for line in lines if line.strip() and not line.startswith("Serving ")]
    assert len(logs) == len([line for line in lines if line.strip()]) - 1  # the banner is the only plain line
    for entry in logs:
        assert set(entry) >= EVERY_LINE, entry
        assert TIME.fullmatch(entry["time"]), entry
        assert entry["level"] in {"debug", "info", "warning", "error", "critical"}, entry
    access = [entry for entry in logs if entry["logger"] == "workflow_service.access"]
    api_requests = [entry for entry in access if entry["route"] is None or entry["route"].startswith("/api/")]
    assert len(api_requests) >= 10
    for entry in access:
        assert set(entry) >= ACCESS_LINE, entry
        assert entry["route"] is None or "?" not in entry["route"], entry
    assert any(entry["status"] == 401 and entry["keyId"] is None for entry in access)
    assert all(response.headers["X-Request-Id"] for response in session["errors"])

    created = session["created"]
    assert created.headers["X-Request-Id"] == tie
    tied = [entry for entry in access if entry["requestId"] == tie]
    assert len(tied) == 1
    assert tied[0]["route"] == "/api/v1/workflows/create"
    assert tied[0]["method"] == "POST"
    assert tied[0]["status"] == 201
    assert tied[0]["keyId"] == logged_server.key_id
    assert history["items"][0]["type"] == "workflow.created"
    assert history["items"][0]["requestId"] == tie


def parse(line: str) -> dict[str, Any]:
    try:
        entry: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        pytest.fail(f"not a JSON log line: {line!r}")
    return entry
