"""Projection lag: from a write's answer to the moment readers on other connections see it in every view.

For each sample one connection updates a workflow while five others, one per view (get, list,
versions, history, /events), poll their view from the moment the write is sent. A poll sent after
the answer that still misses the write is a stale read (read-your-writes across connections wants
none). A sample's lag is the time from the answer to the start of the last stale read in any view
(0 when no read started after the answer missed the write): a lower bound that a slow read does
not inflate. The upper bound, to the first answer that showed the write in the last view, includes
up to one read's round trip; both are reported. The writer also reads its own write back at once
(`get` on its connection): a miss there breaks read-your-writes for the writer itself.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from .client import HttpConnection
from .figures import Figure
from .scenarios import Api, ok
from .seed import STEPS

SAMPLES_PER_WORKFLOW = 80
"""Under 100, so one page of history and of /events holds all of a lag workflow's events."""
POLL_DEADLINE_SECONDS = 10.0

Check = Callable[[Any, str, int], bool]
"""(answer JSON, workflow id, version written) -> does the view reflect the write?"""


VIEWS = ("get", "list", "versions", "history", "events")


def views(api: Api, workflow_id: str) -> dict[str, tuple[bytes, Check]]:
    def in_list(page: Any, id_: str, version: int) -> bool:
        return any(item["id"] == id_ and item["version"] >= version for item in page["items"])

    return {
        "get": (api.get(f"/workflows/get?id={workflow_id}"), lambda doc, _, v: doc["version"] >= v),
        "list": (api.get("/workflows/list?limit=50"), in_list),
        "versions": (
            api.get(f"/workflows/versions?id={workflow_id}&limit=1"),
            lambda page, _, v: page["currentVersion"] >= v,
        ),
        "history": (
            api.get(f"/workflows/history?id={workflow_id}&limit=100"),
            lambda page, _, v: len(page["items"]) >= v,
        ),
        "events": (
            api.get(f"/events?workflowId={workflow_id}&limit=100"),
            lambda page, _, v: len(page["items"]) >= v,
        ),
    }


class Sample:
    """One write and what the readers saw of it."""

    def __init__(self) -> None:
        self.answered = asyncio.Event()
        self.answered_at = 0.0
        self.seen_at: list[float] = []
        self.last_stale_at: float | None = None
        self.stale = 0
        self.own_stale = False

    async def poll(
        self, reader: HttpConnection, request: bytes, check: Check, id_: str, version: int
    ) -> None:
        deadline = time.perf_counter() + POLL_DEADLINE_SECONDS
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            if check(ok(await reader.request(request), "poll"), id_, version):
                self.seen_at.append(time.perf_counter())
                return
            if self.answered.is_set() and sent > self.answered_at:
                self.stale += 1
                self.last_stale_at = max(sent, self.last_stale_at or sent)

    async def write(self, api: Api, writer: HttpConnection, workflow_id: str, version: int) -> None:
        """The update, then the writer's own read of it (read-your-writes on one connection)."""
        update = {"workflowId": workflow_id, "description": f"lag {version}"}
        ok(await writer.request(api.post("/workflows/update", update)), "update")
        self.answered_at = time.perf_counter()
        self.answered.set()
        document = ok(await writer.request(api.get(f"/workflows/get?id={workflow_id}")), "get")
        self.own_stale = document["version"] < version

    def lag_ms(self, view_count: int) -> tuple[float, float]:
        """(lower, upper) bound of the lag in ms; infinite when some view never showed the write."""
        if len(self.seen_at) < view_count:
            return float("inf"), float("inf")
        lower = 0.0 if self.last_stale_at is None else self.last_stale_at - self.answered_at
        return lower * 1000, max(0.0, max(self.seen_at) - self.answered_at) * 1000


async def _measure(api: Api, samples: int) -> list[Sample]:
    writer = await HttpConnection.open("127.0.0.1", api.port)
    readers = [await HttpConnection.open("127.0.0.1", api.port) for _ in range(len(VIEWS))]
    taken: list[Sample] = []
    try:
        for first in range(0, samples, SAMPLES_PER_WORKFLOW):
            body = {"name": "lag", "pipelineSteps": STEPS}
            workflow_id = ok(await writer.request(api.post("/workflows/create", body)), "create")["id"]
            for version in range(2, 2 + min(SAMPLES_PER_WORKFLOW, samples - first)):
                sample = Sample()
                polls = [
                    sample.poll(reader, request, check, workflow_id, version)
                    for reader, (request, check) in zip(
                        readers, views(api, workflow_id).values(), strict=True
                    )
                ]
                await asyncio.gather(sample.write(api, writer, workflow_id, version), *polls)
                taken.append(sample)
    finally:
        for connection in (writer, *readers):
            connection.close()
    return taken


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]


def projection_lag(api: Api, samples: int) -> Figure:
    taken = asyncio.run(_measure(api, samples))
    lags = [sample.lag_ms(len(VIEWS)) for sample in taken]
    lower, upper = percentiles([low for low, _ in lags]), percentiles([high for _, high in lags])
    stale, own = sum(sample.stale for sample in taken), sum(sample.own_stale for sample in taken)
    missed = sum(1 for low, _ in lags if low == float("inf"))
    note = (
        f"stale reads after the answer: {stale} on other connections, {own} by the writer; {missed}"
        f" writes not seen within {POLL_DEADLINE_SECONDS:.0f} s; upper bound (first answer showing it,"
        f" one read's round trip included) p50 {upper[0]:.1f} ms, p99 {upper[1]:.1f} ms"
    )
    extra = {"stale": stale, "own_stale": own, "missed": missed, "upper_p50": upper[0], "upper_p99": upper[1]}
    return Figure(
        "lag",
        "projection lag, readers on 5 other connections",
        p50=lower[0],
        p99=lower[1],
        unit="ms",
        note=note,
        count=len(lags),
        extra=extra,
    )
