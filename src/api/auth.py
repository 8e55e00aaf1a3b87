"""Bearer API keys: every /api/v1 request acts as one key, in that key's project, within that key's scope."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.backend import Backend
from api.scopes import bearer_secret, in_scope, out_of_scope, principal_of
from domain.accounts import Principal

BackendDep = NamedDependency[Backend]
"""A handler parameter `backend: BackendDep` receives the process's backend."""
PrincipalDep = NamedDependency[Principal]
"""A handler parameter `principal: PrincipalDep` receives the authenticated caller."""


def provide_backend(state: State) -> Backend:
    backend: Backend = state.backend
    return backend


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
