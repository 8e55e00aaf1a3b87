"""What the suite measures over HTTP against a running service: writes, reads, long histories."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .client import Answer, HttpConnection, build_request, closed_loop
from .figures import Figure, Plan
from .seed import STEPS, Seeded

API = "/api/v1"
T = TypeVar("T")


class Api:
    """Prebuilt requests to one service on `port` with one key."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key

    def get(self, target: str) -> bytes:
        return build_request("GET", API + target, port=self.port, key=self.key)

    def post(self, target: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        return build_request("POST", API + target, port=self.port, key=self.key, body=data)


def on_one_connection(port: int, work: Callable[[HttpConnection], Awaitable[T]]) -> T:
    """Run `work` with one fresh keep-alive connection."""

    async def run() -> T:
        connection = await HttpConnection.open("127.0.0.1", port)
        try:
            return await work(connection)
        finally:
            connection.close()

    return asyncio.run(run())


def ok(answer: Answer, what: str) -> Any:
    if answer.status >= 300:
        raise RuntimeError(f"{what}: {answer.status} {answer.body[:500]!r}")
    return answer.json()


def writes(api: Api, seeded: Seeded, plan: Plan) -> list[Figure]:
    """create and update at each write concurrency; each update connection changes its own workflow."""
    create = api.post("/workflows/create", {"name": "bench", "description": "create", "pipelineSteps": STEPS})
    ids = seeded.workflow_ids
    figures = []
    for connections in plan.write_concurrency:
        load = closed_loop(api.port, lambda _i, _n: create, connections, plan.warmup, plan.duration)
        figures.append(Figure.of(f"create@{connections}", f"create, {connections} conn.", load))
    for connections in plan.write_concurrency:

        def update(index: int, number: int, level: int = connections) -> bytes:
            body = {"workflowId": ids[index % len(ids)], "description": f"update {level}.{index}.{number}"}
            return api.post("/workflows/update", body)

        load = closed_loop(api.port, update, connections, plan.warmup, plan.duration)
        figures.append(Figure.of(f"update@{connections}", f"update, {connections} conn.", load))
    return figures


def read_targets(api: Api, seeded: Seeded, deep_cursor: str) -> dict[str, tuple[str, Callable[[int], bytes]]]:
    """Each read route the suite measures: its label and its n-th request."""
    ids, short = seeded.workflow_ids, seeded.short_id
    first = api.get("/workflows/list?limit=50")
    deep = api.get("/workflows/list?limit=50" + (f"&cursor={deep_cursor}" if deep_cursor else ""))
    versions = api.get(f"/workflows/versions?id={short}")
    analytics = api.get(f"/workflows/analytics?id={short}&days=30")
    history = api.get(f"/workflows/history?id={short}&limit=50")
    events = api.get("/events?limit=50")
    gets = [api.get(f"/workflows/get?id={id_}") for id_ in ids[:500]]
    return {
        "list": ("list, first page (50)", lambda _: first),
        "list_deep": (f"list, page at row {seeded.listed:,} (50)", lambda _: deep),
        "get": ("get", lambda n: gets[n % len(gets)]),
        "versions": (f"versions ({seeded.short_versions} versions)", lambda _: versions),
        "analytics": (f"analytics (30 days, {seeded.runs} runs)", lambda _: analytics),
        "history": ("history (50)", lambda _: history),
        "events": ("/events (50)", lambda _: events),
    }


def reads(api: Api, seeded: Seeded, plan: Plan, deep_cursor: str) -> list[Figure]:
    figures = []
    for name, (what, request) in read_targets(api, seeded, deep_cursor).items():

        def make(_index: int, number: int, request: Callable[[int], bytes] = request) -> bytes:
            return request(number)

        for connections in plan.read_concurrency:
            load = closed_loop(api.port, make, connections, plan.warmup, plan.duration)
            figures.append(Figure.of(f"{name}@{connections}", f"{what}, {connections} conn.", load))
    return figures


def deep_cursor(api: Api, budget_seconds: float) -> tuple[str, int, dict[str, Any]]:
    """Walk `list` in pages of 100 to its end (or as far as the budget allows): the cursor of the
    last full page, how many rows come before it, and the first page of 50 (the baseline app's)."""

    async def walk(connection: HttpConnection) -> tuple[str, int, dict[str, Any]]:
        first = ok(await connection.request(api.get("/workflows/list?limit=50")), "list")
        deadline = time.monotonic() + budget_seconds
        cursor, previous, rows = "", "", 0
        while time.monotonic() < deadline:
            target = "/workflows/list?limit=100" + (f"&cursor={cursor}" if cursor else "")
            page = ok(await connection.request(api.get(target)), "list")
            if not page["hasMore"]:
                return previous, max(0, rows - 100), first
            previous, cursor, rows = cursor, page["nextCursor"], rows + len(page["items"])
        return cursor, rows, first

    return on_one_connection(api.port, walk)


def add_runs(api: Api, workflow_id: str, count: int) -> None:
    """`count` finished runs of the workflow, through the API, so analytics has something to add up."""
    cost = [{"model": "gpt-5", "cliId": "codex", "costUsd": 0.25, "inputTokens": 1000, "outputTokens": 200}]

    async def add(connection: HttpConnection) -> None:
        for number in range(count):
            body = {"workflowId": workflow_id, "prompt": f"bench run {number}"}
            run = ok(await connection.request(api.post("/runs/start", body)), "runs/start")
            for report in ({"status": "running"}, {"status": "succeeded", "costBreakdown": cost}):
                ok(
                    await connection.request(api.post("/runs/report", {"runId": run["id"], **report})),
                    "report",
                )

    on_one_connection(api.port, add)


def long_history(api: Api, seeded: Seeded, plan: Plan) -> list[Figure]:
    """p50 of an update and of a `versions` page on the long and the short workflow, taken in turn."""

    async def measure(connection: HttpConnection) -> list[Figure]:
        samples: dict[str, list[float]] = {
            "update_long": [],
            "update_short": [],
            "vp_long": [],
            "vp_short": [],
        }
        for number in range(plan.history_samples):
            for kind, id_ in (("long", seeded.long_id), ("short", seeded.short_id)):
                body = {"workflowId": id_, "description": f"history {number}"}
                samples[f"update_{kind}"].append(await timed(connection, api.post("/workflows/update", body)))
                page = api.get(f"/workflows/versions?id={id_}&limit=100")
                samples[f"vp_{kind}"].append(await timed(connection, page))
        page = ok(await connection.request(api.get(f"/workflows/versions?id={seeded.long_id}")), "versions")
        paged = "hasMore" in page and len(page["versions"]) < seeded.long_versions
        return [
            history_figure("update_long", f"update, {seeded.long_versions:,} versions", samples),
            history_figure("update_short", f"update, {seeded.short_versions} versions", samples),
            history_figure(
                "versions_long",
                f"versions page (100), {seeded.long_versions:,} versions",
                samples,
                paged=paged,
            ),
            history_figure("versions_short", f"versions page, {seeded.short_versions} versions", samples),
        ]

    return on_one_connection(api.port, measure)


async def timed(connection: HttpConnection, request: bytes) -> float:
    started = time.perf_counter()
    answer = await connection.request(request)
    elapsed = (time.perf_counter() - started) * 1000
    ok(answer, request.split(b"\r\n", 1)[0].decode())
    return elapsed


def history_figure(key: str, what: str, samples: dict[str, list[float]], **extra: Any) -> Figure:
    values = samples[key.replace("versions_", "vp_")]
    ordered = sorted(values)
    return Figure(
        key,
        what,
        p50=statistics.median(values),
        p99=ordered[-1],
        unit="ms",
        count=len(values),
        tail="max",
        extra=extra,
    )
