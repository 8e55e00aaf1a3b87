"""The OpenAPI document describes every route with real request and response schemas."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.client import Api

WORKFLOW_WRITES = [
    "create", "update", "rename", "versions/revert", "duplicate", "delete", "restore",
    "permanent-delete", "bulk-delete",
]  # fmt: skip
WORKFLOW_READS = ["list", "get", "versions"]


@pytest.mark.sqlite_only
def test_every_workflow_route_has_schemas(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    paths = document["paths"]
    for name in WORKFLOW_WRITES:
        operation = paths[f"/api/v1/workflows/{name}"]["post"]
        body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in body_schema, name
        success = next(code for code in operation["responses"] if code.startswith("2"))
        assert "$ref" in operation["responses"][success]["content"]["application/json"]["schema"], name
        for status in ("400", "401", "404", "409"):
            problem = operation["responses"][status]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}, (name, status)
    for name in WORKFLOW_READS:
        operation = paths[f"/api/v1/workflows/{name}"]["get"]
        assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"], name
    schemas = document["components"]["schemas"]
    assert "workflowId" in schemas["UpdateWorkflow"]["properties"]
    assert set(schemas["WorkflowDocument"]["required"]) >= {"id", "name", "version", "display"}
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert "/health" in paths
    assert "/ready" in paths


@pytest.mark.sqlite_only
def test_operation_ids_are_the_handlers_names_and_unique(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(ids) == len(set(ids))
    assert {
        "create_workflow",
        "list_workflows",
        "get_workflow",
        "start_run",
        "report_run",
        "list_events",
    } <= set(ids)
    assert all(name.isidentifier() and name == name.lower() for name in ids), ids


@pytest.mark.sqlite_only
def test_an_interactive_docs_page_is_served(client: TestClient[Any]) -> None:
    page = client.get("/schema/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "@scalar/api-reference" in page.text


def openapi(client: TestClient[Any]) -> Any:
    return client.get("/schema/openapi.json").json()


@pytest.mark.sqlite_only
def test_every_api_write_documents_its_json_body(client: TestClient[Any]) -> None:
    """Strict body decoding (a DTO) must leave each body documented as its own Struct."""
    document = openapi(client)
    writes = {
        path: item["post"]
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/") and "post" in item
    }
    assert len(writes) >= 13
    for path, operation in writes.items():
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].startswith("#/components/schemas/"), path
        assert schema["$ref"].split("/")[-1] in document["components"]["schemas"], path
    assert writes["/api/v1/runs/report"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportRun"
    }


def test_get_workflow_declares_its_etag(client: TestClient[Any], api: Api) -> None:
    created = api.create()
    answered = api.get("/workflows/get", id=created["id"])
    assert answered.headers["etag"] == f'"{created["version"]}"'
    declared = openapi(client)["paths"]["/api/v1/workflows/get"]["get"]["responses"]["200"]["headers"]
    assert declared["ETag"]["schema"] == {"type": "string"}
    assert declared["ETag"]["required"] is True
    assert "If-Match" in declared["ETag"]["description"]


@pytest.mark.sqlite_only
def test_the_upload_route_declares_a_binary_body(client: TestClient[Any]) -> None:
    operation = openapi(client)["paths"]["/uploads/{token}"]["post"]
    assert operation["operationId"] == "upload_file"
    assert "security" not in operation  # the URL is the credential
    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/octet-stream"}
    assert body["content"]["application/octet-stream"]["schema"]["format"] == "binary"


@pytest.mark.sqlite_only
def test_urls_are_declared_as_uris(client: TestClient[Any]) -> None:
    upload = openapi(client)["components"]["schemas"]["UploadUrl"]["properties"]
    assert (upload["uploadUrl"]["type"], upload["uploadUrl"]["format"]) == ("string", "uri")
    assert upload["expiresAt"]["format"] == "date-time"


@pytest.mark.sqlite_only
def test_every_operation_is_summarised_and_every_tag_described(client: TestClient[Any]) -> None:
    document = openapi(client)
    operations = [
        (path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post"}
    ]
    assert all(operation.get("summary") for _, operation in operations), [
        p for p, o in operations if not o.get("summary")
    ]
    used = {tag for _, operation in operations for tag in operation.get("tags", [])}
    described = {tag["name"]: tag.get("description") for tag in document.get("tags", [])}
    assert used <= set(described)
    assert all(described[tag] for tag in used)
    assert "Authorization: Bearer" in document["info"]["description"]
    assert document["components"]["securitySchemes"]["apiKey"]["description"]


@pytest.mark.sqlite_only
def test_problem_answers_carry_examples(client: TestClient[Any]) -> None:
    responses = openapi(client)["paths"]["/api/v1/workflows/rename"]["post"]["responses"]
    invalid = next(iter(responses["400"]["content"]["application/problem+json"]["examples"].values()))
    assert invalid["value"]["status"] == 400
    assert invalid["value"]["errors"][0]["field"]
    conflict = next(iter(responses["409"]["content"]["application/problem+json"]["examples"].values()))
    assert conflict["value"]["type"].endswith("/version-conflict")
