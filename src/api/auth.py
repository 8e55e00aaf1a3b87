"""Bearer API keys: every /api/v1 request acts as one key, in that key's project."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

from api.backend import Backend
from domain.accounts import Principal

BackendDep = NamedDependency[Backend]
"""A handler parameter `backend: BackendDep` receives the process's backend."""
PrincipalDep = NamedDependency[Principal]
"""A handler parameter `principal: PrincipalDep` receives the authenticated caller."""


def provide_backend(state: State) -> Backend:
    backend: Backend = state.backend
    return backend


def authenticate(request: Request[Any, Any, Any]) -> Principal:
    """The key's principal; a missing, malformed, unknown or revoked key is 401."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException("send an API key as 'Authorization: Bearer <key>'")
    principal = provide_backend(request.app.state).accounts.authenticate(secret.strip())
    if principal is None:
        raise NotAuthorizedException("the API key is unknown or revoked")
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal `check_request` authenticated for this request."""
    principal: Principal = request.state.principal
    return principal
