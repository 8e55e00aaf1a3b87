"""The app factory: builds the backend, the routes, the auth and the error table, once per process."""

from __future__ import annotations

from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from msgspec import Struct

from api.analytics import WorkflowAnalyticsController
from api.auth import provide_backend, provide_principal
from api.backend import Backend
from api.errors import EXCEPTION_HANDLERS
from api.files import FileController, upload
from api.gate import check_request
from api.runs import RunController, WorkflowRunsController
from api.settings import MAX_BODY_BYTES, Settings
from api.workflows import WorkflowController
from projections.runner import Follower

READY_LAG_BOUND = 1000
"""How many events a read model may trail the store by while the service still calls itself ready."""


class Health(Struct):
    status: str


class Readiness(Struct):
    status: str
    head: int
    projections: dict[str, int]


@get("/health", sync_to_thread=False, tags=["operations"], summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@get("/ready", sync_to_thread=True, tags=["operations"], summary="Store reachable, views current")
def ready(state: State) -> Readiness:
    backend: Backend = state.backend
    head = backend.workflows.recorder.max_notification_id() or 0
    positions = backend.projector.positions()
    lagging = any(head - position > READY_LAG_BOUND for position in positions.values())
    if lagging:
        raise ServiceUnavailableException("read models are catching up")
    return Readiness(status="ready", head=head, projections=positions)


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> Litestar:
    """One app per process; pass a backend to share it (tests), or settings to build one."""
    owned = backend is None
    backend = backend or Backend(settings or Settings.from_env())

    follower = Follower(backend.projector)

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
        ],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        before_request=check_request,
        security=[{"apiKey": []}],
    )
    return Litestar(
        route_handlers=[health, ready, api_v1, upload],
        dependencies={"backend": Provide(provide_backend, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"backend": backend}),
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=[follower.start],
        on_shutdown=[close_backend],
        openapi_config=OpenAPIConfig(
            title="Workflow Service",
            version="1.0.0",
            description="Event-sourced workflow definitions and their runs.",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")
                }
            ),
        ),
    )


def create_app_from_env() -> Litestar:
    """The factory uvicorn workers call: settings from the environment, tables already made."""
    return create_app(backend=Backend(Settings.from_env(), create_tables=False))
