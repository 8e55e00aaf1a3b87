"""Per-key rate limits over HTTP, on both stores: the request past the limit is 429 with Retry-After and
RateLimit headers, other keys and keyless routes are unaffected, and 0 turns the limit off."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from tests.support.client import Api

LIMIT = 3


def limited_client(services: Services, rate_limit: int) -> TestClient[Any]:
    return TestClient(create_app(dataclasses.replace(Settings(), rate_limit=rate_limit), services=services))


@pytest.fixture
def limited(services: Services) -> Iterator[TestClient[Any]]:
    with limited_client(services, LIMIT) as client:
        yield client


def caller(services: Services, client: TestClient[Any], name: str = "tests") -> Api:
    new = services.accounts.create_project(name)
    return Api(client, new.secret, new.project_id)


def test_the_request_past_the_limit_is_429_with_retry_after(
    services: Services, limited: TestClient[Any]
) -> None:
    api = caller(services, limited)
    for remaining in range(LIMIT - 1, -1, -1):
        allowed = api.get("/workflows/list")
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["ratelimit-limit"] == str(LIMIT)
        assert allowed.headers["ratelimit-remaining"] == str(remaining)
        assert 0 < int(allowed.headers["ratelimit-reset"]) <= 60

    refused = api.post("/workflows/create", {"name": "one too many", "pipelineSteps": [{"type": "designer"}]})
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert refused.json()["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == str(LIMIT)
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 0 <= int(refused.headers["ratelimit-reset"]) <= 60
    assert api.get("/workflows/list").status_code == 429


def test_a_refused_write_stores_nothing(services: Services, limited: TestClient[Any]) -> None:
    api = caller(services, limited)
    body = {"name": "kept out", "pipelineSteps": [{"type": "designer"}]}
    statuses = [api.post("/workflows/create", body).status_code for _ in range(LIMIT + 2)]
    assert statuses == [201] * LIMIT + [429, 429]
    reader = services.accounts.create_key(api.project_id, "reader", "read")
    listed = Api(limited, reader.secret, api.project_id).get("/workflows/list").json()["items"]
    assert len(listed) == LIMIT


def test_another_key_is_unaffected(services: Services, limited: TestClient[Any]) -> None:
    busy, other = caller(services, limited, "busy"), caller(services, limited, "other")
    second_key = services.accounts.create_key(busy.project_id, "second", "read")
    same_project = Api(limited, second_key.secret, busy.project_id)
    for _ in range(LIMIT):
        assert busy.get("/workflows/list").status_code == 200
    assert busy.get("/workflows/list").status_code == 429
    for api in (other, same_project):
        answered = api.get("/workflows/list")
        assert answered.status_code == 200, answered.text
        assert answered.headers["ratelimit-remaining"] == str(LIMIT - 1)


def test_an_idempotent_replay_counts(services: Services, limited: TestClient[Any]) -> None:
    api = caller(services, limited)
    body = {"name": "once", "pipelineSteps": [{"type": "designer"}]}
    answers = [api.post("/workflows/create", body, {"Idempotency-Key": "same"}) for _ in range(LIMIT + 1)]
    assert [a.status_code for a in answers] == [201] * LIMIT + [429]
    assert "idempotent-replayed" not in answers[-1].headers


def test_unknown_keys_are_401_however_often_they_call(services: Services, limited: TestClient[Any]) -> None:
    for _ in range(LIMIT + 2):
        response = limited.get("/api/v1/workflows/list", headers={"Authorization": "Bearer wfs_nobody"})
        assert response.status_code == 401
        assert "ratelimit-limit" not in response.headers


def test_health_ready_and_the_openapi_document_are_not_limited(
    services: Services, limited: TestClient[Any]
) -> None:
    for _ in range(LIMIT + 2):
        for path in ("/health", "/ready", "/schema/openapi.json"):
            response = limited.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "ratelimit-limit" not in response.headers


def test_zero_turns_the_limit_off(services: Services) -> None:
    with limited_client(services, 0) as client:
        api = caller(services, client)
        for _ in range(LIMIT * 3):
            response = api.get("/workflows/list")
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers
        paths = client.get("/schema/openapi.json").json()["paths"]
    assert all("429" not in op["responses"] for op in paths["/api/v1/workflows/list"].values())


def test_the_default_limit_is_1200_a_minute(api: Api) -> None:
    response = api.get("/workflows/list")
    assert response.headers["ratelimit-limit"] == "1200"
    assert response.headers["ratelimit-policy"] == "1200; w=60"


def test_the_openapi_document_declares_429_with_its_headers(limited: TestClient[Any]) -> None:
    paths = limited.get("/schema/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for operation in operations.values():
            assert ("429" in operation["responses"]) == path.startswith("/api/v1/"), path
    limited_answer = paths["/api/v1/workflows/list"]["get"]["responses"]["429"]
    assert set(limited_answer["headers"]) >= {
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    assert (
        limited_answer["content"]["application/problem+json"]["schema"]["$ref"]
        == "#/components/schemas/Problem"
    )
    create = paths["/api/v1/workflows/create"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])  # beside the idempotency plugin


def test_a_bad_setting_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WFS_RATE_LIMIT", "lots")
    with pytest.raises(ValueError, match="WFS_RATE_LIMIT"):
        Settings.from_env()
    monkeypatch.setenv("WFS_RATE_LIMIT", "0")
    assert Settings.from_env().rate_limit == 0
