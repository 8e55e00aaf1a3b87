"""The plugin that installs the middleware and declares the `Idempotency-Key` header on every API POST."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.openapi.spec import Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.idempotency.keys import API_PREFIX, HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from api.idempotency.middleware import IdempotencyMiddleware

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.routes import BaseRoute

KEY_PARAMETER = Parameter(
    name=HEADER,
    param_in="header",
    required=False,
    description="Makes a retry safe: the same key and the same body bytes within 24 hours answer the "
    "first response again (nothing new is stored); the same key with another body is 409. "
    "Keys are per project.",
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN),
)


@dataclass
class KeyedOperation(Operation):
    """An API POST's OpenAPI operation, declaring the Idempotency-Key header."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), KEY_PARAMETER]


class IdempotencyPlugin(InitPlugin, ReceiveRoutePlugin):
    """Registers the middleware and declares the header on every API POST in the OpenAPI document."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(IdempotencyMiddleware(self.clock))
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            return
        for handler in route.route_handlers:
            if "POST" in handler.http_methods and handler.operation_class is Operation:
                handler.operation_class = KeyedOperation
