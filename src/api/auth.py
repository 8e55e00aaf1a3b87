"""Bearer API keys: every /api/v1 request acts as one key, in that key's project, within that key's scope."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.pagination import Cursors
from api.scopes import bearer_secret, in_scope, out_of_scope, principal_of
from composition.services import Services
from store.accounts import Principal

ServicesDep = NamedDependency[Services]
"""A handler parameter `backend: ServicesDep` receives the process's backend."""
CursorsDep = NamedDependency[Cursors]
"""A handler parameter `cursors: CursorsDep` receives the deployment's cursor codec."""
PrincipalDep = NamedDependency[Principal]
"""A handler parameter `principal: PrincipalDep` receives the authenticated caller."""


def provide_backend(state: State) -> Services:
    backend: Services = state.backend
    return backend


def provide_cursors(state: State) -> Cursors:
    cursors: Cursors = state.cursors
    return cursors


def authenticate(request: Request[Any, Any, Any]) -> Principal:
    """The key's principal: a missing, malformed, unknown, revoked or expired key is 401; out of scope 403."""
    if bearer_secret(request.scope) is None:
        raise NotAuthorizedException("send an API key as 'Authorization: Bearer <key>'")
    principal = principal_of(provide_backend(request.app.state).accounts, request.scope)
    if principal is None:
        raise NotAuthorizedException("the API key is unknown, revoked or expired")
    if not in_scope(principal, request.scope):
        raise PermissionDeniedException(out_of_scope(principal, request.scope))
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal `check_request` authenticated for this request."""
    principal: Principal = request.state.principal
    return principal
