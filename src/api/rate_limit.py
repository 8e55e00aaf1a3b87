"""Per-key request limits (`WFS_RATE_LIMIT` a minute), and the per-key answers (403, 429) in the OpenAPI doc.

Litestar's rate-limit middleware and config, counting per API key instead of per client address.
Its own bookkeeping is replaced: it keeps every request's timestamp in a JSON list that each
request decodes and encodes again (cost growing with the limit), and a lock per route; here one
count per key and window, shared by every route. Windows are fixed, starting at a key's first
request, as in Litestar. The counts live in each server process's memory: a shared count would
cost a database write on every request, so with N worker processes a key may make N times the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import time
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import DURATION_VALUES, DurationUnit, RateLimitConfig, RateLimitMiddleware
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.errors import PROBLEM_MEDIA_TYPE
from api.scopes import OUT_OF_SCOPE_RESPONSE, READ_METHODS, bearer_secret, principal_of
from composition.settings import Settings
from store.accounts import hash_secret

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.routes import BaseRoute
    from litestar.types import Message, Receive, Scope, Send

    from composition.services import Services

API_PREFIX = "/api/v1/"
"""Only API-keyed routes count; /health, /ready, the OpenAPI document and the upload URL do not."""
WINDOW: DurationUnit = "minute"


@dataclass
class Window:
    """One key's requests in the current window, and when the window ends (epoch seconds)."""

    count: int
    reset: int


@dataclass
class KeyRateLimitConfig(RateLimitConfig):
    """Litestar's config, plus what every route's middleware shares: the windows, and which key each
    secret is (by its hash), so that a known key is counted without a database lookup."""

    windows: dict[str, Window] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)


class KeyRateLimitMiddleware(RateLimitMiddleware):
    """Counts each API key's requests; a request without a live key passes on to be answered 401."""

    config: KeyRateLimitConfig

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key_id = await self.key_id(scope) if scope["path"].startswith(API_PREFIX) else None
        if key_id is None:
            await self.app(scope, receive, send)
            return
        window = self.count(key_id)
        if window.count > self.max_requests:
            wait = max(1, window.reset - int(time()))
            raise TooManyRequestsException(
                detail=f"this API key may make {self.max_requests} requests a {WINDOW}; retry in {wait} s",
                headers={**self.headers(window), "Retry-After": str(wait)},
            )
        await self.app(scope, receive, self.adding_headers(send, window))

    async def key_id(self, scope: Scope) -> str | None:
        """The key's id: known from an earlier request, or looked up (a lookup shared with authentication)."""
        secret = bearer_secret(scope)
        if secret is None:
            return None
        secret_hash = hash_secret(secret)
        known = self.config.key_ids.get(secret_hash)
        if known is not None:
            return known
        services: Services = scope["litestar_app"].state.services
        principal = await to_thread.run_sync(principal_of, services.accounts, scope)
        if principal is None:
            return None
        self.config.key_ids[secret_hash] = principal.key_id
        return principal.key_id

    def count(self, key_id: str) -> Window:
        """This request in its key's window; no await, so no other request interleaves."""
        now = int(time())
        window = self.config.windows.get(key_id)
        if window is None or window.reset <= now:
            window = self.config.windows[key_id] = Window(0, now + DURATION_VALUES[self.unit])
        if window.count <= self.max_requests:  # refused requests stop counting at limit + 1
            window.count += 1
        return window

    def headers(self, window: Window) -> dict[str, str]:
        return {
            self.config.rate_limit_policy_header_key: f"{self.max_requests}; w={DURATION_VALUES[self.unit]}",
            self.config.rate_limit_limit_header_key: str(self.max_requests),
            self.config.rate_limit_remaining_header_key: str(max(0, self.max_requests - window.count)),
            self.config.rate_limit_reset_header_key: str(max(0, window.reset - int(time()))),
        }

    def adding_headers(self, send: Send, window: Window) -> Send:
        headers = self.headers(window)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                response_headers = MutableScopeHeaders(message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        return send_with_headers


def rate_limit_config(requests_per_minute: int) -> KeyRateLimitConfig:
    return KeyRateLimitConfig(
        rate_limit=(WINDOW, requests_per_minute), middleware_class=KeyRateLimitMiddleware
    )


def _integer_header(description: str) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description=description)


RATE_LIMITED_RESPONSE = OpenAPIResponse(
    description="The API key made more requests this minute than `WFS_RATE_LIMIT` allows (per process).",
    content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
    headers={
        "Retry-After": _integer_header("Seconds until the key may call again."),
        "RateLimit-Limit": _integer_header("Requests the key may make in a window."),
        "RateLimit-Remaining": _integer_header("Requests left in this window (0 here)."),
        "RateLimit-Reset": _integer_header("Seconds until the window ends."),
        "RateLimit-Policy": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), description="The limit and its window, e.g. `1200; w=60`."
        ),
    },
)


def declaring(base: type[Operation], answers: tuple[tuple[str, OpenAPIResponse], ...]) -> type[Operation]:
    """A subclass of the handler's operation class (which may add its own parts) that adds these answers."""

    def __post_init__(self: Operation) -> None:
        parent = getattr(super(subclass, self), "__post_init__", None)
        if parent is not None:
            parent()
        self.responses = {**(self.responses or {}), **dict(answers)}

    # dataclass() again, so that __init__ calls __post_init__ even when the base has none
    subclass: type[Operation] = dataclass(
        type(f"{base.__name__}WithKeyAnswers", (base,), {"__post_init__": __post_init__})
    )
    return subclass


class ApiKeyLimitsPlugin(InitPlugin, ReceiveRoutePlugin):
    """Installs the per-key rate limit (outermost, so even an idempotent replay counts) and declares the
    403 and 429 answers on every API route in the OpenAPI document. List it after IdempotencyPlugin."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.requests_per_minute = (settings or Settings.from_env()).rate_limit
        self._operation_classes: dict[tuple[type[Operation], bool], type[Operation]] = {}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.requests_per_minute > 0:
            app_config.middleware.insert(0, rate_limit_config(self.requests_per_minute).middleware)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            return
        for handler in route.route_handlers:
            writes = not handler.http_methods <= READ_METHODS
            handler.operation_class = self._operation_class(handler.operation_class, writes)

    def _operation_class(self, base: type[Operation], writes: bool) -> type[Operation]:
        if (base, writes) not in self._operation_classes:
            answers: list[tuple[str, Any]] = [("403", OUT_OF_SCOPE_RESPONSE)] if writes else []
            if self.requests_per_minute > 0:
                answers.append(("429", RATE_LIMITED_RESPONSE))
            self._operation_classes[base, writes] = declaring(base, tuple(answers))
        return self._operation_classes[base, writes]
