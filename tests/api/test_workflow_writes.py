"""Workflow writes over HTTP: create, update, rename, revert, duplicate, delete, restore, erase."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Api

STEP = {"type": "designer", "cliId": "claude", "model": "claude-opus-4-7"}


def versions(api: Api, workflow_id: str) -> dict[str, Any]:
    response = api.get("/workflows/versions", id=workflow_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_answers_the_full_document_with_defaults(api: Api) -> None:
    response = api.post(
        "/workflows/create",
        {
            "name": "  Release hardening ",
            "pipelineSteps": [STEP],
            "personaPipelineSteps": [{"personaId": "p1", "cliId": "codex", "model": "gpt-5"}],
            "defaultConfig": {"cliId": "gemini", "timeoutMs": 3_600_000, "memoryMb": 4096, "cpuCount": 4},
        },
    )
    assert response.status_code == 201
    document = response.json()
    assert document["name"] == "Release hardening"
    assert document["type"] == "standard"
    assert document["version"] == 1
    assert document["description"] is None
    assert document["maxIterations"] is None
    assert document["workflowGraph"] is None
    assert document["deletedAt"] is None
    assert document["pipelineSteps"] == [{**STEP, "instructions": None, "id": None}]
    assert document["defaultConfig"] == {
        "templateId": None,
        "cliId": "gemini",
        "model": None,
        "timeoutMs": 3_600_000,
        "memoryMb": 4096,
        "cpuCount": 4,
    }
    assert document["display"] == {
        "cliTools": ["claude", "codex", "gemini"],
        "cliToolLabels": ["Claude Code", "Codex CLI", "Gemini CLI"],
    }
    assert document["createdAt"].endswith("Z")
    assert len(document["createdAt"]) == len("2026-11-28T09:15:02.123Z")
    assert api.get("/workflows/get", id=document["id"]).json() == document


GRAPH = {
    "nodes": [
        {"id": "n1", "type": "step", "position": {"x": 0, "y": 0}, "data": {"label": "A"}},
        {"id": "n2", "type": "step", "position": {"x": 240, "y": 0}, "data": {}, "custom": [1, 2]},
    ],
    "edges": [{"id": "e1", "source": "n1", "target": "n2", "animated": True, "style": {"w": 2}}],
}
"""A builder's graph whose nodes and edges carry fields of the builder's own, beyond the required ids."""


def test_builder_graph_fields_are_kept_exactly_as_sent(api: Api) -> None:
    document = api.create(workflowGraph=GRAPH)
    assert document["workflowGraph"] == GRAPH
    assert api.get("/workflows/get", id=document["id"]).json()["workflowGraph"] == GRAPH


def test_builder_graph_fields_survive_every_write_and_read(api: Api) -> None:
    created = api.create()
    updated = api.post("/workflows/update", {"workflowId": created["id"], "workflowGraph": GRAPH}).json()
    assert updated["workflowGraph"] == GRAPH
    renamed = api.post("/workflows/rename", {"workflowId": created["id"], "name": "Later"}).json()
    assert renamed["workflowGraph"] == GRAPH
    copy = api.post("/workflows/duplicate", {"workflowId": created["id"]}).json()
    assert copy["workflowGraph"] == GRAPH
    assert api.get("/workflows/get", id=created["id"], version=2).json()["workflowGraph"] == GRAPH
    api.post("/workflows/versions/revert", {"workflowId": created["id"], "versionId": f"{created['id']}.v1"})
    reverted = api.post(
        "/workflows/versions/revert", {"workflowId": created["id"], "versionId": f"{created['id']}.v2"}
    )
    assert reverted.json()["workflowGraph"] == GRAPH


@pytest.mark.parametrize(
    ("graph", "field"),
    [
        ({"nodes": [{"type": "step", "data": {}}]}, "workflowGraph.nodes[0].id"),
        ({"nodes": [{"id": None}]}, "workflowGraph.nodes[0].id"),
        ({"nodes": [{"id": 7}]}, "workflowGraph.nodes[0].id"),
        ({"nodes": [{"id": ""}]}, "workflowGraph.nodes[0].id"),
        ({"nodes": [{"id": "a"}], "edges": [{"source": "a", "target": "a"}]}, "workflowGraph.edges[0].id"),
        ({"nodes": [{"id": "a"}], "edges": [{"id": "e", "target": "a"}]}, "workflowGraph.edges[0].source"),
        ({"nodes": [{"id": "a"}], "edges": [{"id": "e", "source": "a"}]}, "workflowGraph.edges[0].target"),
    ],
)
def test_a_node_or_edge_without_its_ids_is_refused(api: Api, graph: dict[str, Any], field: str) -> None:
    refused = api.post("/workflows/create", {"name": "n", "pipelineSteps": [STEP], "workflowGraph": graph})
    assert refused.status_code == 400, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    created = api.create()
    response = api.post("/workflows/update", {"workflowId": created["id"], "workflowGraph": graph})
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert api.get("/workflows/get", id=created["id"]).json() == created
    assert [item["id"] for item in api.get("/workflows/list").json()["items"]] == [created["id"]]


def test_update_changes_fields_and_records_a_version(api: Api) -> None:
    created = api.create()
    response = api.post(
        "/workflows/update",
        {
            "workflowId": created["id"],
            "description": "Ship safely",
            "maxIterations": 3,
            "pipelineSteps": [STEP, {"type": "checker", "cliId": "claude", "model": "claude-sonnet-4-6"}],
            "workflowGraph": {"nodes": [], "edges": []},
        },
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["version"] == 2
    assert document["description"] == "Ship safely"
    assert len(document["pipelineSteps"]) == 2
    assert document["updatedAt"] >= created["updatedAt"]
    history = versions(api, created["id"])
    assert history["currentVersion"] == 2
    newest = history["versions"][0]
    assert newest["source"] == "update"
    assert newest["changedFields"] == ["description", "maxIterations", "pipelineSteps", "workflowGraph"]
    assert newest["actor"]["keyName"] == "tests key"


def test_an_update_that_changes_nothing_records_nothing(api: Api) -> None:
    created = api.create(description="same")
    response = api.post("/workflows/update", {"workflowId": created["id"], "description": "same"})
    assert response.status_code == 200
    assert response.json() == created
    assert versions(api, created["id"])["currentVersion"] == 1


def test_update_can_clear_an_optional_field_with_null(api: Api) -> None:
    created = api.create(description="to clear")
    response = api.post("/workflows/update", {"workflowId": created["id"], "description": None})
    assert response.json()["description"] is None


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"type": None}, "type"),
        ({"pipelineSteps": []}, "pipelineSteps"),
        ({"pipelineSteps": None}, "pipelineSteps"),
        ({"unknown": 1}, "unknown"),
        ({"defaultConfig": {"cpuCount": 65}}, "defaultConfig.cpuCount"),
        ({"expectedVersion": 0}, "expectedVersion"),
    ],
)
def test_invalid_updates_are_refused_and_store_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    created = api.create()
    response = api.post("/workflows/update", {"workflowId": created["id"], **body})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert api.get("/workflows/get", id=created["id"]).json() == created


def test_expected_version_mismatch_is_409_and_stores_nothing(api: Api) -> None:
    created = api.create()
    api.post("/workflows/rename", {"workflowId": created["id"], "name": "Second"})
    response = api.post(
        "/workflows/update", {"workflowId": created["id"], "description": "x", "expectedVersion": 1}
    )
    assert response.status_code == 409
    assert response.json()["status"] == 409
    current = api.get("/workflows/get", id=created["id"]).json()
    assert current["description"] is None
    assert current["version"] == 2
    ok = api.post(
        "/workflows/update", {"workflowId": created["id"], "description": "x", "expectedVersion": 2}
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == 3


def test_if_match_carries_the_etag_from_get(api: Api) -> None:
    created = api.create()
    etag = api.get("/workflows/get", id=created["id"]).headers["etag"]
    assert etag == '"1"'
    first = api.post("/workflows/rename", {"workflowId": created["id"], "name": "A"}, {"If-Match": etag})
    assert first.status_code == 200
    stale = api.post("/workflows/rename", {"workflowId": created["id"], "name": "B"}, {"If-Match": etag})
    assert stale.status_code == 409
    bad = api.post("/workflows/rename", {"workflowId": created["id"], "name": "B"}, {"If-Match": "abc"})
    assert bad.status_code == 400
    assert api.get("/workflows/get", id=created["id"]).json()["name"] == "A"


def test_rename_is_a_new_version(api: Api) -> None:
    created = api.create()
    response = api.post("/workflows/rename", {"workflowId": created["id"], "name": "  New name "})
    assert response.status_code == 200
    assert response.json()["name"] == "New name"
    entry = versions(api, created["id"])["versions"][0]
    assert (entry["source"], entry["changedFields"], entry["name"]) == ("rename", ["name"], "New name")


def test_revert_restores_old_content_as_a_new_version(api: Api) -> None:
    created = api.create(description="v1")
    api.post("/workflows/update", {"workflowId": created["id"], "description": "v2", "maxIterations": 5})
    api.post("/workflows/rename", {"workflowId": created["id"], "name": "v3 name"})
    v1 = versions(api, created["id"])["versions"][-1]
    response = api.post(
        "/workflows/versions/revert", {"workflowId": created["id"], "versionId": v1["versionId"]}
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["version"] == 4
    assert (document["name"], document["description"], document["maxIterations"]) == (
        created["name"],
        "v1",
        None,
    )
    entry = versions(api, created["id"])["versions"][0]
    assert entry["source"] == "revert"
    assert entry["revertedFromVersion"] == 1
    assert entry["changedFields"] == ["name", "description", "maxIterations"]


def test_revert_to_an_unknown_version_is_404(api: Api) -> None:
    created = api.create()
    for version_id in (f"{created['id']}.v9", "nonsense", f"{api.create()['id']}.v1"):
        response = api.post(
            "/workflows/versions/revert", {"workflowId": created["id"], "versionId": version_id}
        )
        assert response.status_code == 404, version_id
    assert versions(api, created["id"])["currentVersion"] == 1


def test_reading_an_old_version(api: Api) -> None:
    created = api.create(description="first")
    api.post("/workflows/update", {"workflowId": created["id"], "description": "second"})
    old = api.get("/workflows/get", id=created["id"], version=1)
    assert old.status_code == 200
    assert old.json()["description"] == "first"
    assert old.json()["version"] == 1
    assert old.headers["etag"] == '"1"'
    assert api.get("/workflows/get", id=created["id"], version=3).status_code == 404
    assert api.get("/workflows/get", id=created["id"], version=0).status_code == 400


def test_duplicate_copies_everything_under_a_new_id(api: Api) -> None:
    graph = {"nodes": [{"id": "a", "data": {"x": 1}}], "edges": []}
    created = api.create(
        personaPipelineSteps=[{"personaId": "p"}], workflowGraph=graph, defaultCheckerInstructions="check"
    )
    response = api.post("/workflows/duplicate", {"workflowId": created["id"]})
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != created["id"]
    assert copy["name"] == "Release hardening (copy)"
    assert copy["version"] == 1
    for field in ("pipelineSteps", "personaPipelineSteps", "workflowGraph", "defaultCheckerInstructions"):
        assert copy[field] == created[field]
    assert versions(api, copy["id"])["versions"][0]["source"] == "duplicate"
    named = api.post("/workflows/duplicate", {"workflowId": created["id"], "name": "Mine"})
    assert named.json()["name"] == "Mine"


def test_delete_and_restore(api: Api) -> None:
    created = api.create()
    deleted = api.post("/workflows/delete", {"workflowId": created["id"]})
    assert deleted.status_code == 200
    assert deleted.json()["deletedAt"] is not None
    assert deleted.json()["version"] == 1
    assert api.post("/workflows/delete", {"workflowId": created["id"]}).status_code == 409
    assert api.get("/workflows/get", id=created["id"]).json()["deletedAt"] is not None
    assert api.get("/workflows/list").json()["items"] == []
    assert [i["id"] for i in api.get("/workflows/list", deleted="true").json()["items"]] == [created["id"]]
    for path, body in (
        ("/workflows/update", {"description": "x"}),
        ("/workflows/rename", {"name": "x"}),
        ("/workflows/versions/revert", {"versionId": f"{created['id']}.v1"}),
    ):
        assert api.post(path, {"workflowId": created["id"], **body}).status_code == 409, path
    restored = api.post("/workflows/restore", {"workflowId": created["id"]})
    assert restored.status_code == 200
    assert restored.json()["deletedAt"] is None
    assert api.post("/workflows/restore", {"workflowId": created["id"]}).status_code == 409
    assert [i["id"] for i in api.get("/workflows/list").json()["items"]] == [created["id"]]
    assert versions(api, created["id"])["currentVersion"] == 1


def test_bulk_delete_reports_each_workflow(api: Api, other_api: Api) -> None:
    first, second = api.create("one"), api.create("two")
    api.post("/workflows/delete", {"workflowId": second["id"]})
    foreign = other_api.create("theirs")
    ids = [first["id"], second["id"], "missing", foreign["id"]]
    response = api.post("/workflows/bulk-delete", {"workflowIds": ids})
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"workflowId": first["id"], "status": "deleted"},
            {"workflowId": second["id"], "status": "already_deleted"},
            {"workflowId": "missing", "status": "not_found"},
            {"workflowId": foreign["id"], "status": "not_found"},
        ]
    }
    assert api.get("/workflows/list").json()["items"] == []
    assert other_api.get("/workflows/get", id=foreign["id"]).json()["deletedAt"] is None


@pytest.mark.sqlite_only
@pytest.mark.parametrize("ids", [[], [f"id{i}" for i in range(101)]])
def test_bulk_delete_takes_1_to_100_ids(api: Api, ids: list[str]) -> None:
    response = api.post("/workflows/bulk-delete", {"workflowIds": ids})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "workflowIds"


def test_permanent_delete_erases_the_workflow_everywhere(api: Api) -> None:
    created = api.create("Top secret plan", description="classified")
    workflow_id = created["id"]
    response = api.post("/workflows/permanent-delete", {"workflowId": workflow_id})
    assert response.status_code == 200
    assert response.json() == {"workflowId": workflow_id, "permanentlyDeleted": True}
    assert api.get("/workflows/get", id=workflow_id).status_code == 404
    assert api.get("/workflows/get", id=workflow_id, version=1).status_code == 404
    assert api.get("/workflows/versions", id=workflow_id).status_code == 404
    assert api.get("/workflows/list").json()["items"] == []
    assert api.get("/workflows/list", deleted="true").json()["items"] == []
    for path, body in (
        ("/workflows/update", {"description": "x"}),
        ("/workflows/rename", {"name": "x"}),
        ("/workflows/delete", {}),
        ("/workflows/restore", {}),
        ("/workflows/duplicate", {}),
        ("/workflows/permanent-delete", {}),
    ):
        assert api.post(path, {"workflowId": workflow_id, **body}).status_code == 404, path


def test_writes_to_unknown_or_foreign_workflows_are_404(api: Api, other_api: Api) -> None:
    foreign = other_api.create()
    for workflow_id in ("does-not-exist", foreign["id"]):
        for path, body in (
            ("/workflows/update", {"description": "x"}),
            ("/workflows/rename", {"name": "x"}),
            ("/workflows/versions/revert", {"versionId": f"{workflow_id}.v1"}),
            ("/workflows/duplicate", {}),
            ("/workflows/delete", {}),
            ("/workflows/restore", {}),
            ("/workflows/permanent-delete", {}),
        ):
            response = api.post(path, {"workflowId": workflow_id, **body})
            assert response.status_code == 404, (path, response.text)
    assert other_api.get("/workflows/get", id=foreign["id"]).json() == foreign
