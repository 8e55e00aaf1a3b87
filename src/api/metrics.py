"""Health you can watch: each read model's position and lag, and the Prometheus `GET /metrics` route.

Request counts and latencies are counted around the whole app, labelled by route template; the
store's figures (head, each view's position and lag, skipped events) are read at scrape time.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.dependencies import from_services
from domain.service import WorkflowService
from projections.projector import Projector
from store.outage import is_outage

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

METRIC_PREFIX = "wfs"
MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Where worker processes keep their counters, so a scrape of any worker sums all of them."""


@dataclass(frozen=True)
class ViewProgress:
    """One read model's place: its position, and how far (in events and in time) it trails the store."""

    position: int
    lag_events: int
    lag_seconds: float


@dataclass(frozen=True)
class StoreProgress:
    """The store's head and every read model's progress towards it, read together."""

    head: int
    views: dict[str, ViewProgress]

    def furthest_behind(self) -> tuple[str, ViewProgress] | None:
        if not self.views:
            return None
        return max(self.views.items(), key=lambda item: item[1].lag_events)


def read_progress(
    projector: Projector, workflows: WorkflowService, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> StoreProgress:
    """Every view's position and lag: two queries when all are caught up, one more per lagging position.

    Positions are read before the head, so a view is never reported ahead of the store.
    """
    positions = projector.positions()
    head = workflows.recorder.max_notification_id() or 0
    ages = {
        position: _age_of_first_event_after(workflows, position, now())
        for position in set(positions.values())
        if position < head
    }
    views = {
        name: ViewProgress(position, max(head - position, 0), ages.get(position, 0.0))
        for name, position in positions.items()
    }
    return StoreProgress(head, views)


def _age_of_first_event_after(workflows: WorkflowService, position: int, now: datetime) -> float:
    """Seconds since the oldest event the view has not applied was stored (its timestamp is never sealed)."""
    notifications = workflows.recorder.select_notifications(start=position + 1, limit=1)
    if not notifications:
        return 0.0
    state = workflows.mapper.transcoder.decode(notifications[0].state)
    stored_at = state.get("timestamp")
    if not isinstance(stored_at, datetime):
        return 0.0
    return round(max((now - stored_at).total_seconds(), 0.0), 6)


VIEW_GAUGES: tuple[tuple[str, str, Callable[[ViewProgress], float]], ...] = (
    ("read_model_position", "Position of the last event the read model applied", lambda v: v.position),
    (
        "read_model_lag_events",
        "Events stored that the read model has not applied yet",
        lambda v: v.lag_events,
    ),
    (
        "read_model_lag_seconds",
        "Age of the oldest event the read model has not applied yet (0 when caught up)",
        lambda v: v.lag_seconds,
    ),
)


class StoreCollector(Collector):
    """The store's figures as gauges, read when scraped; `wfs_store_up 0` while the store is unreachable."""

    def __init__(self, projector: Projector, workflows: WorkflowService) -> None:
        self.projector = projector
        self.workflows = workflows

    def collect(self) -> Iterator[Metric]:
        yield _gauge(
            "projection_leader",
            "1 when the process that answered this scrape applies events to the read models (PostgreSQL)",
            int(self.projector.leading),
        )
        try:
            progress = read_progress(self.projector, self.workflows)
            skipped, _ = self.projector.failures(0)
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning("metrics: the store cannot be reached: %s", error)
            yield _gauge("store_up", "1 when the event store answered this scrape, else 0", 0)
            return
        yield _gauge("store_up", "1 when the event store answered this scrape, else 0", 1)
        yield _gauge("events_stored", "Position of the newest stored event (the store's head)", progress.head)
        for name, documentation, value in VIEW_GAUGES:
            yield _per_view(name, documentation, progress, value)
        yield _gauge(
            "read_model_skipped_events",
            "Events some read model could not apply and skipped (listed by /ready; rebuild retries them)",
            skipped,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{METRIC_PREFIX}_{name}", documentation, value=value)


def _per_view(
    name: str, documentation: str, progress: StoreProgress, value: Callable[[ViewProgress], float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{METRIC_PREFIX}_{name}", documentation, labels=["view"])
    for view_name, view in progress.views.items():
        family.add_metric([view_name], value(view))
    return family


REQUESTS = Counter(
    f"{METRIC_PREFIX}_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    f"{METRIC_PREFIX}_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method, route template and status",
    ["method", "route", "status"],
)
SCRAPE_ROUTE = "/metrics"
"""Not counted itself: a scraper's own requests would only add noise."""
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Any other method a client makes up is counted as `other`, so it cannot add series without end."""
UNMATCHED = "unmatched"
"""The route of a request no route matched (a 404 for an unknown path, a 405): never the raw path."""


class RequestMetricsMiddleware:
    """Pure ASGI, around all of Litestar: counts and times every answer with the status the client got.

    Inside any Litestar middleware it would miss the 404s and 405s of the router, and count a 429
    (raised by the rate limit, answered outside it) with the wrong status.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        status = 500  # what the request-id middleware answers for an error that escapes the app

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = scope.get("path_template") or UNMATCHED  # set by the router as it matched
            if route != SCRAPE_ROUTE:
                method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
                labels = (method, route, str(status))
                REQUESTS.labels(*labels).inc()
                LATENCY.labels(*labels).observe(time.perf_counter() - started)


@get(
    SCRAPE_ROUTE,
    sync_to_thread=True,
    tags=["operations"],
    summary="Prometheus metrics: requests, latencies, the store and its read models",
    media_type=CONTENT_TYPE_LATEST,
    dependencies={
        "projector": from_services(lambda services: services.projector),
        "workflows": from_services(lambda services: services.workflows),
    },
)
def metrics(
    projector: NamedDependency[Projector], workflows: NamedDependency[WorkflowService]
) -> Response[bytes]:
    store = StoreCollector(projector, workflows)
    return Response(
        generate_latest(_request_metrics()) + generate_latest(store), media_type=CONTENT_TYPE_LATEST
    )


def _request_metrics() -> Collector:
    """This process's request metrics, or every worker's summed when `serve` runs several."""
    if not os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def prepare_multiprocess_metrics(workers: int) -> None:
    """Before `serve` starts several workers: one directory for their counters, empty at start.

    Without it each worker would count only its own requests, and a scrape (answered by any one
    worker) would jump between their counts. An operator's own directory is emptied; otherwise a
    new temporary one is made and removed when `serve` exits.
    """
    directory = os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE)
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return
    if workers <= 1:
        return
    created = tempfile.mkdtemp(prefix="workflow-service-metrics-")
    atexit.register(shutil.rmtree, created, ignore_errors=True)
    os.environ[MULTIPROCESS_DIRECTORY_VARIABLE] = created
