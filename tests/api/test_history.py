"""`GET /workflows/history` over HTTP on both stores: what each event changed, paged, in store order."""

from __future__ import annotations

import re
import uuid

import pytest

from domain.workflow import CONTENT_FIELDS
from tests.support.client import Api, history

ITEM_FIELDS = {"position", "type", "workflowId", "version", "occurredAt", "actor", "requestId", "data"}
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def test_history_shows_what_an_update_a_rename_and_a_revert_changed(api: Api) -> None:
    created = api.create("Release hardening", description="first")
    workflow_id = created["id"]
    update = {"workflowId": workflow_id, "description": "second", "maxIterations": 3}
    updated = api.post("/workflows/update", update, headers={"X-Request-Id": "update-request-1"})
    assert updated.status_code == 200
    assert api.post("/workflows/rename", {"workflowId": workflow_id, "name": "Renamed"}).status_code == 200
    revert = {"workflowId": workflow_id, "versionId": f"{workflow_id}.v1"}
    assert api.post("/workflows/versions/revert", revert).status_code == 200

    items = history(api, workflow_id)

    assert [item["type"] for item in items] == [
        "workflow.created",
        "workflow.updated",
        "workflow.renamed",
        "workflow.reverted",
    ]
    assert [item["version"] for item in items] == [1, 2, 3, 4]
    positions = [item["position"] for item in items]
    assert positions == sorted(set(positions))
    for item in items:
        assert set(item) == ITEM_FIELDS
        assert item["workflowId"] == workflow_id
        assert STAMP.fullmatch(item["occurredAt"])
        assert item["actor"] == {"keyId": items[0]["actor"]["keyId"], "keyName": "tests key"}

    assert items[1]["requestId"] == updated.headers["X-Request-Id"] == "update-request-1"
    assert items[0]["data"] == {field: created[field] for field in CONTENT_FIELDS}
    assert items[1]["data"] == {
        "changedFields": ["description", "maxIterations"],
        "changes": {
            "description": {"from": "first", "to": "second"},
            "maxIterations": {"from": None, "to": 3},
        },
    }
    assert items[2]["data"] == {
        "changedFields": ["name"],
        "changes": {"name": {"from": "Release hardening", "to": "Renamed"}},
    }
    assert items[3]["data"] == {
        "changedFields": ["name", "description", "maxIterations"],
        "changes": {
            "name": {"from": "Renamed", "to": "Release hardening"},
            "description": {"from": "second", "to": "first"},
            "maxIterations": {"from": 3, "to": None},
        },
        "revertedFromVersion": 1,
    }


def test_deletes_restores_and_duplicates_appear_and_keep_the_content_version(api: Api) -> None:
    source = api.create("Source")
    workflow_id = source["id"]
    api.post("/workflows/rename", {"workflowId": workflow_id, "name": "Source 2"})
    assert api.post("/workflows/delete", {"workflowId": workflow_id}).status_code == 200
    assert api.post("/workflows/restore", {"workflowId": workflow_id}).status_code == 200
    copy = api.post("/workflows/duplicate", {"workflowId": workflow_id}).json()

    items = history(api, workflow_id)
    assert [(i["type"], i["version"], i["data"]) for i in items[2:]] == [
        ("workflow.deleted", 2, {}),
        ("workflow.restored", 2, {}),
    ]
    [duplicated] = history(api, copy["id"])
    assert duplicated["type"] == "workflow.duplicated"
    assert duplicated["version"] == 1
    assert duplicated["data"]["name"] == "Source 2 (copy)"
    assert duplicated["data"]["sourceWorkflowId"] == workflow_id


def test_history_holds_the_workflows_own_events_and_leaves_its_runs_to_the_audit_log(api: Api) -> None:
    workflow_id = api.create("With runs")["id"]
    run = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "Go"}).json()["id"]
    api.post("/runs/cancel", {"runId": run})
    api.post("/workflows/rename", {"workflowId": workflow_id, "name": "Renamed"})
    assert [item["type"] for item in history(api, workflow_id)] == ["workflow.created", "workflow.renamed"]
    logged = api.get("/events", workflowId=workflow_id).json()["items"]
    assert [item.get("runId") for item in logged] == [None, run, run, None]


def test_history_pages_oldest_first_without_repeats_or_gaps(api: Api) -> None:
    workflow_id = api.create("v1")["id"]
    for version in range(2, 9):
        api.post("/workflows/rename", {"workflowId": workflow_id, "name": f"v{version}"})

    first = api.get("/workflows/history", id=workflow_id, limit=3).json()
    assert len(first["items"]) == 3
    assert first["hasMore"]
    paged = history(api, workflow_id, limit=3)
    whole = history(api, workflow_id, limit=100)
    assert paged == whole
    assert [item["version"] for item in whole] == list(range(1, 9))
    assert [item["data"]["changes"]["name"]["to"] for item in whole[1:]] == [f"v{v}" for v in range(2, 9)]

    api.post("/workflows/rename", {"workflowId": workflow_id, "name": "v9"})
    rest = api.get("/workflows/history", id=workflow_id, limit=100, cursor=first["nextCursor"]).json()
    assert [item["version"] for item in rest["items"]] == list(range(4, 10))


@pytest.mark.sqlite_only
def test_history_cursors_and_limits_are_checked(api: Api) -> None:
    first = api.create("first")["id"]
    second = api.create("second")["id"]
    for name in ("a", "b"):
        api.post("/workflows/rename", {"workflowId": first, "name": name})
    cursor = api.get("/workflows/history", id=first, limit=1).json()["nextCursor"]
    for bad in ("garbage", cursor[:-2]):
        response = api.get("/workflows/history", id=first, cursor=bad)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "cursor"
    assert api.get("/workflows/history", id=second, cursor=cursor).status_code == 400
    assert api.get("/events", cursor=cursor).status_code == 400
    for limit in (0, 101, "many"):
        assert api.get("/workflows/history", id=first, limit=limit).status_code == 400


def test_history_is_404_for_unknown_foreign_and_erased_workflows(api: Api, other_api: Api) -> None:
    theirs = other_api.create("theirs")["id"]
    trashed = api.create("trashed")["id"]
    erased = api.create("erased")["id"]
    api.post("/workflows/delete", {"workflowId": trashed})
    api.post("/workflows/permanent-delete", {"workflowId": erased})
    run = api.post("/runs/start", {"workflowId": trashed, "prompt": "x"})
    assert run.status_code == 409  # a trashed workflow takes no runs

    for unknown in (str(uuid.uuid4()), "not-an-id", theirs, erased):
        response = api.get("/workflows/history", id=unknown)
        assert response.status_code == 404, unknown
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.get("/workflows/history", id=trashed).status_code == 200
    assert other_api.get("/workflows/history", id=theirs).status_code == 200


def test_history_needs_an_id(api: Api) -> None:
    response = api.client.get("/api/v1/workflows/history", headers=api.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "id"
    assert api.get("/workflows/history", id="").status_code == 404
