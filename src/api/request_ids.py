"""`X-Request-Id` on every answer, in every event a request stores, and on one access log line per request.

A client may send its own id (1..128 visible ASCII characters, 0x21..0x7E); any other value, or
none, or more than one, gets a new id instead (never a refusal: an id is for tracing, not input).
The middleware wraps the whole app, outside its error handling and every other middleware, so
404s for unknown paths, 405s, 429s and idempotent replays carry the id of the request answered.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.errors import send_problem
from api.logs import FIELDS
from api.scopes import KEY_LOOKUP
from domain.request_context import current_request_id

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.routes import BaseRoute
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

    from store.accounts import Principal

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_RAW_HEADER = HEADER.lower().encode()
_VALID = re.compile(rb"[!-~]{1,%d}" % MAX_LENGTH)

access_log = logging.getLogger("workflow_service.access")
log = logging.getLogger("workflow_service")


def new_request_id() -> str:
    """32 random hex digits (128 bits, like a uuid4's hex, at a third of its cost)."""
    return os.urandom(16).hex()


def client_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The client's own id, when it sent exactly one valid `X-Request-Id`."""
    values = [value for name, value in headers if name == _RAW_HEADER]
    if len(values) != 1 or _VALID.fullmatch(values[0]) is None:
        return None
    return values[0].decode("ascii")


class RequestIdMiddleware:
    """Pure ASGI: names the request, stamps the answer, and writes the access line when it is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self.serve(scope, receive, send)

    async def serve(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        request_id = client_request_id(scope["headers"]) or new_request_id()
        stamp = (_RAW_HEADER, request_id.encode("ascii"))
        status: int | None = None

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [item for item in message.get("headers", ()) if item[0].lower() != _RAW_HEADER]
                message = {**message, "headers": [*headers, stamp]}
            await send(message)

        started = time.perf_counter()
        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, stamped)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope.get("path_template"))
            if status is not None:
                raise
            status = 500
            await send_internal_error(stamped)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                log_access(scope, request_id, status, time.perf_counter() - started)
            current_request_id.reset(token)


def log_access(scope: HTTPScope, request_id: str, status: int | None, seconds: float) -> None:
    """One line per request: never its body, query or headers; the key by its id, not its secret."""
    principal: Principal | None = scope.get("state", {}).get(KEY_LOOKUP)
    route = scope.get("path_template")
    fields: dict[str, Any] = {
        "requestId": request_id,
        "method": scope["method"],
        "route": route,
        "status": status,
        "durationMs": round(seconds * 1000, 2),
        "keyId": None if principal is None else principal.key_id,
        "project": None if principal is None else principal.project_id,
    }
    args = (scope["method"], route or "(no route)", status)
    # makeRecord + handle: what `info` does, less looking up the caller's file and line (a third of the cost)
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "%s %s %s", args, None)
    setattr(record, FIELDS, fields)
    access_log.handle(record)


async def send_internal_error(send: Send) -> None:
    """The 500 problem for an error that escaped the app's own handlers (it should never happen)."""
    await send_problem(
        send, 500, "internal-error", "the server failed to answer this request; it has been logged"
    )


REQUEST_ID_SCHEMA = Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_LENGTH, pattern="^[!-~]+$")

REQUEST_ID_PARAMETER = Parameter(
    name=HEADER,
    param_in="header",
    required=False,
    description=f"Your own id for this request (1..{MAX_LENGTH} visible ASCII characters), echoed in the "
    "answer and recorded in every event the request stores; any other value is replaced by a new id.",
    schema=REQUEST_ID_SCHEMA,
)

REQUEST_ID_RESPONSE_HEADER = OpenAPIHeader(
    description="The request's id: the one sent, when valid, else a new one. It is in the access log line "
    "and in the `requestId` of every event the request stored (history, audit log).",
    schema=REQUEST_ID_SCHEMA,
    required=True,
)


def with_request_id(base: type[Operation]) -> type[Operation]:
    """A subclass of a handler's operation class (which may add its own parts) declaring the header."""

    @dataclass  # again, so that the generated __init__ calls __post_init__ even when `base` has none
    class WithRequestId(base):  # type: ignore[valid-type,misc]
        def __post_init__(self) -> None:
            parent = getattr(super(), "__post_init__", None)
            if parent is not None:
                parent()
            declare_request_id(self)

    WithRequestId.__name__ = WithRequestId.__qualname__ = f"{base.__name__}WithRequestId"
    subclass: type[Operation] = WithRequestId
    return subclass


def declare_request_id(operation: Operation) -> None:
    """The optional request header, and the response header on every answer the operation lists."""
    operation.parameters = [*(operation.parameters or []), REQUEST_ID_PARAMETER]
    operation.responses = {
        status: stamped_response(response) for status, response in (operation.responses or {}).items()
    }


def stamped_response(response: Any) -> Any:
    if not isinstance(response, OpenAPIResponse):
        return response
    return replace(response, headers={**(response.headers or {}), HEADER: REQUEST_ID_RESPONSE_HEADER})


class RequestIdPlugin(ReceiveRoutePlugin):
    """Declares `X-Request-Id` (request and every response) on every route. List it last among the
    plugins: it wraps whatever operation class the others chose."""

    def __init__(self) -> None:
        self._operation_classes: dict[type[Operation], type[Operation]] = {}

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            base = handler.operation_class
            if base not in self._operation_classes:
                self._operation_classes[base] = with_request_id(base)
            handler.operation_class = self._operation_classes[base]
