"""The keyless operations routes a load balancer asks: is the process up, and can it answer."""

from __future__ import annotations

from typing import Literal

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from msgspec import Struct

from api.dependencies import from_services
from api.metrics import read_progress
from domain.camel import CamelStruct
from domain.service import WorkflowService
from projections.projector import Projector

READY_LAG_BOUND = 1000
"""How many events a read model may trail the store by while the service still calls itself ready."""

READY_FAILURES_SHOWN = 20
"""How many skipped events `/ready` lists; `failureCount` says how many there are in all."""


class Health(Struct):
    status: str


class SkippedEvent(CamelStruct):
    """An event a read model could not apply and skipped; `workflow-service rebuild` tries it again.

    `error` is the error's type only: `/ready` needs no key, and a message can quote stored
    content. The message is in the log and in the `projection_failures` table.
    """

    view: str
    position: int
    topic: str
    error: str
    failed_at: str


class ReadModelProgress(CamelStruct):
    """A read model's position, and how far it trails the store: in events, and in seconds (the age
    of the oldest event it has not applied yet; 0 when caught up)."""

    position: int
    lag_events: int
    lag_seconds: float


class Readiness(CamelStruct):
    """`degraded`: reads and writes work, but some read model skipped events (listed, oldest first)."""

    status: Literal["ready", "degraded"]
    head: int
    projections: dict[str, ReadModelProgress]
    failure_count: int = 0
    failures: list[SkippedEvent] = []


@get("/health", sync_to_thread=False, tags=["operations"], summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    sync_to_thread=True,
    tags=["operations"],
    summary="Store reachable, views current",
    description=f"503 while a read model trails the store by more than {READY_LAG_BOUND} events.",
    dependencies={
        "projector": from_services(lambda services: services.projector),
        "workflows": from_services(lambda services: services.workflows),
    },
)
def ready(projector: NamedDependency[Projector], workflows: NamedDependency[WorkflowService]) -> Readiness:
    progress = read_progress(projector, workflows)
    behind = progress.furthest_behind()
    if behind is not None and behind[1].lag_events > READY_LAG_BOUND:
        name, view = behind
        raise ServiceUnavailableException(
            f"read models are catching up: {name} is {view.lag_events} events"
            f" ({view.lag_seconds:.0f} s) behind the store"
        )
    count, failures = projector.failures(READY_FAILURES_SHOWN)
    return Readiness(
        status="degraded" if count else "ready",
        head=progress.head,
        projections={
            name: ReadModelProgress(view.position, view.lag_events, view.lag_seconds)
            for name, view in progress.views.items()
        },
        failure_count=count,
        failures=[SkippedEvent(f.view, f.position, f.topic, f.error_type, f.failed_at) for f in failures],
    )
