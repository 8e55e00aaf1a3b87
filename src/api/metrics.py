"""Health you can watch: each read model's position and lag, and the Prometheus `GET /metrics` route.

Request counts and latencies come from Litestar's Prometheus middleware, labelled by route template;
the store's figures (head, each view's position and lag, skipped events) are read at scrape time.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from litestar import Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPlugin
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.backend import Backend
from domain.outage import is_outage

log = logging.getLogger(__name__)

METRIC_PREFIX = "wfs"
MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Where worker processes keep their counters, so a scrape of any worker sums all of them."""

NOT_COUNTED = "not_in_request_metrics"
"""The `opt` key that keeps a route (the scrape itself) out of the request metrics."""


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


def read_progress(backend: Backend, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> StoreProgress:
    """Every view's position and lag: two queries when all are caught up, one more per distinct lagging position.

    Positions are read before the head, so a view is never reported ahead of the store.
    """
    positions = backend.projector.positions()
    head = backend.workflows.recorder.max_notification_id() or 0
    ages = {
        position: _age_of_first_event_after(backend, position, now())
        for position in set(positions.values())
        if position < head
    }
    views = {
        name: ViewProgress(position, max(head - position, 0), ages.get(position, 0.0))
        for name, position in positions.items()
    }
    return StoreProgress(head, views)


def _age_of_first_event_after(backend: Backend, position: int, now: datetime) -> float:
    """Seconds since the oldest event the view has not applied was stored (its timestamp is never sealed)."""
    recorder = backend.workflows.recorder
    notifications = recorder.select_notifications(start=position + 1, limit=1)
    if not notifications:
        return 0.0
    state = backend.workflows.mapper.transcoder.decode(notifications[0].state)
    stored_at = state.get("timestamp")
    if not isinstance(stored_at, datetime):
        return 0.0
    return round(max((now - stored_at).total_seconds(), 0.0), 3)


class StoreCollector(Collector):
    """The store's figures as gauges, read when scraped; `wfs_store_up 0` while the store is unreachable."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        try:
            progress = read_progress(self.backend)
            skipped, _ = self.backend.projector.failures(0)
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning("metrics: the store cannot be reached: %s", error)
            yield _gauge("store_up", "1 when the event store answered this scrape, else 0", 0)
            return
        yield _gauge("store_up", "1 when the event store answered this scrape, else 0", 1)
        yield _gauge("events_stored", "Position of the newest stored event (the store's head)", progress.head)
        yield _per_view(
            "read_model_position", "Position of the last event the read model applied", progress,
            lambda view: view.position,
        )
        yield _per_view(
            "read_model_lag_events", "Events stored that the read model has not applied yet", progress,
            lambda view: view.lag_events,
        )
        yield _per_view(
            "read_model_lag_seconds", "Age of the oldest event the read model has not applied (0: caught up)",
            progress, lambda view: view.lag_seconds,
        )
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


@get(
    "/metrics",
    sync_to_thread=True,
    tags=["operations"],
    summary="Prometheus metrics: requests, latencies, the store and its read models",
    opt={NOT_COUNTED: True},
    media_type=CONTENT_TYPE_LATEST,
)
def metrics(state: State) -> Response[bytes]:
    body = generate_latest(_request_metrics()) + generate_latest(StoreCollector(state.backend))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _request_metrics() -> Collector:
    """This process's request metrics, or every worker's summed when `serve` runs several."""
    if not os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def request_metrics_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="workflow-service",
        prefix=METRIC_PREFIX,
        group_path=True,  # the route template (`/api/v1/workflows/get`), never a raw path with ids
        exclude_opt_key=NOT_COUNTED,
    )


class MetricsPlugin(InitPlugin):
    """Adds `GET /metrics` and the request metrics, outermost of the app's middleware so a 429 counts too.

    List it after any plugin that inserts middleware at the front.
    """

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, request_metrics_config().middleware)
        app_config.route_handlers.append(metrics)
        app_config.on_shutdown.append(_forget_this_process)
        return app_config


def _forget_this_process() -> None:
    """A stopping worker's in-progress gauge must not outlive it; its counters stay in the sums."""
    if os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


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
