"""How every API route is declared: run in a worker thread (the event store and the read models are
synchronous), listing the problem documents it can answer in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.handlers import HTTPRouteHandler

from api.errors import READ_ERRORS, WRITE_ERRORS


def read(path: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A GET route: `@read("/get", "Get a workflow")`."""
    return get(path, sync_to_thread=True, responses=READ_ERRORS, summary=summary, **options)


def write(path: str, summary: str, *, status_code: int = 200, **options: Any) -> HTTPRouteHandler:
    """A POST route: 200, or 201 for one that makes something (`status_code=201`)."""
    return post(
        path, sync_to_thread=True, responses=WRITE_ERRORS, status_code=status_code, summary=summary, **options
    )
