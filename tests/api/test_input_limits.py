"""Every bad input of spec §1 and §2 gets its 4xx problem document, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.client import Api
from tests.support.data import STEP


def assert_nothing_stored(api: Api) -> None:
    assert api.get("/workflows/list").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pipelineSteps": [STEP]}, "name"),
        ({"name": "", "pipelineSteps": [STEP]}, "name"),
        ({"name": "   ", "pipelineSteps": [STEP]}, "name"),
        ({"name": "x" * 201, "pipelineSteps": [STEP]}, "name"),
        ({"name": 5, "pipelineSteps": [STEP]}, "name"),
        ({"name": "n"}, "pipelineSteps"),
        ({"name": "n", "pipelineSteps": [], "personaPipelineSteps": []}, "pipelineSteps"),
        ({"name": "n", "pipelineSteps": [STEP], "color": "red"}, "color"),
        ({"name": "n", "pipelineSteps": [{**STEP, "colour": 1}]}, "pipelineSteps[0].colour"),
        ({"name": "n", "pipelineSteps": [{"cliId": "claude"}]}, "pipelineSteps[0].type"),
        ({"name": "n", "pipelineSteps": [{"type": ""}]}, "pipelineSteps[0].type"),
        ({"name": "n", "pipelineSteps": [{"type": "x" * 65}]}, "pipelineSteps[0].type"),
        ({"name": "n", "pipelineSteps": [{"type": "t", "cliId": 3}]}, "pipelineSteps[0].cliId"),
        ({"name": "n", "pipelineSteps": [STEP] * 101}, "pipelineSteps"),
        ({"name": "n", "personaPipelineSteps": [{"cliId": "codex"}]}, "personaPipelineSteps[0].personaId"),
        ({"name": "n", "personaPipelineSteps": [{"personaId": "p"}] * 101}, "personaPipelineSteps"),
        ({"name": "n", "pipelineSteps": [STEP], "description": "d" * 10_001}, "description"),
        ({"name": "n", "pipelineSteps": [STEP], "type": ""}, "type"),
        ({"name": "n", "pipelineSteps": [STEP], "type": "t" * 65}, "type"),
        ({"name": "n", "pipelineSteps": [STEP], "maxIterations": 0}, "maxIterations"),
        ({"name": "n", "pipelineSteps": [STEP], "maxIterations": 101}, "maxIterations"),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"timeoutMs": 999}},
            "defaultConfig.timeoutMs",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"timeoutMs": 86_400_001}},
            "defaultConfig.timeoutMs",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"memoryMb": 127}},
            "defaultConfig.memoryMb",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"memoryMb": 262_145}},
            "defaultConfig.memoryMb",
        ),
        ({"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"cpuCount": 0}}, "defaultConfig.cpuCount"),
        ({"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"gpu": 1}}, "defaultConfig.gpu"),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultCheckerInstructions": "i" * 100_001},
            "defaultCheckerInstructions",
        ),
        (
            {"name": "n", "pipelineSteps": [{**STEP, "instructions": "i" * 100_001}]},
            "pipelineSteps[0].instructions",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": [], "edges": [], "zoom": 1}},
            "workflowGraph.zoom",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": [{"id": "a"}, {"id": "a"}]}},
            "workflowGraph.nodes[1].id",
        ),
        (
            {
                "name": "n",
                "pipelineSteps": [STEP],
                "workflowGraph": {
                    "nodes": [{"id": "a"}],
                    "edges": [{"id": "e", "source": "a", "target": "z"}],
                },
            },
            "workflowGraph.edges[0].target",
        ),
        (
            {
                "name": "n",
                "pipelineSteps": [STEP],
                "workflowGraph": {"nodes": [{"id": str(i)} for i in range(5001)]},
            },
            "workflowGraph.nodes",
        ),
    ],
)
@pytest.mark.sqlite_only
def test_invalid_creates_name_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/workflows/create", body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "Traceback" not in response.text
    assert_nothing_stored(api)


def test_the_graph_limits_are_5000_nodes_and_20000_edges(api: Api) -> None:
    nodes = [{"id": str(i)} for i in range(5000)]
    edges = [{"id": f"e{i}", "source": "0", "target": str(i % 5000)} for i in range(20_000)]
    created = api.post(
        "/workflows/create",
        {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": nodes, "edges": edges}},
    )
    assert created.status_code == 201
    too_many = api.post(
        "/workflows/create",
        {
            "name": "n",
            "pipelineSteps": [STEP],
            "workflowGraph": {"nodes": nodes, "edges": [*edges, edges[0]]},
        },
    )
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["field"] == "workflowGraph.edges"


@pytest.mark.sqlite_only
def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/api/v1/workflows/create",
        content=b'{"name": ',
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api)


@pytest.mark.sqlite_only
def test_a_body_that_is_not_an_object_is_400(api: Api) -> None:
    response = api.post("/workflows/create", [1, 2])
    assert response.status_code == 400
    assert_nothing_stored(api)


@pytest.mark.sqlite_only
def test_a_body_that_is_not_json_is_415(api: Api) -> None:
    response = api.client.post(
        "/api/v1/workflows/create",
        content=b"name=x",
        headers={**api.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api)


@pytest.mark.sqlite_only
def test_a_body_over_2_mib_is_413(api: Api) -> None:
    body = json.dumps({"name": "n", "pipelineSteps": [STEP], "description": "d" * (2 * 1024 * 1024)})
    response = api.client.post(
        "/api/v1/workflows/create",
        content=body.encode(),
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api)


@pytest.mark.sqlite_only
def test_unknown_routes_answer_problem_documents(api: Api) -> None:
    response = api.get("/workflows/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    wrong_method = api.get("/workflows/create")
    assert wrong_method.status_code == 405


@pytest.mark.sqlite_only
def test_an_empty_body_is_400_with_a_plain_message(api: Api) -> None:
    response = api.client.post(
        "/api/v1/workflows/create", content=b"", headers={**api.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "body", "message": "a JSON body is required"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "pipelineSteps": [STEP], "maxIterations": "3"}, "maxIterations"),
        (
            {"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"cpuCount": "4"}},
            "defaultConfig.cpuCount",
        ),
        ({"name": "n", "pipelineSteps": [STEP], "maxIterations": 2.5}, "maxIterations"),
        ({"name": "n", "pipelineSteps": [STEP], "maxIterations": True}, "maxIterations"),
    ],
)
@pytest.mark.sqlite_only
def test_values_of_the_wrong_json_type_are_not_coerced(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/workflows/create", body)
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert_nothing_stored(api)


COST = {"model": "m", "cliId": "c", "costUsd": 1}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/workflows/rename", {"name": "n", "expectedVersion": "1"}, "expectedVersion"),
        ("/workflows/delete", {"expectedVersion": 1.0}, "expectedVersion"),
        ("/workflows/update", {"maxIterations": "3"}, "maxIterations"),
        ("/workflows/duplicate", {"name": 7}, "name"),
        ("/workflows/bulk-delete", {"workflowIds": "abc"}, "workflowIds"),
        ("/runs/start", {"prompt": "p", "referenceImageIds": [1]}, "referenceImageIds[0]"),
        (
            "/runs/report",
            {"status": "running", "costBreakdown": [{**COST, "costUsd": "1.5"}]},
            "costBreakdown[0].costUsd",
        ),
        (
            "/runs/report",
            {"status": "running", "costBreakdown": [{**COST, "inputTokens": "10"}]},
            "costBreakdown[0].inputTokens",
        ),
        ("/runs/cancel", {"runId": 12}, "runId"),
        ("/files/upload-url", {"contentType": True}, "contentType"),
    ],
)
def test_no_write_coerces_a_value_of_the_wrong_json_type(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    workflow = api.create()
    run = api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "p"}).json()
    named = {"workflowId": workflow["id"]}
    ids = {
        "/workflows/bulk-delete": {},
        "/workflows": named,
        "/runs/start": named,
        "/runs": {"runId": run["id"]},
    }
    prefix = next((key for key in ids if path.startswith(key)), "")
    response = api.post(path, {**ids.get(prefix, {}), **body})
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert api.get("/workflows/get", id=workflow["id"]).json()["version"] == workflow["version"]
    assert api.get("/runs/get", id=run["id"]).json() == run


# One problem document per kind of error, through the app's one table.

PROBLEMS = "https://workflow-service.dev/problems/"


def assert_problem_of_kind(response: Any, status: int, slug: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == (PROBLEMS + slug, title, status)
    assert problem["detail"]
    return problem


def test_each_kind_of_error_has_its_own_problem_document(api: Api) -> None:
    workflow = api.create()
    rename = {"workflowId": workflow["id"], "name": "n"}
    invalid = assert_problem_of_kind(
        api.post("/workflows/create", {"name": "   ", "pipelineSteps": [STEP]}),
        400,
        "invalid-input",
        "Invalid input",
    )
    assert [error["field"] for error in invalid["errors"]] == ["name"]  # the domain's InvalidInput
    assert_problem_of_kind(api.get("/workflows/get", id="nope"), 404, "not-found", "Not found")
    assert_problem_of_kind(
        api.post("/workflows/rename", {**rename, "expectedVersion": 9}), 409, "version-conflict", "Conflict"
    )
    assert_problem_of_kind(
        api.post("/workflows/restore", {"workflowId": workflow["id"]}), 409, "conflict", "Conflict"
    )
    unauthorized = assert_problem_of_kind(
        api.client.get("/api/v1/workflows/list"), 401, "unauthorized", "Missing or invalid API key"
    )
    assert "errors" not in unauthorized
    not_allowed = api.client.put("/api/v1/workflows/list", headers=api.headers)
    assert_problem_of_kind(not_allowed, 405, "method-not-allowed", "Method not allowed")
    assert "GET" in not_allowed.headers["allow"]
    assert_problem_of_kind(
        api.client.post("/api/v1/workflows/rename", content=b"x", headers=api.headers),
        415,
        "unsupported-media-type",
        "Unsupported media type",
    )
