"""Real `workflow-service` processes on the store under test: the server, and one CLI command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_WITHIN = 30.0
"""Seconds a new server may take to answer `/ready` (imports and table creation on a busy machine)."""


@dataclass
class Server:
    """A running server and the default project's key it printed on first start."""

    base_url: str
    key: str | None
    process: subprocess.Popen[str]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`workflow-service ARGS` as a process of its own, on the store under test."""
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "api.cli", *args],
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def start_server(
    database_url: str, workers: int = 1, host: str = "127.0.0.1", cwd: Path | None = None
) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--host", host, "--port", str(port)]
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*command, "--workers", str(workers)],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    key = None
    for line in process.stdout:
        if line.strip().startswith("wfs_"):
            key = line.strip()
        if line.startswith("Serving"):
            break
    # Keep reading what the server prints (access logs), or its writes block once the pipe is full.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    base_url = f"http://{host}:{port}"
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return Server(base_url, key, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not become ready")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
