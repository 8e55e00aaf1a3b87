"""The OpenAPI document describes every route with real request and response schemas."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

WORKFLOW_WRITES = [
    "create", "update", "rename", "versions/revert", "duplicate", "delete", "restore",
    "permanent-delete", "bulk-delete",
]  # fmt: skip
WORKFLOW_READS = ["list", "get", "versions"]


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


def test_an_interactive_docs_page_is_served(client: TestClient[Any]) -> None:
    page = client.get("/schema/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "@scalar/api-reference" in page.text
