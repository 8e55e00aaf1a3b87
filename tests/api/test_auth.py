"""API keys: every /api/v1 route needs a live key, and a key sees only its own project."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from composition.services import Services
from tests.support.client import Api

ROUTES = [
    ("GET", "/api/v1/workflows/list"),
    ("GET", "/api/v1/workflows/get?id=x"),
    ("GET", "/api/v1/workflows/versions?id=x"),
    ("POST", "/api/v1/workflows/create"),
    ("POST", "/api/v1/workflows/update"),
    ("POST", "/api/v1/workflows/bulk-delete"),
]

MALFORMED_AUTHORIZATIONS = [None, "", "Bearer", "Basic abc", "Bearer   "]
"""Refused before any key is looked up."""


@pytest.mark.parametrize(
    "authorization",
    [
        *(pytest.param(value, marks=pytest.mark.sqlite_only) for value in MALFORMED_AUTHORIZATIONS),
        "Bearer wfs_unknown",  # looked up in the store
    ],
)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_malformed_or_unknown_keys_are_401(
    client: TestClient[Any], authorization: str | None, method: str, path: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_401(api: Api, services: Services) -> None:
    assert api.get("/workflows/list").status_code == 200
    key_id = next(k.key_id for k in services.accounts.list_keys() if k.project_id == api.project_id)
    services.accounts.revoke_key(key_id)
    assert api.get("/workflows/list").status_code == 401


def test_keys_are_stored_hashed(api: Api, services: Services) -> None:
    with services.database.transaction(commit=False) as tx:
        rows = tx.execute("SELECT key_hash FROM api_keys").fetchall()
    assert rows
    assert all(api.key not in row["key_hash"] for row in rows)


def test_a_second_key_acts_in_the_same_project(api: Api, services: Services, client: TestClient[Any]) -> None:
    created = api.create()
    second = services.accounts.create_key(api.project_id, "ci")
    other = Api(client, second.secret, api.project_id)
    renamed = other.post("/workflows/rename", {"workflowId": created["id"], "name": "by ci"})
    assert renamed.status_code == 200
    entry = api.get("/workflows/versions", id=created["id"]).json()["versions"][0]
    assert entry["actor"] == {"keyId": second.key_id, "keyName": "ci"}


def test_projects_never_see_each_other(api: Api, other_api: Api) -> None:
    mine = api.create("mine")
    theirs = other_api.create("theirs")
    assert [i["id"] for i in api.get("/workflows/list").json()["items"]] == [mine["id"]]
    assert [i["id"] for i in other_api.get("/workflows/list").json()["items"]] == [theirs["id"]]


def test_health_ready_and_openapi_need_no_key(client: TestClient[Any]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert client.get("/schema/openapi.json").status_code == 200


# The order of the checks: the key (401), its scope (403), the query (400), the media type (415), the body.

DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"name=x"),
        ("application/json", b"{"),
        ("application/json", DEEP),
        ("application/json", b""),
    ],
)
def test_the_key_is_checked_before_the_query_and_the_body(
    client: TestClient[Any], content_type: str, body: bytes
) -> None:
    response = client.post(
        "/api/v1/workflows/create?x=%00",
        content=body,
        headers={"Authorization": "Bearer wfs_unknown", "Content-Type": content_type},
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_read_key_is_refused_before_its_query_is_looked_at(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    reader = services.accounts.create_key(api.project_id, "reader", "read")
    response = client.post(
        "/api/v1/workflows/create?limit=1e1&x=%00",
        content=DEEP,
        headers={"Authorization": f"Bearer {reader.secret}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 403, response.text


@pytest.mark.sqlite_only
def test_the_query_is_checked_before_the_media_type(api: Api) -> None:
    response = api.client.post(
        "/api/v1/workflows/create?x=%00",
        content=b"name=x",
        headers={**api.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["x"]


@pytest.mark.sqlite_only
def test_the_media_type_is_checked_before_the_body(api: Api) -> None:
    for body in (DEEP, b"", b"{"):
        response = api.client.post(
            "/api/v1/workflows/create", content=body, headers={**api.headers, "Content-Type": "text/plain"}
        )
        assert response.status_code == 415, response.text


@pytest.mark.sqlite_only
def test_even_options_needs_a_key(client: TestClient[Any], api: Api) -> None:
    assert client.options("/api/v1/workflows/list").status_code == 401
    assert client.options("/api/v1/workflows/list", headers=api.headers).status_code == 204


def test_only_the_api_needs_a_key(client: TestClient[Any]) -> None:
    """/health, /ready, /metrics, the OpenAPI document and the upload URLs answer without one."""
    assert client.get("/metrics").status_code == 200
    assert client.get("/schema/docs").status_code == 200
    unknown_upload = client.post("/uploads/no-such-token", content=b"\x89PNG")
    assert unknown_upload.status_code == 404
    assert "www-authenticate" not in unknown_upload.headers
