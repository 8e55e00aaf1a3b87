"""The one table from errors to RFC 9457 problem documents, registered once in the app factory."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from eventsourcing.persistence import PersistenceError
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from msgspec import UNSET, Struct, UnsetType

from domain.errors import Busy, Conflict, DomainError, InvalidInput, NotFound, VersionConflict
from store.outage import is_outage

if TYPE_CHECKING:
    from litestar.types import ExceptionHandler, ExceptionHandlersMap, Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://workflow-service.dev/problems/"

STORE_RETRY_AFTER_SECONDS = 2

log = logging.getLogger("workflow_service")

_MISSING_PARAMETER = re.compile(r"parameter '(?P<name>[^']+)'")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MISSING_FIELD = re.compile(r"missing required field `(?P<name>[^`]+)`")


class FieldError(Struct):
    """One invalid input value, named by its path in the request (`pipelineSteps[0].cliId`)."""

    field: str
    message: str


class Problem(Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | UnsetType = UNSET


TITLES = {
    400: ("invalid-input", "Invalid input"),
    401: ("unauthorized", "Missing or invalid API key"),
    403: ("out-of-scope", "The API key's scope does not allow this"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


EXAMPLES = {
    400: Example(
        summary="A body field breaks its bounds",
        value={
            "type": PROBLEM_BASE + "invalid-input",
            "title": TITLES[400][1],
            "status": 400,
            "detail": "maxIterations: Expected `int` <= 100",
            "errors": [{"field": "maxIterations", "message": "Expected `int` <= 100"}],
        },
    ),
    409: Example(
        summary="The workflow changed since the caller read it",
        value={
            "type": PROBLEM_BASE + "version-conflict",
            "title": TITLES[409][1],
            "status": 409,
            "detail": "expected version 3, but the current version is 4",
        },
    ),
}
"""What a client most often has to handle, shown in the OpenAPI document."""


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem documents a route can answer."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_MEDIA_TYPE,
            description=TITLES[status][1],
            generate_examples=False,
            examples=[EXAMPLES[status]] if status in EXAMPLES else None,
        )
        for status in statuses
    }


READ_ERRORS = problem_responses(400, 401, 404, 503)
"""Every read can also find the store unreachable (503, with `Retry-After`)."""
WRITE_ERRORS = problem_responses(400, 401, 404, 409, 413, 415, 503)


class UnsupportedMediaType(HTTPException):
    """A write whose body is not JSON."""

    status_code = 415


def problem(
    status: int,
    detail: str,
    errors: list[FieldError] | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    default_slug, title = TITLES.get(status, ("error", "Error"))
    body = Problem(
        type=PROBLEM_BASE + (slug or default_slug),
        title=title,
        status=status,
        detail=detail,
        errors=UNSET if errors is None else errors,
    )
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def send_problem(
    send: Send,
    status: int,
    slug: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """The same problem document, sent as raw ASGI messages by middleware that answers outside the app."""
    problem = Problem(
        type=PROBLEM_BASE + slug,
        title=TITLES[status][1],
        status=status,
        detail=detail,
        errors=UNSET if errors is None else errors,
    )
    body = msgspec.json.encode(problem)
    raw = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(name.encode(), value.encode()) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def on_invalid_input(_: Request[Any, Any, Any], error: InvalidInput) -> Response[Problem]:
    return problem(400, error.detail, [FieldError(error.field, error.message)])


def answer_with(status: int, slug: str | None = None) -> ExceptionHandler[DomainError]:
    """A handler answering an error with this status, its detail as the problem's."""

    def handler(_: Request[Any, Any, Any], error: DomainError) -> Response[Problem]:
        return problem(status, error.detail, slug=slug)

    return handler


def on_validation_error(_: Request[Any, Any, Any], error: ValidationException) -> Response[Problem]:
    extra = error.extra if isinstance(error.extra, list) else []
    errors = [field_error(item) for item in extra if isinstance(item, dict)]
    if not errors:
        missing = _MISSING_PARAMETER.search(str(error.detail))
        errors = [FieldError(missing.group("name") if missing else "body", str(error.detail))]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(400, detail, errors)


def field_error(item: dict[str, Any]) -> FieldError:
    """Turn one of Litestar's validation messages into a field path and a plain message."""
    message = str(item.get("message", "invalid value"))
    path = str(item.get("key") or "")
    if message == repr(path):  # Litestar's word for a body that is not there at all
        message = "a JSON body is required"
    if path == "data":
        path = ""
    for pattern in (_UNKNOWN_FIELD, _MISSING_FIELD):
        named = pattern.search(message)
        if named:
            path = f"{path}.{named.group('name')}" if path else named.group("name")
    return FieldError(field=path or "body", message=message)


def on_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[Problem]:
    headers = dict(error.headers or {})  # Retry-After of a 429, Allow of a 405
    return problem(error.status_code, str(error.detail), headers=headers or None)


def on_unauthorized(_: Request[Any, Any, Any], error: NotAuthorizedException) -> Response[Problem]:
    """A 401 names the scheme the key goes in (RFC 9110 §11.6.1)."""
    return problem(401, str(error.detail), headers={**(error.headers or {}), "WWW-Authenticate": "Bearer"})


def on_busy(_: Request[Any, Any, Any], error: Busy) -> Response[Problem]:
    return problem(503, error.detail, slug="busy", headers={"Retry-After": str(error.retry_after)})


def on_store_error(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    """The database could not be reached (or was locked) in time: retry later; anything else is a bug."""
    if not is_outage(error):
        return on_unexpected_error(request, error)
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, error)
    detail = "the database cannot be reached right now; try again shortly"
    return problem(503, detail, headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})


def on_unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "the server failed to answer this request; it has been logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InvalidInput: on_invalid_input,
    NotFound: answer_with(404),
    VersionConflict: answer_with(409, "version-conflict"),
    Conflict: answer_with(409),
    DomainError: answer_with(400),
    ValidationException: on_validation_error,
    NotAuthorizedException: on_unauthorized,
    HTTPException: on_http_error,
    Busy: on_busy,
    PersistenceError: on_store_error,
    psycopg.Error: on_store_error,
    sqlite3.Error: on_store_error,
    Exception: on_unexpected_error,
}
"""Each error to its problem document. Litestar picks the entry of the closest class in the error's MRO,
so a `VersionConflict` is answered by its own entry, and any other `Conflict` by the one above it."""
