"""What Litestar does not check before a handler's parameters are parsed: U+0000 in a query, integers
written other than in ASCII digits (Litestar's conversion takes `1e1` and `5.0`), and a write whose
body is not JSON. Runs after the key and its scope, before the body is read."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin, get_type_hints

from litestar import Request
from litestar.enums import ParamType
from litestar.params import ParameterKwarg
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.errors import UnsupportedMediaType
from api.strict_body import NUL_MESSAGE, invalid

if TYPE_CHECKING:
    from litestar.routes import BaseRoute

API_PREFIX = "/api/v1/"
INTEGER_QUERIES = "integer_queries"
"""Where a route handler's `opt` lists the query parameters its signature declares as integers."""

_INTEGER = re.compile(r"-?[0-9]+")


def integer_queries(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The URL names of the `QueryParameter`s a handler function declares as `int` (or `int | None`)."""
    names = []
    for name, hint in get_type_hints(fn, include_extras=True).items():
        if get_origin(hint) is not Annotated:
            continue
        declared, *metadata = get_args(hint)
        query = next((m for m in metadata if isinstance(m, ParameterKwarg)), None)
        if (
            query is not None
            and query.param_type == ParamType.QUERY
            and int in (get_args(declared) or (declared,))
        ):
            names.append(query.name or name)
    return tuple(names)


class IntegerQueries(ReceiveRoutePlugin):
    """Lists, once per API route handler as the app is built, its integer query parameters in its `opt`."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            return
        for handler in route.route_handlers:
            if handler.http_methods != {"OPTIONS"}:  # Litestar's own answer to OPTIONS takes no query
                # by now Litestar has wrapped a sync handler run in a thread; `func` is the function
                handler.opt[INTEGER_QUERIES] = integer_queries(getattr(handler.fn, "func", handler.fn))


async def check_request(request: Request[Any, Any, Any]) -> None:
    """The /api/v1 router's `before_request`: the query (400), then a write's media type (415).

    Async only so that Litestar calls it on the event loop: it does no I/O.
    """
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise invalid(name.replace("\x00", "\\u0000"), NUL_MESSAGE, "query")
    for name in request.route_handler.opt.get(INTEGER_QUERIES, ()):
        for value in request.query_params.getall(name, []):
            if not _INTEGER.fullmatch(value):
                raise invalid(name, "must be a whole number written in ASCII digits", "query")
    if request.method == "POST" and request.content_type[0] != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
