"""Who calls (one key lookup per request) and what the key's scope allows: every key reads, a runner key
also reports and cancels runs, a write key does everything."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Reference

from api.errors import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from litestar.types import Scope

    from store.accounts import Accounts, Principal

KEY_LOOKUP = "workflow_service.api_key"
"""Where a request's scope state keeps its key's principal (or None), so the key is looked up once."""

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RUNNER_ROUTES = frozenset({"/api/v1/runs/report", "/api/v1/runs/cancel"})
"""The writes an agent runner needs: report a run's progress and result, and cancel it."""


def bearer_secret(scope: Scope) -> str | None:
    """The key sent as `Authorization: Bearer <key>`, or None when there is no such header."""
    header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, secret = header.decode("latin-1").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def principal_of(accounts: Accounts, scope: Scope) -> Principal | None:
    """The request's live key, or None; the first call per request does I/O (call it from a thread).

    The rate limiter, the Idempotency-Key middleware and authentication all need the key; they share one
    lookup.
    """
    state = scope.setdefault("state", {})
    if KEY_LOOKUP not in state:
        secret = bearer_secret(scope)
        state[KEY_LOOKUP] = None if secret is None else accounts.authenticate(secret)
    principal: Principal | None = state[KEY_LOOKUP]
    return principal


def route_of(scope: Scope) -> str:
    """The route's path template (the same for every request to it)."""
    route: str = scope.get("path_template") or scope["path"]
    return route


def method_of(scope: Scope) -> str:
    """The request's HTTP method; the API has no WebSocket routes, which would count as reads."""
    return scope["method"] if scope["type"] == ScopeType.HTTP else "GET"


def may_call(key_scope: str, method: str, route: str) -> bool:
    """Whether a key of `key_scope` may call `method` on `route` (the route's path template).

    A key scope this code does not know (a newer release's, say) is treated as `read`.
    """
    if key_scope == "write" or method in READ_METHODS:
        return True
    return key_scope == "runner" and route in RUNNER_ROUTES


def in_scope(principal: Principal, scope: Scope) -> bool:
    """Whether the request's key may call the request's route."""
    return may_call(principal.scope, method_of(scope), route_of(scope))


def out_of_scope(principal: Principal, scope: Scope) -> str:
    """The 403 detail: what the key's scope allows, so the caller knows which key it needs."""
    allowed = "GET routes, runs/report and runs/cancel" if principal.scope == "runner" else "GET routes"
    return (
        f"this API key's scope is {principal.scope!r}, which allows only {allowed},"
        f" not {method_of(scope)} {route_of(scope)}"
    )


OUT_OF_SCOPE_RESPONSE = OpenAPIResponse(
    description="The API key's scope does not allow this route: `read` keys call only GET routes, "
    "`runner` keys GET routes plus runs/report and runs/cancel, `write` keys every route.",
    content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
)
