"""The app factory: builds the services, the routes, the auth and the error table, once per process."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

from api.analytics import WorkflowAnalyticsController
from api.audit import AuditController
from api.auth import API_KEYS, within_key_scope
from api.dependencies import services_of
from api.errors import EXCEPTION_HANDLERS
from api.files import FileController, upload_file
from api.idempotency import IdempotencyPlugin
from api.metrics import RequestMetricsMiddleware, metrics
from api.pagination import Cursors
from api.rate_limit import ApiKeyLimitsPlugin
from api.readiness import health, ready
from api.request_checks import IntegerQueries, check_request
from api.request_ids import RequestIdMiddleware, RequestIdPlugin
from api.runs import RunController, WorkflowRunsController
from api.strict_body import StrictBodies
from api.workflows import WorkflowController
from composition.services import Services
from composition.settings import MAX_BODY_BYTES, Settings

DESCRIPTION = """Event-sourced workflow definitions and their runs.

Every `/api/v1` route needs an API key (`Authorization: Bearer <key>`); its scope decides which
routes it may call. Errors are RFC 9457 problem documents (`application/problem+json`) whose
`errors` name each invalid field as clients spell it (`pipelineSteps[0].cliId`). Every API POST
takes an `Idempotency-Key`, and every answer carries an `X-Request-Id`."""

TAGS = [
    Tag(name="workflows", description="Workflow definitions: content versions, trash, and their tabs."),
    Tag(name="runs", description="Runs of a workflow, started by clients and reported by agent runners."),
    Tag(name="audit", description="Every stored event, readable: a workflow's history and the audit log."),
    Tag(name="files", description="Reference images for runs, uploaded to single-use URLs."),
    Tag(name="operations", description="Keyless routes for load balancers and monitoring."),
]


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    """One app per process; pass the services to share them (tests), or settings to build them."""
    app = build_app(settings)
    serve_services(app, services or Services(settings or Settings.from_env()), owned=services is None)
    return app


def build_app(settings: Settings | None = None) -> Litestar:
    """The routes, the auth, the plugins and the error table, serving the services in `app.state`.

    Handlers, middleware and the lifespan all find the services there (`serve_services`), so an app
    can be pointed at other services between lifespans: the tests build one per worker, not per test.
    """
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
        middleware=[API_KEYS],  # 401, then
        guards=[within_key_scope],  # 403, then
        before_request=check_request,  # the query and the media type, then the body (api.strict_body)
        security=[{"apiKey": []}],
    )
    app = Litestar(
        route_handlers=[health, ready, metrics, api_v1, upload_file],
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[
            StrictBodies(),
            IntegerQueries(),
            IdempotencyPlugin(),  # these three in this order
            ApiKeyLimitsPlugin(settings),
            RequestIdPlugin(),
        ],
        logging_config=None,  # the process configures logging once (api.logs), Litestar leaves it alone
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=[start_following],
        on_shutdown=[stop_following],
        openapi_config=openapi_config(),
    )
    # Outermost, around Litestar's own error handling: app-level middleware runs only once a route
    # matched, and a 404 for an unknown path or a 405 must carry a request id too.
    # The request metrics just inside it, for the same reason, and to count the status the client got.
    app.asgi_handler = RequestIdMiddleware(RequestMetricsMiddleware(app.asgi_handler))
    return app


def serve_services(app: Litestar, services: Services, *, owned: bool) -> None:
    """Point the app at these services; if `owned`, its shutdown closes them."""
    app.state.services = services
    app.state.cursors = Cursors(services.cursor_secret)
    app.state.owns_services = owned


def start_following(app: Litestar) -> None:
    """At startup: the read models follow every writer from now on (api.readiness reports how far)."""
    services_of(app.state).start_following()


def stop_following(app: Litestar) -> None:
    """At shutdown: stop following (on PostgreSQL this hands the lead over), and close owned services."""
    services = services_of(app.state)
    services.stop_following()
    if app.state.owns_services:
        services.close()


def openapi_config() -> OpenAPIConfig:
    """The OpenAPI document at /schema/openapi.json, and the interactive docs at /schema/docs."""
    return OpenAPIConfig(
        title="Workflow Service",
        version="1.0.0",
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[JsonRenderPlugin(), ScalarRenderPlugin(path="/docs")],
        operation_id_creator=operation_id,
        tags=TAGS,
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key (`workflow-service keys create`): read, runner or write.",
                )
            }
        ),
    )


def operation_id(handler: HTTPRouteHandler, *_: object) -> str:
    """A route's OpenAPI operationId is its handler's name: `create_workflow`, `start_run`, …"""
    return handler.handler_name
