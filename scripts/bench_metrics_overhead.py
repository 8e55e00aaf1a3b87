"""What the request metrics cost per request: the same app with and without them, in one run.

Run: .venv/bin/python scripts/bench_metrics_overhead.py [--requests N] [--rounds R] [--multiprocess]
Both apps share one SQLite services and are called in-process over ASGI (no sockets), alternating in
rounds so machine noise hits both alike; per route, the median and the best round's mean per request.
Last, the middleware alone around an app that does nothing: its own cost without the app's noise.
`--multiprocess` measures what `serve --workers N` pays (counters kept in files).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("WFS_MASTER_KEY", "0f" * 32)
os.environ["WFS_RATE_LIMIT"] = "0"  # thousands of requests a minute from one key, on purpose


def measure(app: Any, path: str, query: str, headers: list[tuple[bytes, bytes]], requests: int) -> float:
    """Mean seconds per request of `requests` sequential GETs straight into the ASGI app."""

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        assert status == [200], (path, status)

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(requests):
            await one()
        return (time.perf_counter() - start) / requests

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    if args.multiprocess:
        (workdir / "metrics").mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")  # before prometheus_client loads

    from api import app as app_module
    from api.app import create_app
    from api.metrics import RequestMetricsMiddleware
    from composition.services import Services
    from composition.settings import Settings
    from domain.workflow_content import WorkflowContent

    services = Services(
        Settings(database_url=f"sqlite:///{workdir / 'store.db'}", files_dir=workdir / "files")
    )
    new = services.accounts.create_project("bench")
    saved = services.workflows.create_workflow(
        {"keyId": new.key_id, "keyName": "bench"},
        new.project_id,
        WorkflowContent.from_data({"name": "bench", "pipelineSteps": [{"type": "designer"}]}),
    )
    services.projector.catch_up()
    with_metrics = create_app(services=services)
    app_module.RequestMetricsMiddleware = lambda app: app  # type: ignore[assignment,misc]
    without_metrics = create_app(services=services)
    app_module.RequestMetricsMiddleware = RequestMetricsMiddleware

    key = [(b"authorization", f"Bearer {new.secret}".encode())]
    routes = {
        "/health": ("/health", "", []),
        "/api/v1/workflows/get": ("/api/v1/workflows/get", f"id={saved.workflow.id}", key),
    }
    mode = "multiprocess (files)" if args.multiprocess else "single process (memory)"
    print(f"{args.rounds} rounds x {args.requests} requests per app and route; metrics {mode}")
    for name, (path, query, headers) in routes.items():
        measure(with_metrics, path, query, headers, 50)  # warm both up
        measure(without_metrics, path, query, headers, 50)
        on, off = [], []
        for round_number in range(args.rounds):  # which app goes first alternates too
            pair = [(without_metrics, off), (with_metrics, on)]
            for app, times in pair if round_number % 2 == 0 else reversed(pair):
                times.append(measure(app, path, query, headers, args.requests))
        report(name, off, on)
    bare = bare_app()
    alone = [("the middleware alone", bare, RequestMetricsMiddleware(bare))]
    for name, without, with_ in alone:
        off, on = [], []
        for _ in range(args.rounds):
            off.append(measure(without, "/health", "", [], args.requests * 10))
            on.append(measure(with_, "/health", "", [], args.requests * 10))
        report(name, off, on)
    services.close()
    return 0


def report(name: str, off: list[float], on: list[float]) -> None:
    """Median and best round: the machine is shared, and the best round is the least disturbed."""
    for kind, pick in (("median", statistics.median), ("best", min)):
        base, metered = pick(off), pick(on)
        print(
            f"{name:26} {kind:6} without {base * 1e6:7.1f} µs  with {metered * 1e6:7.1f} µs"
            f"  overhead {(metered - base) * 1e6:6.1f} µs ({(metered / base - 1) * 100:+.1f}%)"
        )


def bare_app() -> Any:
    """An ASGI app that answers 200 at once and sets a route, so only the middleware's work is timed."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["path_template"] = "/health"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


if __name__ == "__main__":
    sys.exit(main())
