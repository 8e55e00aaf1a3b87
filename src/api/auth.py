"""Bearer API keys: every /api/v1 request acts as one live key (401), within that key's scope (403), in
that key's project. Litestar's authentication middleware finds the key; a guard checks its scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anyio import to_thread
from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult

from api.scopes import bearer_secret, in_scope, out_of_scope, principal_of
from store.accounts import Principal

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from composition.services import Services


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    """Finds the request's key: missing or malformed, unknown, revoked or expired are 401.

    The lookup is database I/O, so it runs in a worker thread; the rate limiter and the
    Idempotency-Key middleware, which run first, share its answer (`api.scopes.principal_of`).
    """

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        if bearer_secret(connection.scope) is None:
            raise NotAuthorizedException("send an API key as 'Authorization: Bearer <key>'")
        services: Services = connection.app.state.services
        principal = await to_thread.run_sync(principal_of, services.accounts, connection.scope)
        if principal is None:
            raise NotAuthorizedException("the API key is unknown, revoked or expired")
        return AuthenticationResult(user=principal, auth=None)


API_KEYS = DefineMiddleware(ApiKeyAuthentication, exclude_http_methods=[])
"""The middleware for the /api/v1 router; every method needs a key, OPTIONS too."""


async def within_key_scope(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
    """The guard after authentication: a key whose scope does not allow the route is 403 (async: no I/O,
    so Litestar runs it on the event loop rather than in a thread)."""
    if not in_scope(connection.user, connection.scope):
        raise PermissionDeniedException(out_of_scope(connection.user, connection.scope))


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    """The caller the middleware authenticated."""
    return request.user
