"""Whatever a client sends, the edge answers 4xx and stores nothing it cannot hold (spec §1, §5).

U+0000 anywhere, ids of the wrong kind, deep or bloated JSON, numbers in other scripts or out of
range: each is a 400 or a 404 naming the field, never a 500, on both stores; and the service keeps
answering afterwards.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from api.json_limits import MAX_CONTAINERS, MAX_DEPTH, MAX_MEMBERS, structure_outside_strings
from composition.services import Services
from tests.support.client import Api
from tests.support.data import STEP

NUL = "\u0000"


@pytest.fixture
def workflow(api: Api) -> dict[str, Any]:
    return api.create()


@pytest.fixture
def run(api: Api, workflow: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "Fix the flaky test"})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


def head(services: Services) -> int:
    return services.workflows.recorder.max_notification_id() or 0


def raw_post(api: Api, path: str, body: bytes) -> Any:
    return api.client.post(
        f"/api/v1{path}", content=body, headers={**api.headers, "Content-Type": "application/json"}
    )


def assert_problem(response: Any, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert [error["field"] for error in response.json()["errors"]] == [field]


def assert_still_serving(api: Api, workflow_id: str) -> None:
    """A write after the refused one is stored and read back (a poisoned read model would 500 here)."""
    renamed = api.post("/workflows/rename", {"workflowId": workflow_id, "name": "Still serving"})
    assert renamed.status_code == 200, renamed.text
    assert api.get("/workflows/get", id=workflow_id).json()["name"] == "Still serving"


def link_report(kind: str, key: str) -> dict[str, Any]:
    entry = {"id": "p1", "name": "Persona"}
    entry[key] = f"bad{NUL}value"
    return {"status": "running", "links": {kind: [entry]}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (link_report("personas", "id"), "links.personas[0].id"),
        (link_report("personas", "name"), "links.personas[0].name"),
        (link_report("issues", "name"), "links.issues[0].name"),
        (link_report("learningVersions", "id"), "links.learningVersions[0].id"),
        (
            {"status": "running", "costBreakdown": [{"model": f"m{NUL}", "cliId": "c", "costUsd": 1}]},
            "costBreakdown[0].model",
        ),
        ({"status": "failed", "error": f"boom{NUL}"}, "error"),
        ({"status": "running", "branchName": f"fix{NUL}"}, "branchName"),
    ],
)
@pytest.mark.sqlite_only
def test_a_nul_in_a_run_report_is_400_and_stores_nothing(
    api: Api,
    services: Services,
    workflow: dict[str, Any],
    run: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    before = head(services)
    response = api.post("/runs/report", {"runId": run["id"], **body})
    assert_problem(response, 400, field)
    assert "U+0000" in response.json()["errors"][0]["message"]
    assert head(services) == before
    assert api.get("/runs/get", id=run["id"]).json() == run
    assert_still_serving(api, workflow["id"])
    assert api.post("/runs/report", {"runId": run["id"], "status": "running"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": f"a{NUL}b", "pipelineSteps": [STEP]}, "name"),
        ({"name": "n", "description": NUL, "pipelineSteps": [STEP]}, "description"),
        ({"name": "n", "pipelineSteps": [STEP, {"type": "t", "cliId": f"c{NUL}"}]}, "pipelineSteps[1].cliId"),
        (
            {"name": "n", "personaPipelineSteps": [{"personaId": f"p{NUL}"}]},
            "personaPipelineSteps[0].personaId",
        ),
        ({"name": "n", "pipelineSteps": [STEP], "defaultConfig": {"model": NUL}}, "defaultConfig.model"),
        (
            {
                "name": "n",
                "pipelineSteps": [STEP],
                "workflowGraph": {"nodes": [{"id": "a", "data": {"label": ["x", f"y{NUL}"]}}]},
            },
            "workflowGraph.nodes[0].data.label[1]",
        ),
        (
            {
                "name": "n",
                "pipelineSteps": [STEP],
                "workflowGraph": {"nodes": [{"id": "a", "data": {NUL: 1}}]},
            },
            "workflowGraph.nodes[0].data",
        ),
        (
            {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": [{"id": f"a{NUL}"}]}},
            "workflowGraph.nodes[0].id",
        ),
    ],
)
@pytest.mark.sqlite_only
def test_a_nul_in_a_workflow_body_is_400_naming_the_field(
    api: Api, services: Services, body: dict[str, Any], field: str
) -> None:
    before = head(services)
    assert_problem(api.post("/workflows/create", body), 400, field)
    assert head(services) == before
    assert api.get("/workflows/list").json()["items"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/workflows/update", {"description": f"x{NUL}"}, "description"),
        ("/workflows/rename", {"name": f"x{NUL}"}, "name"),
        ("/workflows/duplicate", {"name": f"x{NUL}"}, "name"),
        ("/workflows/versions/revert", {"versionId": f"x{NUL}"}, "versionId"),
        ("/runs/start", {"prompt": f"x{NUL}"}, "prompt"),
        ("/runs/start", {"prompt": "p", "referenceImageIds": [NUL]}, "referenceImageIds[0]"),
    ],
)
@pytest.mark.sqlite_only
def test_a_nul_in_any_write_is_400(
    api: Api, services: Services, workflow: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    before = head(services)
    assert_problem(api.post(path, {"workflowId": workflow["id"], **body}), 400, field)
    assert head(services) == before
    assert_still_serving(api, workflow["id"])


@pytest.mark.sqlite_only
@pytest.mark.parametrize("path", ["/workflows/delete", "/runs/cancel", "/files/upload-url"])
def test_a_nul_in_an_id_or_value_of_any_route_is_400(api: Api, path: str) -> None:
    body = {"/workflows/delete": {"workflowId": NUL}, "/runs/cancel": {"runId": NUL}}.get(
        path, {"contentType": f"image/png{NUL}"}
    )
    field = next(iter(body))
    assert_problem(api.post(path, body), 400, field)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/workflows/get", {"id": f"a{NUL}b"}, "id"),
        ("/workflows/versions", {"id": NUL}, "id"),
        ("/workflows/runs", {"id": NUL}, "id"),
        ("/workflows/analytics", {"id": NUL}, "id"),
        ("/workflows/related", {"id": NUL}, "id"),
        ("/runs/get", {"id": NUL}, "id"),
        ("/workflows/list", {"cursor": NUL}, "cursor"),
        ("/workflows/analytics", {"granularity": f"daily{NUL}"}, "granularity"),
    ],
)
@pytest.mark.sqlite_only
def test_a_nul_in_a_query_parameter_is_400(
    api: Api, workflow: dict[str, Any], path: str, params: dict[str, str], field: str
) -> None:
    assert_problem(api.get(path, **{"id": workflow["id"], **params}), 400, field)


def test_an_escaped_backslash_before_u0000_is_not_a_nul(api: Api) -> None:
    created = api.create(description="C:\\u0000")
    assert created["description"] == "C:\\u0000"


# Ids of the wrong kind: a run id where a workflow id belongs, and the reverse.


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/workflows/update", {"description": "x"}),
        ("/workflows/rename", {"name": "x"}),
        ("/workflows/delete", {}),
        ("/workflows/restore", {}),
        ("/workflows/duplicate", {}),
        ("/workflows/permanent-delete", {}),
        ("/runs/start", {"prompt": "p"}),
    ],
)
def test_a_run_id_where_a_workflow_id_belongs_is_404(
    api: Api, services: Services, run: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    before = head(services)
    assert_problem(api.post(path, {"workflowId": run["id"], **body}), 404)
    assert head(services) == before
    assert api.get("/runs/get", id=run["id"]).json() == run


def test_a_run_id_in_a_revert_is_404(api: Api, run: dict[str, Any]) -> None:
    body = {"workflowId": run["id"], "versionId": f"{run['id']}.v1"}
    assert_problem(api.post("/workflows/versions/revert", body), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/workflows/get",
        "/workflows/versions",
        "/workflows/runs",
        "/workflows/analytics",
        "/workflows/related",
    ],
)
def test_reading_a_run_id_as_a_workflow_is_404(api: Api, run: dict[str, Any], path: str) -> None:
    assert_problem(api.get(path, id=run["id"]), 404)


@pytest.mark.parametrize(
    ("path", "body"),
    [("/runs/report", {"status": "running"}), ("/runs/cancel", {})],
)
def test_a_workflow_id_where_a_run_id_belongs_is_404(
    api: Api, services: Services, workflow: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    before = head(services)
    assert_problem(api.post(path, {"runId": workflow["id"], **body}), 404)
    assert head(services) == before
    assert_problem(api.get("/runs/get", id=workflow["id"]), 404)


@pytest.mark.parametrize(
    "spelling", [str.upper, lambda i: "{" + i + "}", lambda i: "urn:uuid:" + i, lambda i: i.replace("-", "")]
)
def test_only_the_ids_own_spelling_names_it(api: Api, workflow: dict[str, Any], spelling: Any) -> None:
    other = spelling(workflow["id"])
    assert_problem(api.get("/workflows/get", id=other), 404)
    assert_problem(api.post("/workflows/rename", {"workflowId": other, "name": "x"}), 404)
    assert_problem(api.post("/runs/start", {"workflowId": other, "prompt": "p"}), 404)


# Bulk delete: every id is checked before anything changes.


def test_bulk_delete_with_a_run_id_deletes_the_rest_and_reports_not_found(
    api: Api, workflow: dict[str, Any], run: dict[str, Any]
) -> None:
    response = api.post("/workflows/bulk-delete", {"workflowIds": [workflow["id"], run["id"]]})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"workflowId": workflow["id"], "status": "deleted"},
        {"workflowId": run["id"], "status": "not_found"},
    ]
    assert api.get("/workflows/get", id=workflow["id"]).json()["deletedAt"] is not None


@pytest.mark.sqlite_only
@pytest.mark.parametrize("bad", [f"x{NUL}", "x" * 201, 7, None])
def test_bulk_delete_with_a_malformed_id_changes_nothing(
    api: Api, services: Services, workflow: dict[str, Any], bad: Any
) -> None:
    before = head(services)
    assert_problem(
        api.post("/workflows/bulk-delete", {"workflowIds": [workflow["id"], bad]}), 400, "workflowIds[1]"
    )
    assert head(services) == before
    assert api.get("/workflows/get", id=workflow["id"]).json()["deletedAt"] is None


# Nesting and size, bounded on the raw bytes before decoding.


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def graph_body(data: Any) -> dict[str, Any]:
    """A create body whose node `data` sits at depth 5: body, workflowGraph, nodes, node, data."""
    return {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": [{"id": "a", "data": data}]}}


def test_graph_data_may_nest_up_to_64_levels_in_all(api: Api) -> None:
    created = api.post("/workflows/create", graph_body(nested(MAX_DEPTH - 4)))
    assert created.status_code == 201, created.text
    assert created.json()["workflowGraph"]["nodes"][0]["data"] == nested(MAX_DEPTH - 4)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("depth", [MAX_DEPTH - 3, 1_000, 100_000])
def test_json_nested_deeper_than_64_is_400(api: Api, services: Services, depth: int) -> None:
    before = head(services)
    body = json.dumps(graph_body(None)).replace("null", "[" * depth + "]" * depth)
    assert_problem(raw_post(api, "/workflows/create", body.encode()), 400, "body")
    assert head(services) == before


@pytest.mark.sqlite_only
@pytest.mark.parametrize("path", ["/workflows/update", "/runs/report", "/workflows/bulk-delete"])
def test_a_whole_body_nested_1000_deep_is_400_on_every_write(api: Api, path: str) -> None:
    body = "[" * 1_000 + "]" * 1_000
    assert_problem(raw_post(api, path, body.encode()), 400, "body")


def test_brackets_and_quotes_inside_strings_do_not_count_as_nesting(api: Api) -> None:
    text = '\\"' + "[{" * 2_000
    created = api.create(description=text, workflowGraph={"nodes": [{"id": "[" * 100, "data": {"]": "}"}}]})
    assert created["description"] == text


@pytest.mark.sqlite_only
def test_a_body_of_many_tiny_arrays_is_400(api: Api, services: Services) -> None:
    before = head(services)
    body = json.dumps(graph_body([[]] * MAX_CONTAINERS), separators=(",", ":"))
    assert len(body) < 2 * 1024 * 1024
    assert_problem(raw_post(api, "/workflows/create", body.encode()), 400, "body")
    assert head(services) == before


@pytest.mark.sqlite_only
def test_a_body_of_too_many_values_is_400(api: Api) -> None:
    body = json.dumps(graph_body([0] * MAX_MEMBERS), separators=(",", ":"))
    assert len(body) < 2 * 1024 * 1024
    assert_problem(raw_post(api, "/workflows/create", body.encode()), 400, "body")


def test_the_largest_legitimate_graph_fits_the_bounds(api: Api) -> None:
    nodes = [
        {"id": f"n{i}", "type": "step", "position": {"x": i * 10, "y": i % 9}, "data": {"label": f"S{i}"}}
        for i in range(5_000)
    ]
    edges = [
        {"id": f"e{i}", "source": f"n{i % 5_000}", "target": f"n{(i * 7) % 5_000}"} for i in range(20_000)
    ]
    body = json.dumps(
        {"name": "n", "pipelineSteps": [STEP], "workflowGraph": {"nodes": nodes, "edges": edges}},
        separators=(",", ":"),
    )
    assert len(body) < 2 * 1024 * 1024
    response = raw_post(api, "/workflows/create", body.encode())
    assert response.status_code == 201, response.text[:300]
    assert len(response.json()["workflowGraph"]["edges"]) == 20_000


def test_the_byte_scan_finds_exactly_the_structure_outside_strings() -> None:
    """Against the plain definition (a regex that strips strings), on documents full of escapes."""
    strings = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
    others = bytes(byte for byte in range(256) if byte not in b"[]{},:")
    alphabet = ['"', "\\", "[", "]", "{", "}", ",", ":", "a", " ", NUL, "\u00e9", "\n"]
    rng = random.Random(6)

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth > 5 or roll < 0.3:
            return rng.choice([text(), 1, 2.5, None, True])
        if roll < 0.65:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}

    for _ in range(3_000):
        body = json.dumps(value(), ensure_ascii=rng.random() < 0.5).encode()
        assert structure_outside_strings(body) == strings.sub(b"", body).translate(None, others), body


# Numbers: ASCII digits only, and bounded before they reach SQL.


@pytest.mark.parametrize(
    "suffix", ["\u00b2", "\u0661", "1\u00b2", "01", "0", "99999999999", "1.0", "-1", " 1", ""]
)
@pytest.mark.sqlite_only
def test_a_version_id_that_cannot_exist_is_404(api: Api, workflow: dict[str, Any], suffix: str) -> None:
    body = {"workflowId": workflow["id"], "versionId": f"{workflow['id']}.v{suffix}"}
    assert_problem(api.post("/workflows/versions/revert", body), 404)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("tag", ['"\u00b2"', '"\u0661"', f'"{2**63}"', '"0"', '"1.0"', '"-1"', '""'])
def test_an_if_match_that_is_no_etag_is_400(api: Api, workflow: dict[str, Any], tag: str) -> None:
    response = api.client.post(
        "/api/v1/workflows/rename",
        json={"workflowId": workflow["id"], "name": "x"},
        headers=[(b"Authorization", api.headers["Authorization"].encode()), (b"If-Match", tag.encode())],
    )
    assert_problem(response, 400, "If-Match")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/workflows/get", {"version": str(2**63)}, "version"),
        ("/workflows/get", {"version": str(2**31)}, "version"),
        ("/workflows/get", {"version": "1" * 5_000}, "version"),
        ("/workflows/get", {"version": "1.0"}, "version"),
        ("/workflows/get", {"version": "\u0661"}, "version"),
        ("/workflows/get", {"version": "\u00b2"}, "version"),
        ("/workflows/get", {"version": ""}, "version"),
        ("/workflows/list", {"limit": "1e1"}, "limit"),
        ("/workflows/list", {"limit": "5.0"}, "limit"),
        ("/workflows/list", {"limit": "+5"}, "limit"),
        ("/workflows/list", {"limit": str(2**70)}, "limit"),
        ("/workflows/runs", {"limit": "\u0665"}, "limit"),
        ("/workflows/analytics", {"days": "3e1"}, "days"),
        ("/workflows/analytics", {"days": str(2**63)}, "days"),
    ],
)
@pytest.mark.sqlite_only
def test_odd_integers_in_a_query_are_400(
    api: Api, workflow: dict[str, Any], path: str, params: dict[str, str], field: str
) -> None:
    assert_problem(api.get(path, **{"id": workflow["id"], **params}), 400, field)


def test_the_highest_version_is_404_not_an_error(api: Api, workflow: dict[str, Any]) -> None:
    assert_problem(api.get("/workflows/get", id=workflow["id"], version=str(2**31 - 1)), 404)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/workflows/rename", {"name": "x", "expectedVersion": 2**63}, "expectedVersion"),
        ("/workflows/update", {"description": "x", "expectedVersion": 2**31}, "expectedVersion"),
        ("/workflows/delete", {"expectedVersion": 1.5}, "expectedVersion"),
        ("/workflows/update", {"maxIterations": 2**64}, "maxIterations"),
        ("/workflows/update", {"defaultConfig": {"cpuCount": 4.0}}, "defaultConfig.cpuCount"),
    ],
)
@pytest.mark.sqlite_only
def test_odd_integers_in_a_workflow_body_are_400(
    api: Api, workflow: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    assert_problem(api.post(path, {"workflowId": workflow["id"], **body}), 400, field)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("tokens", [2**53, 2**64, -1, 1.5])
def test_token_counts_are_bounded(api: Api, run: dict[str, Any], tokens: Any) -> None:
    line = {"model": "m", "cliId": "c", "costUsd": 1, "inputTokens": tokens}
    response = api.post("/runs/report", {"runId": run["id"], "status": "running", "costBreakdown": [line]})
    assert_problem(response, 400, "costBreakdown[0].inputTokens")


@pytest.mark.sqlite_only
def test_huge_numbers_in_graph_data_are_400_not_500(api: Api) -> None:
    for number in (b"1" * 5_000, b"1e999"):
        body = json.dumps(graph_body(None)).encode().replace(b"null", number)
        assert_problem(raw_post(api, "/workflows/create", body), 400)


# Other odd input.


@pytest.mark.parametrize(
    "path", ["/workflows/get", "/workflows/versions", "/workflows/analytics", "/runs/get"]
)
@pytest.mark.sqlite_only
def test_an_absurdly_long_id_in_a_query_is_400(api: Api, path: str) -> None:
    assert_problem(api.get(path, id="x" * 201), 400, "id")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/workflows/rename", {"workflowId": "x" * 201, "name": "x"}, "workflowId"),
        ("/runs/report", {"runId": "x" * 10_000, "status": "running"}, "runId"),
        ("/workflows/rename", {"workflowId": 5, "name": "x"}, "workflowId"),
        ("/workflows/rename", {"workflowId": ["a"], "name": "x"}, "workflowId"),
        ("/runs/cancel", {"runId": {"id": "a"}}, "runId"),
        ("/runs/report", {"runId": "r", "status": "running", "links": []}, "links"),
        ("/runs/report", {"runId": "r", "status": "running", "links": {"personas": {}}}, "links.personas"),
        ("/workflows/update", {"workflowId": "w", "workflowGraph": []}, "workflowGraph"),
        (
            "/workflows/update",
            {"workflowId": "w", "workflowGraph": {"nodes": [[]]}},
            "workflowGraph.nodes[0]",
        ),
    ],
)
@pytest.mark.sqlite_only
def test_ids_and_objects_of_the_wrong_shape_are_400(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    assert_problem(api.post(path, body), 400, field)


@pytest.mark.parametrize("workflow_id", ["", " ", "x" * 200, "..", "%00", "\u00e9\U0001f600"])
def test_an_id_that_cannot_exist_is_404(api: Api, workflow_id: str) -> None:
    assert_problem(api.get("/workflows/get", id=workflow_id), 404)
    assert_problem(api.post("/workflows/delete", {"workflowId": workflow_id}), 404)
    assert_problem(api.post("/runs/cancel", {"runId": workflow_id}), 404)


@pytest.mark.parametrize("query", ["id=%ED%A0%80", "id=%FF%FE", "id=%F0%9F", "id=%C0%80"])
def test_malformed_utf8_in_a_query_is_not_a_server_error(api: Api, query: str) -> None:
    response = api.client.get(f"/api/v1/workflows/get?{query}", headers=api.headers)
    assert response.status_code in (400, 404), response.text


@pytest.mark.parametrize(
    "body", [b"null", b"[]", b'"text"', b"7", b"\xef\xbb\xbf{}", b"{} {}", b'{"name": "\\ud800"}', b"\xff"]
)
@pytest.mark.sqlite_only
def test_bodies_that_are_no_object_are_400(api: Api, services: Services, body: bytes) -> None:
    before = head(services)
    assert_problem(raw_post(api, "/workflows/create", body), 400)
    assert head(services) == before
