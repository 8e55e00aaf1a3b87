"""Workflow reads over HTTP: the list and the trash with keyset paging, get, and versions."""

from __future__ import annotations

import base64

import pytest

from tests.support.client import Api


def test_paging_through_250_workflows_with_limit_100(api: Api) -> None:
    created = {api.create(f"wf {i:03d}")["id"] for i in range(250)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
        page = api.get("/workflows/list", **params).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        assert page["hasMore"] == (page["nextCursor"] is not None)
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert pages == 3
    assert len(seen) == 250
    assert set(seen) == created


def test_list_is_newest_updated_first(api: Api) -> None:
    first, second, third = api.create("a"), api.create("b"), api.create("c")
    api.post("/workflows/rename", {"workflowId": first["id"], "name": "a2"})
    items = api.get("/workflows/list").json()["items"]
    assert [i["id"] for i in items] == [first["id"], third["id"], second["id"]]
    item = items[0]
    assert set(item) == {
        "id", "name", "description", "type", "version", "stepCount", "personaStepCount",
        "createdAt", "updatedAt", "deletedAt", "display",
    }  # fmt: skip
    assert (item["name"], item["version"], item["stepCount"], item["personaStepCount"]) == ("a2", 2, 1, 0)
    assert item["display"] == {"cliTools": ["claude"], "cliToolLabels": ["Claude Code"]}


def test_inserts_while_paging_neither_repeat_nor_skip_items(api: Api) -> None:
    for i in range(5):
        api.create(f"old {i}")
    page = api.get("/workflows/list", limit=2).json()
    seen = [i["id"] for i in page["items"]]
    api.create("new while paging")
    cursor = page["nextCursor"]
    while cursor:
        page = api.get("/workflows/list", limit=2, cursor=cursor).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["nextCursor"]
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.sqlite_only
@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_limit_must_be_1_to_100(api: Api, limit: object) -> None:
    response = api.get("/workflows/list", limit=limit)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit"


@pytest.mark.sqlite_only
def test_a_tampered_or_foreign_cursor_is_400(api: Api, other_api: Api) -> None:
    for i in range(3):
        api.create(f"wf {i}")
        other_api.create(f"theirs {i}")
    cursor = api.get("/workflows/list", limit=1).json()["nextCursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    tampered = base64.urlsafe_b64encode(raw[:5] + bytes([raw[5] ^ 1]) + raw[6:]).decode()
    for bad in (tampered, "garbage", "", cursor[:-2]):
        response = api.get("/workflows/list", cursor=bad)
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["field"] == "cursor"
    assert other_api.get("/workflows/list", cursor=cursor).status_code == 400
    assert api.get("/workflows/list", cursor=cursor, deleted="true").status_code == 400
    assert api.get("/workflows/list", cursor=cursor).status_code == 200


def test_the_trash_lists_only_deleted_workflows(api: Api) -> None:
    kept, trashed = api.create("kept"), api.create("trashed")
    api.post("/workflows/delete", {"workflowId": trashed["id"]})
    assert [i["id"] for i in api.get("/workflows/list").json()["items"]] == [kept["id"]]
    trash = api.get("/workflows/list", deleted="true").json()["items"]
    assert [i["id"] for i in trash] == [trashed["id"]]
    assert trash[0]["deletedAt"] is not None


def test_get_answers_404_for_unknown_and_foreign_ids(api: Api, other_api: Api) -> None:
    foreign = other_api.create()
    for workflow_id in ("nope", foreign["id"], "00000000-0000-0000-0000-000000000000"):
        response = api.get("/workflows/get", id=workflow_id)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert api.get("/workflows/versions", id=workflow_id).status_code == 404
        assert api.get("/workflows/get", id=workflow_id, version=1).status_code == 404


@pytest.mark.sqlite_only
def test_get_needs_an_id(api: Api) -> None:
    response = api.get("/workflows/get")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "id"


def test_versions_lists_every_content_version_newest_first(api: Api) -> None:
    created = api.create()
    api.post("/workflows/update", {"workflowId": created["id"], "description": "d"})
    api.post("/workflows/delete", {"workflowId": created["id"]})
    api.post("/workflows/restore", {"workflowId": created["id"]})
    api.post("/workflows/rename", {"workflowId": created["id"], "name": "renamed"})
    body = api.get("/workflows/versions", id=created["id"]).json()
    assert body["workflowId"] == created["id"]
    assert body["currentVersion"] == 3
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    assert [v["source"] for v in body["versions"]] == ["rename", "update", "create"]
    assert body["versions"][2]["changedFields"] == ["name", "pipelineSteps"]
    for entry in body["versions"]:
        assert set(entry) == {
            "versionId", "version", "createdAt", "actor", "source", "changedFields",
            "revertedFromVersion", "name",
        }  # fmt: skip
        assert entry["actor"] == {"keyId": entry["actor"]["keyId"], "keyName": "tests key"}
    assert api.get("/workflows/get", id=created["id"], version=2).json()["description"] == "d"


def test_the_openapi_document_types_workflow_content(api: Api) -> None:
    schemas = api.client.get("/schema/openapi.json").json()["components"]["schemas"]
    for name, fields in (
        ("WorkflowDocument", ("createdAt", "updatedAt", "deletedAt")),
        ("WorkflowListItem", ("createdAt", "updatedAt", "deletedAt")),
        ("VersionEntry", ("createdAt",)),
    ):
        for field in fields:
            assert schemas[name]["properties"][field]["format"] == "date-time", (name, field)
    graph = schemas["WorkflowGraph"]["properties"]
    assert graph["nodes"]["items"]["required"] == ["id"]
    assert graph["nodes"]["items"]["additionalProperties"] is True
    assert graph["edges"]["items"]["required"] == ["id", "source", "target"]
    document = set(schemas["WorkflowDocument"]["properties"])
    assert set(schemas["CreateWorkflow"]["properties"]) < document
    assert set(schemas["UpdateWorkflow"]["properties"]) - {"workflowId", "expectedVersion"} < document
