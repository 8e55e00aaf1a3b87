"""The app factory: builds the backend, the routes, the auth and the error table, once per process."""

from __future__ import annotations

from typing import Literal

from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from msgspec import Struct

from api.analytics import WorkflowAnalyticsController
from api.audit import AuditController
from api.auth import provide_backend, provide_cursors, provide_principal
from api.errors import EXCEPTION_HANDLERS
from api.files import FileController, upload_file
from api.gate import check_request
from api.idempotency import IdempotencyPlugin
from api.metrics import RequestMetricsMiddleware, metrics, read_progress
from api.pagination import Cursors
from api.rate_limit import ApiKeyLimitsPlugin
from api.request_ids import RequestIdMiddleware, RequestIdPlugin
from api.runs import RunController, WorkflowRunsController
from api.workflows import WorkflowController
from composition.services import Services
from composition.settings import MAX_BODY_BYTES, Settings
from projections.projector import BackgroundCatchUp

READY_LAG_BOUND = 1000
"""How many events a read model may trail the store by while the service still calls itself ready."""

READY_FAILURES_SHOWN = 20
"""How many skipped events `/ready` lists; `failureCount` says how many there are in all."""


class Health(Struct):
    status: str


class SkippedEvent(Struct, rename="camel"):
    """An event a read model could not apply and skipped; `workflow-service rebuild` tries it again.

    `error` is the error's type only: `/ready` needs no key, and a message can quote stored
    content. The message is in the log and in the `projection_failures` table.
    """

    view: str
    position: int
    topic: str
    error: str
    failed_at: str


class ReadModelProgress(Struct, rename="camel"):
    """A read model's position, and how far it trails the store: in events, and in seconds (the age
    of the oldest event it has not applied yet; 0 when caught up)."""

    position: int
    lag_events: int
    lag_seconds: float


class Readiness(Struct, rename="camel"):
    """`degraded`: reads and writes work, but some read model skipped events (listed, oldest first)."""

    status: Literal["ready", "degraded"]
    head: int
    projections: dict[str, ReadModelProgress]
    failure_count: int = 0
    failures: list[SkippedEvent] = []


@get("/health", sync_to_thread=False, tags=["operations"], summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@get("/ready", sync_to_thread=True, tags=["operations"], summary="Store reachable, views current")
def ready(state: State) -> Readiness:
    backend: Services = state.backend
    progress = read_progress(backend)
    behind = progress.furthest_behind()
    if behind is not None and behind[1].lag_events > READY_LAG_BOUND:
        name, view = behind
        raise ServiceUnavailableException(
            f"read models are catching up: {name} is {view.lag_events} events"
            f" ({view.lag_seconds:.0f} s) behind the store"
        )
    count, failures = backend.projector.failures(READY_FAILURES_SHOWN)
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


def create_app(settings: Settings | None = None, backend: Services | None = None) -> Litestar:
    """One app per process; pass a backend to share it (tests), or settings to build one."""
    owned = backend is None
    backend = backend or Services(settings or Settings.from_env())

    follower = BackgroundCatchUp(backend.projector)

    def close_backend() -> None:
        follower.stop()
        if owned:
            backend.close()

    api_v1 = Router(
        path="/api/v1",
        route_handlers=[
            WorkflowController,
            WorkflowRunsController,
            WorkflowAnalyticsController,
            RunController,
            FileController,
            AuditController,
        ],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        before_request=check_request,
        security=[{"apiKey": []}],
    )
    app = Litestar(
        route_handlers=[health, ready, metrics, api_v1, upload_file],
        dependencies={
            "backend": Provide(provide_backend, sync_to_thread=False),
            "cursors": Provide(provide_cursors, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[IdempotencyPlugin(), ApiKeyLimitsPlugin(settings), RequestIdPlugin()],  # in this order
        logging_config=None,  # the process configures logging once (api.logs), Litestar leaves it alone
        state=State({"backend": backend, "cursors": Cursors(backend.cursor_secret)}),
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=[follower.start],
        on_shutdown=[close_backend],
        openapi_config=OpenAPIConfig(
            title="Workflow Service",
            version="1.0.0",
            description="Event-sourced workflow definitions and their runs.",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), ScalarRenderPlugin(path="/docs")],
            operation_id_creator=operation_id,
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")
                }
            ),
        ),
    )
    # Outermost, around Litestar's own error handling: app-level middleware runs only once a route
    # matched, and a 404 for an unknown path or a 405 must carry a request id too.
    # The request metrics just inside it, for the same reason, and to count the status the client got.
    app.asgi_handler = RequestIdMiddleware(RequestMetricsMiddleware(app.asgi_handler))
    return app


def operation_id(handler: HTTPRouteHandler, *_: object) -> str:
    """A route's OpenAPI operationId is its handler's name: `create_workflow`, `start_run`, …"""
    return handler.handler_name


def create_app_from_env() -> Litestar:
    """The factory uvicorn workers call: settings from the environment, tables already made."""
    return create_app(backend=Services(Settings.from_env(), create_tables=False))
