"""Latency of a create and of a list page on each store, against a real server, with /health as baseline.

Run: .venv/bin/python scripts/bench_latency.py [--requests N] [--postgres postgresql://root@127.0.0.1:5432/postgres]
Each store gets a fresh database; requests are sequential from one client over loopback.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

STEPS = [{"type": "designer", "cliId": "claude", "model": "claude-opus-4-7"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(database_url: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url, "WFS_RATE_LIMIT": "0"},  # a benchmark is no abuse
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    key = ""
    for line in process.stdout:
        if line.strip().startswith("wfs_"):
            key = line.strip()
        if line.startswith("Serving"):
            break
    # Keep reading what the server prints (access logs), or its writes block once the pipe is full.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield base, key
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(call: Callable[[], httpx.Response], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms"


def bench_store(label: str, database_url: str, requests: int) -> None:
    with (
        server(database_url) as (base, key),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
    ):
        timed(lambda: client.get("/health"), 50)
        health = timed(lambda: client.get("/health"), requests)
        body = {"name": "bench", "description": "latency", "pipelineSteps": STEPS}
        create = timed(lambda: client.post("/api/v1/workflows/create", json=body), requests)
        for _ in range(max(0, 250 - requests)):
            client.post("/api/v1/workflows/create", json=body)
        page = timed(lambda: client.get("/api/v1/workflows/list", params={"limit": 100}), requests)
        cursor = client.get("/api/v1/workflows/list", params={"limit": 100}).json()["nextCursor"]
        second = timed(
            lambda: client.get("/api/v1/workflows/list", params={"limit": 100, "cursor": cursor}), requests
        )
    print(f"{label}:")
    print(f"  GET /health (baseline)           {describe(health)}")
    print(f"  POST /workflows/create           {describe(create)}")
    print(f"  GET /workflows/list limit=100    {describe(page)}")
    print(f"  GET /workflows/list next page    {describe(second)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get("WFS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{args.requests} sequential requests per route, one client, loopback")
    with tempfile.TemporaryDirectory() as folder:
        bench_store("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", args.requests)
    if args.postgres:
        name = f"wfs_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            bench_store("PostgreSQL", args.postgres.rsplit("/", 1)[0] + "/" + name, args.requests)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    else:
        print("PostgreSQL skipped: pass --postgres or set WFS_TEST_POSTGRES_URL")


if __name__ == "__main__":
    main()
