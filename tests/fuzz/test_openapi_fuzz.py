"""Schemathesis against the app's own OpenAPI document, in process, on both stores.

Every operation gets its schema's examples, schemathesis' coverage cases (boundaries, NULs, wrong
types) and `MAX_EXAMPLES` generated requests, valid and invalid, with a fixed seed so CI repeats the
same run. Ids are often real ones of every kind (live, deleted, erased, foreign workflows; runs in
every state; versions), so requests reach the code behind the 404s. A request passes when the answer
is not a 5xx, its status is declared for the operation, and its body and content type match the
declaration.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from litestar.testing import TestClient
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, as_reported_failure
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.client import Api
from tests.support.targets import Targets

MAX_EXAMPLES = int(os.environ.get("WFS_FUZZ_MAX_EXAMPLES", "10"))
"""Generated requests per operation and phase; raise it locally (WFS_FUZZ_MAX_EXAMPLES=200) to dig deeper."""
SEED = 20261130
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ID_PROBABILITY = 0.5
"""How often an id parameter takes a real id (of any kind) rather than a generated string."""

IDEMPOTENCY_KEY = "Idempotency-Key"
VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
KEY_SUFFIXES = itertools.count()

ID_PARAMETERS = (
    "query.id",
    "query.workflowId",
    "body.workflowId",
    "body.runId",
    "body.versionId",
    "body.workflowIds[*]",
)


def without_lifespan(app: Any) -> Callable[..., Any]:
    """The app as schemathesis calls it: its startup and shutdown belong to the `client` fixture."""

    async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)

    return serve


def fuzz_config(api: Api, targets: Targets) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "allow-x00": True,
            },
            "auth": {"openapi": {"apiKey": {"bearer": api.key}}},
            "dictionaries": {"ids": {"values": targets.any_ids}},
            "parameters": {
                name: {"dictionary": "ids", "probability": ID_PROBABILITY} for name in ID_PARAMETERS
            },
            "suppress-health-check": ["all"],
        }
    )


def check(case: Case, count_request: Callable[[], None]) -> None:
    """One generated request: sent to the app in process, its answer checked against the document."""
    make_idempotency_key_unique(case)
    response = case.call()
    count_request()
    case.validate_response(response, checks=CHECKS)


def make_idempotency_key_unique(case: Case) -> None:
    """Keep a valid generated Idempotency-Key, but never the same one twice.

    Schemathesis draws the same few keys again and again; with another body each repeat is a 409
    (the contract), and most writes would never get past the key. Invalid keys are sent as drawn.
    """
    key = (case.headers or {}).get(IDEMPOTENCY_KEY)
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers[IDEMPOTENCY_KEY] = f"{key[:200]}-{next(KEY_SUFFIXES)}"


def test_every_answer_is_declared_and_none_is_a_5xx(
    client: TestClient[Any],
    api: Api,
    targets: Targets,
    count_request: Callable[[], None],
    subtests: pytest.Subtests,
) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", without_lifespan(client.app), config=fuzz_config(api, targets)
    )
    # Schemathesis' own pytest integration reads a Node attribute that pytest 9 no longer has, so
    # each operation's Hypothesis test (all phases, the config's seed) is run here as a subtest.
    for built in get_all_tests(schema=schema, test_func=check, settings=None, given_kwargs={}):
        operation, operation_test = built.ok()
        with subtests.test(msg=operation.label):
            try:
                operation_test(count_request=count_request)
            except FailureGroup as failures:
                raise as_reported_failure(failures) from None
