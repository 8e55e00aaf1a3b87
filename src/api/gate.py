"""What every /api/v1 request passes first: a live API key, then for writes a strictly typed JSON body."""

from __future__ import annotations

import re
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request
from litestar.exceptions import SerializationException, ValidationException

from api.auth import authenticate
from api.errors import UnsupportedMediaType

_PATH = re.compile(r"\s*-\s*at `\$\.?(?P<path>[^`]*)`$")
_body_types: dict[Any, Any] = {}


def body_type(handler: Any) -> Any:
    """The Struct a handler's `data` parameter declares, or None; looked up once per handler."""
    if handler not in _body_types:
        parameter = handler.parsed_fn_signature.parameters.get("data")
        _body_types[handler] = None if parameter is None else parameter.annotation
    return _body_types[handler]


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Every /api/v1 request: the API key first (401), then for writes the body (415, 400).

    The key lookup is I/O, so it runs in a worker thread. Litestar converts a decoded body
    leniently (a numeric string becomes a number); the contract says a wrong type is 400, so the
    body is checked strictly here, before the handler's own decoding.
    """
    request.state.principal = await anyio.to_thread.run_sync(authenticate, request)
    if request.method != "POST":
        return
    if request.content_type[0] != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    declared = body_type(request.route_handler)
    body = await request.body()
    if declared is None or not body.strip():
        return
    try:
        raw = await request.json()  # parsed once: Litestar's body decoding reuses it
    except SerializationException:
        return  # the body parser reports malformed JSON in its own words
    try:
        msgspec.convert(raw, declared, strict=True)
    except msgspec.ValidationError as error:
        message = str(error)
        found = _PATH.search(message)
        key = found.group("path") if found else ""
        if found:
            message = message[: found.start()]
        raise ValidationException(
            detail="invalid body", extra=[{"message": message, "key": key or "data", "source": "body"}]
        ) from error
