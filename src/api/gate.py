"""What every /api/v1 request passes first: a live API key, sane query parameters, then for writes a
JSON body of bounded shape, with no string the store cannot hold, strictly of the declared type."""

from __future__ import annotations

import re
from typing import Any, get_args

import anyio.to_thread
import msgspec
from litestar import Request
from litestar.exceptions import SerializationException, ValidationException
from litestar.params import ParameterKwarg

from api.auth import authenticate
from api.errors import UnsupportedMediaType
from api.json_limits import may_hold_nul, nul_path, shape_problem

_PATH = re.compile(r"\s*-\s*at `\$\.?(?P<path>[^`]*)`$")
_INTEGER = re.compile(r"-?[0-9]+")
_body_types: dict[Any, Any] = {}
_integer_parameters: dict[Any, tuple[str, ...]] = {}
NUL_MESSAGE = "must not contain U+0000 (NUL): the store cannot hold it"
INLINE_SCAN_BYTES = 64 * 1024


def body_type(handler: Any) -> Any:
    """The Struct a handler's `data` parameter declares, or None; looked up once per handler."""
    if handler not in _body_types:
        parameter = handler.parsed_fn_signature.parameters.get("data")
        _body_types[handler] = None if parameter is None else parameter.annotation
    return _body_types[handler]


def integer_parameters(handler: Any) -> tuple[str, ...]:
    """The query parameters a handler declares as integers; looked up once per handler."""
    if handler not in _integer_parameters:
        _integer_parameters[handler] = tuple(
            getattr(parameter.kwarg_definition, "query", None) or name
            for name, parameter in handler.parsed_fn_signature.parameters.items()
            if isinstance(parameter.kwarg_definition, ParameterKwarg)
            and parameter.kwarg_definition.header is None
            and int in (get_args(parameter.annotation) or (parameter.annotation,))
        )
    return _integer_parameters[handler]


def invalid(field: str, message: str, source: str) -> ValidationException:
    return ValidationException(
        detail="invalid input", extra=[{"message": message, "key": field, "source": source}]
    )


def check_query(request: Request[Any, Any, Any]) -> None:
    """No U+0000 in any query parameter; integers in plain ASCII digits (Litestar also takes `1e1`)."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise invalid(name.replace("\x00", "\\u0000"), NUL_MESSAGE, "query")
    for name in integer_parameters(request.route_handler):
        for value in request.query_params.getall(name, []):
            if not _INTEGER.fullmatch(value):
                raise invalid(name, "must be a whole number written in ASCII digits", "query")


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Every /api/v1 request: the API key first (401), then the query (400), then for writes the body.

    The key lookup is I/O, so it runs in a worker thread.
    """
    request.state.principal = await anyio.to_thread.run_sync(authenticate, request)
    check_query(request)
    if request.method == "POST":
        await check_body(request)


async def check_body(request: Request[Any, Any, Any]) -> None:
    """JSON (415) of bounded shape, with no U+0000, strictly of the declared type (400).

    The shape is bounded on the raw bytes, before anything is decoded. Litestar converts a decoded
    body leniently (a numeric string becomes a number); the contract says a wrong type is 400, so
    the body is checked strictly here, before the handler's own decoding. Checking 2 MiB takes tens
    of milliseconds, so large bodies are checked off the event loop.
    """
    if request.content_type[0] != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    body = await request.body()
    if not body.strip():
        return
    large = len(body) > INLINE_SCAN_BYTES
    problem = await anyio.to_thread.run_sync(shape_problem, body) if large else shape_problem(body)
    if problem is not None:
        raise invalid("body", problem, "body")
    declared = body_type(request.route_handler)
    if declared is None:
        return
    try:
        raw = await request.json()  # parsed once: Litestar's body decoding reuses it
    except SerializationException:
        return  # the body parser reports malformed JSON in its own words
    if large:
        await anyio.to_thread.run_sync(check_decoded, body, raw, declared)
    else:
        check_decoded(body, raw, declared)


def check_decoded(body: bytes, raw: Any, declared: Any) -> None:
    """No string the store cannot hold, and the handler's Struct without any lenient coercion."""
    if may_hold_nul(body):
        path = nul_path(raw)
        if path is not None:
            raise invalid(path or "body", NUL_MESSAGE, "body")
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
