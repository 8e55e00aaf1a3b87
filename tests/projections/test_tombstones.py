"""Erased events reach the views as tombstones: a rebuild after a permanent delete keeps the audit trail."""

from __future__ import annotations

from typing import Any

from composition.services import Services
from projections.reading import Tombstone, position_of
from tests.support.client import Api, audit_log, start_run
from tests.support.data import OPUS
from tests.support.views import rebuild_in_place, view_named, view_rows


def erased_workflow_with_a_run(api: Api) -> dict[str, str]:
    """A workflow changed in every way, run, reported on, and permanently deleted; a second one kept."""
    kept = api.create("Kept")["id"]
    gone = api.create("Secret plan")["id"]
    api.post("/workflows/update", {"workflowId": gone, "description": "secret description"})
    api.post("/workflows/rename", {"workflowId": gone, "name": "Secret plan, renamed"})
    api.post("/workflows/versions/revert", {"workflowId": gone, "versionId": f"{gone}.v1"})
    api.post("/workflows/delete", {"workflowId": gone})
    api.post("/workflows/restore", {"workflowId": gone})
    run = start_run(api, gone, "secret prompt")["id"]
    api.post("/runs/report", {"runId": run, "status": "running", "costBreakdown": [OPUS]})
    response = api.post(
        "/workflows/permanent-delete", {"workflowId": gone}, headers={"X-Request-Id": "erase-request-1"}
    )
    assert response.status_code < 300, response.text
    return {"kept": kept, "gone": gone, "run": run}


def rebuild_every_view(services: Services) -> None:
    for runner in services.projector.runners:
        _, skipped = rebuild_in_place(runner)
        assert skipped == []


def test_a_rebuild_after_a_permanent_delete_keeps_every_item_without_content(
    api: Api, services: Services
) -> None:
    ids = erased_workflow_with_a_run(api)
    before = audit_log(api)
    rows_before = view_rows(services)

    rebuild_every_view(services)

    after = audit_log(api)
    assert after == before
    assert view_rows(services) == rows_before
    of_gone = [item for item in after if item["workflowId"] == ids["gone"]]
    assert [item["type"] for item in of_gone] == [
        "workflow.created",
        "workflow.updated",
        "workflow.renamed",
        "workflow.reverted",
        "workflow.deleted",
        "workflow.restored",
        "run.started",
        "run.reported",
        "workflow.erased",
    ]
    assert all(item["data"] == {"erased": True} for item in of_gone)
    assert [item["version"] for item in of_gone] == [1, 2, 3, 4, 4, 4, 1, 2, 4]
    assert all(item["actor"]["keyName"] for item in of_gone)
    assert all(item["requestId"] for item in of_gone)
    assert of_gone[-1]["requestId"] == "erase-request-1"
    assert "secret" not in repr(after).lower()


def test_views_without_erased_content_ignore_tombstones(api: Api, services: Services) -> None:
    ids = erased_workflow_with_a_run(api)
    rebuild_every_view(services)

    assert api.get("/workflows/get", id=ids["gone"]).status_code == 404
    assert api.get("/workflows/get", id=ids["kept"]).status_code == 200
    assert api.get("/runs/get", id=ids["run"]).status_code == 404
    assert [item["id"] for item in api.get("/workflows/list").json()["items"]] == [ids["kept"]]


def test_tombstones_carry_the_events_clear_fields_and_position(api: Api, services: Services) -> None:
    ids = erased_workflow_with_a_run(api)
    seen: list[Any] = []
    audit = view_named(services, "audit")
    original = audit.projection.apply

    def spy(event: Any, tx: Any) -> None:
        seen.append(event)
        original(event, tx)

    audit.projection.apply = spy  # type: ignore[method-assign]
    rebuild_in_place(audit)

    tombstones = [event for event in seen if isinstance(event, Tombstone)]
    assert [str(t.originator_id) for t in tombstones] == [ids["gone"]] * 4 + [ids["run"]] * 2
    started = tombstones[4]
    assert started.workflow_id == ids["gone"]
    assert started.project_id == api.project_id
    assert tombstones[0].project_id == api.project_id
    item_positions = [item["position"] for item in audit_log(api) if item["workflowId"] == ids["gone"]]
    handed_positions = [position_of(event) for event in seen]
    assert handed_positions == sorted(set(handed_positions))
    assert set(item_positions) <= set(handed_positions)
    assert {t.position for t in tombstones} <= set(item_positions)
