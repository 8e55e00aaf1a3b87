"""`GET /events` on both stores: the project's audit log, filtered, resumable, kept after erasure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from composition.services import Services
from tests.support.client import Api, audit_log, history, start_run
from tests.support.data import OPUS
from tests.support.views import replay_from_scratch, view_rows


def second_key(api: Api, services: Services, name: str) -> tuple[Api, str]:
    """Another API key of the same project, and its key id."""
    key = services.accounts.create_key(api.project_id, name)
    return Api(api.client, key.secret, api.project_id), key.key_id


def every_kind_of_event(api: Api, *, erase: bool = True) -> dict[str, str]:
    """One event of each public type (the erase optional), in a known order; returns the ids involved."""
    first = api.create("First")["id"]
    copy = api.post("/workflows/duplicate", {"workflowId": first}).json()["id"]
    api.post("/workflows/update", {"workflowId": first, "description": "now described"})
    api.post("/workflows/rename", {"workflowId": first, "name": "First, renamed"})
    api.post("/workflows/versions/revert", {"workflowId": first, "versionId": f"{first}.v1"})
    api.post("/workflows/delete", {"workflowId": first})
    api.post("/workflows/restore", {"workflowId": first})
    run = start_run(api, first)["id"]
    api.post("/runs/report", {"runId": run, "status": "running", "costBreakdown": [OPUS]})
    api.post("/runs/cancel", {"runId": run})
    if erase:
        api.post("/workflows/permanent-delete", {"workflowId": copy})
    return {"first": first, "copy": copy, "run": run}


def test_every_event_appears_under_its_public_name_in_store_order(api: Api) -> None:
    ids = every_kind_of_event(api)
    items = audit_log(api)
    assert [(item["type"], item["workflowId"]) for item in items] == [
        ("workflow.created", ids["first"]),
        ("workflow.duplicated", ids["copy"]),
        ("workflow.updated", ids["first"]),
        ("workflow.renamed", ids["first"]),
        ("workflow.reverted", ids["first"]),
        ("workflow.deleted", ids["first"]),
        ("workflow.restored", ids["first"]),
        ("run.started", ids["first"]),
        ("run.reported", ids["first"]),
        ("run.cancelled", ids["first"]),
        ("workflow.erased", ids["copy"]),
    ]
    positions = [item["position"] for item in items]
    assert positions == sorted(set(positions))
    runs = items[7:10]
    assert [(item["runId"], item["version"]) for item in runs] == [(ids["run"], v) for v in (1, 2, 3)]
    assert all("runId" not in item for item in items[:7] + items[10:])
    assert runs[0]["data"]["prompt"] == "Fix the flaky test"
    assert runs[0]["data"]["workflowVersion"] == 4
    assert runs[0]["data"]["displayId"].startswith("RUN-")
    assert runs[1]["data"]["status"] == "running"
    assert runs[1]["data"]["costBreakdown"] == [OPUS]
    assert runs[2]["data"] == {"status": "cancelled"}
    assert [item["version"] for item in items[:7]] == [1, 1, 2, 3, 4, 4, 4]
    assert items[1]["data"] == items[10]["data"] == {"erased": True}  # the copy was erased
    assert items[4]["data"]["revertedFromVersion"] == 1


def test_each_filter_narrows_the_log(api: Api, services: Services) -> None:
    ids = every_kind_of_event(api)
    auditor, auditor_id = second_key(api, services, "auditor")
    other = auditor.create("Made by the auditor")["id"]
    auditor.post("/workflows/rename", {"workflowId": ids["first"], "name": "Renamed by the auditor"})
    everything = audit_log(api)

    renames = audit_log(api, type="workflow.renamed")
    assert renames == [item for item in everything if item["type"] == "workflow.renamed"]
    assert len(renames) == 2

    of_first = audit_log(api, workflowId=ids["first"])
    assert of_first == [item for item in everything if item["workflowId"] == ids["first"]]
    assert {item["type"] for item in of_first} >= {"run.started", "workflow.created"}

    by_auditor = audit_log(api, actor=auditor_id)
    assert [(item["type"], item["workflowId"]) for item in by_auditor] == [
        ("workflow.created", other),
        ("workflow.renamed", ids["first"]),
    ]
    assert all(item["actor"] == {"keyId": auditor_id, "keyName": "auditor"} for item in by_auditor)

    combined = audit_log(api, type="workflow.renamed", actor=auditor_id, workflowId=ids["first"])
    assert combined == by_auditor[1:]
    assert audit_log(api, workflowId=str(uuid.uuid4())) == []


def test_since_is_inclusive_and_until_exclusive(api: Api) -> None:
    every_kind_of_event(api)
    items = audit_log(api)
    middle = items[len(items) // 2]["occurredAt"]
    at = datetime.fromisoformat(middle)
    assert audit_log(api, since=middle) == [i for i in items if i["occurredAt"] >= middle]
    assert audit_log(api, until=middle) == [i for i in items if i["occurredAt"] < middle]
    both = audit_log(api, since=items[1]["occurredAt"], until=items[-1]["occurredAt"])
    assert both == [i for i in items if items[1]["occurredAt"] <= i["occurredAt"] < items[-1]["occurredAt"]]
    same_moment_in_india = at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert audit_log(api, since=same_moment_in_india) == audit_log(api, since=middle)
    assert audit_log(api, since="2999-01-01T00:00:00Z") == []
    assert audit_log(api, until="2000-01-01T00:00:00+02:00") == []


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("since", "yesterday"),
        ("since", "2026-01-01"),
        ("until", "2026-01-01T00:00:00"),
        ("until", "2026-13-01T00:00:00Z"),
        ("since", "2026-01-01T25:00:00Z"),
        ("type", "workflow.exploded"),
        ("type", "Workflow.Created"),
        ("after", "-1"),
        ("after", "first"),
        ("after", str(2**63)),
        ("actor", "key\x00id"),
        ("workflowId", "\x00"),
        ("limit", "0"),
        ("limit", "101"),
    ],
)
def test_invalid_filters_are_400(api: Api, field: str, value: str) -> None:
    response = api.get("/events", **{field: value})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field


def test_after_resumes_just_past_a_position_and_pages_from_there(api: Api) -> None:
    every_kind_of_event(api)
    items = audit_log(api)
    resume_at = items[3]["position"]
    assert audit_log(api, after=resume_at) == items[4:]
    assert audit_log(api, after=resume_at, limit=2) == items[4:]
    assert audit_log(api, after=items[-1]["position"]) == []
    later = api.create("Written after the consumer stopped")["id"]
    [new] = audit_log(api, after=items[-1]["position"])
    assert (new["type"], new["workflowId"]) == ("workflow.created", later)

    first_page = api.get("/events", limit=4).json()
    assert first_page["items"] == items[:4]
    assert first_page["hasMore"]
    assert audit_log(api, limit=4) == [*items, new]


def test_a_project_sees_only_its_own_events(api: Api, other_api: Api) -> None:
    ours = api.create("ours")["id"]
    other_api.create("theirs")
    assert [item["workflowId"] for item in audit_log(api)] == [ours]
    assert other_api.get("/events", workflowId=ours).json()["items"] == []
    api.create("another of ours")
    our_cursor = api.get("/events", limit=1).json()["nextCursor"]
    assert other_api.get("/events", cursor=our_cursor).status_code == 400


def test_after_a_permanent_delete_the_log_keeps_who_did_what_but_no_content(
    api: Api, services: Services
) -> None:
    secret = f"unique-{uuid.uuid4().hex}"
    kept = api.create("Unrelated")["id"]
    workflow_id = api.create(f"Plan {secret}", description=f"About {secret}")["id"]
    update = {
        "workflowId": workflow_id,
        "pipelineSteps": [{"type": "designer", "cliId": "claude", "instructions": f"do {secret}"}],
    }
    api.post("/workflows/update", update)
    api.post("/workflows/rename", {"workflowId": workflow_id, "name": f"Renamed {secret}"})
    run = start_run(api, workflow_id, prompt=f"Prompt {secret}")["id"]
    running = {"runId": run, "status": "running", "branchName": f"fix/{secret}"}
    failed = {"runId": run, "status": "failed", "error": f"Failed on {secret}", "costBreakdown": [OPUS]}
    for report in (running, failed):
        assert api.post("/runs/report", report).status_code == 200
    before = audit_log(api, workflowId=workflow_id)
    assert secret in str(before)

    eraser, eraser_id = second_key(api, services, "eraser")
    response = eraser.post("/workflows/permanent-delete", {"workflowId": workflow_id})
    assert response.status_code == 200

    after = audit_log(api, workflowId=workflow_id)
    assert [i["type"] for i in after] == [
        "workflow.created",
        "workflow.updated",
        "workflow.renamed",
        "run.started",
        "run.reported",
        "run.reported",
        "workflow.erased",
    ]
    for earlier, now in zip(before, after, strict=False):
        assert now["data"] == {"erased": True}
        assert {k: v for k, v in now.items() if k != "data"} == {
            k: v for k, v in earlier.items() if k != "data"
        }
    erased = after[-1]
    assert erased["actor"] == {"keyId": eraser_id, "keyName": "eraser"}
    assert erased["version"] == 3
    assert [i["workflowId"] for i in audit_log(api) if i["data"] != {"erased": True}] == [kept]

    assert api.get("/workflows/history", id=workflow_id).status_code == 404
    assert api.get("/workflows/get", id=workflow_id, asOf="2999-01-01T00:00:00Z").status_code == 404
    assert secret not in api.get("/events", limit=100).text
    assert secret not in api.get("/workflows/history", id=workflow_id).text
    assert secret not in str(audit_rows(services))
    assert history(api, kept)[0]["data"]["name"] == "Unrelated"


def audit_rows(services: Services) -> list[Any]:
    """Every row of every table of the audit read model, as stored."""
    rows = [row for table in view_rows(services, "audit").values() for row in table]
    assert rows
    return rows


def rebuild_audit_view(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    replay_from_scratch(services, "audit")
    return view_rows(services, "audit")


def test_rebuilding_the_audit_view_gives_the_same_items(api: Api, services: Services) -> None:
    every_kind_of_event(api, erase=False)
    built = view_rows(services, "audit")
    assert rebuild_audit_view(services) == built
    assert len(built["audit_event"]) == 10


def test_rebuilding_after_an_erasure_keeps_the_erased_workflows_items(api: Api, services: Services) -> None:
    every_kind_of_event(api)
    built = view_rows(services, "audit")
    assert rebuild_audit_view(services) == built
