"""`GET /workflows/get?asOf=TIME` over HTTP on both stores: the document as it was at a moment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support.client import Api


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def stamp(milliseconds: int) -> str:
    moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


def next_millisecond(after: str) -> None:
    """Wait until the clock has left the millisecond of `after`, so the next write gets a later one."""
    while time.time() * 1000 < ms(after) + 1:
        time.sleep(0.001)


def as_of(api: Api, workflow_id: str, moment: str) -> Any:
    return api.get("/workflows/get", id=workflow_id, asOf=moment)


def write(api: Api, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(route, body)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    next_millisecond(document["updatedAt"])
    return document


def test_the_document_at_each_moment_of_its_history(api: Api) -> None:
    v1 = api.create("v1", description="one")
    next_millisecond(v1["updatedAt"])
    workflow_id = v1["id"]
    v2 = write(api, "/workflows/update", {"workflowId": workflow_id, "description": "two"})
    v3 = write(api, "/workflows/rename", {"workflowId": workflow_id, "name": "v3"})
    deleted = write(api, "/workflows/delete", {"workflowId": workflow_id})
    restored = write(api, "/workflows/restore", {"workflowId": workflow_id})

    assert as_of(api, workflow_id, stamp(ms(v1["createdAt"]) - 1)).status_code == 404
    for document in (v1, v2, v3, deleted, restored):
        at_that_time = as_of(api, workflow_id, document["updatedAt"])
        assert at_that_time.status_code == 200, at_that_time.text
        assert at_that_time.json() == document
        assert at_that_time.headers["etag"] == f'"{document["version"]}"'
        just_before_the_next = as_of(api, workflow_id, stamp(ms(document["updatedAt"]) + 1))
        assert just_before_the_next.json() == document
    assert deleted["deletedAt"] is not None
    assert (deleted["version"], restored["version"], restored["deletedAt"]) == (3, 3, None)

    now = api.get("/workflows/get", id=workflow_id).json()
    assert as_of(api, workflow_id, "2999-12-31T23:59:59.999Z").json() == now


def test_any_offset_names_the_same_moment(api: Api) -> None:
    v1 = api.create("v1")
    next_millisecond(v1["updatedAt"])
    v2 = write(api, "/workflows/rename", {"workflowId": v1["id"], "name": "v2"})
    moment = datetime.fromisoformat(v1["updatedAt"])
    for offset in (timedelta(hours=-7), timedelta(hours=5, minutes=30)):
        elsewhere = moment.astimezone(timezone(offset)).isoformat()
        assert as_of(api, v1["id"], elsewhere).json() == v1
    assert as_of(api, v1["id"], v2["updatedAt"].replace("Z", "+00:00")).json() == v2


@pytest.mark.parametrize(
    "moment",
    [
        "yesterday",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00+25:00",
        "",
    ],
)
@pytest.mark.sqlite_only
def test_a_time_that_is_not_rfc_3339_is_400(api: Api, moment: str) -> None:
    workflow_id = api.create()["id"]
    response = as_of(api, workflow_id, moment)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "asOf"


@pytest.mark.sqlite_only
def test_version_and_as_of_together_are_400(api: Api) -> None:
    workflow_id = api.create()["id"]
    response = api.get("/workflows/get", id=workflow_id, version=1, asOf="2999-01-01T00:00:00Z")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "asOf"


def test_as_of_is_404_for_other_projects_and_erased_workflows(api: Api, other_api: Api) -> None:
    theirs = other_api.create("theirs")["id"]
    erased = api.create("erased")["id"]
    api.post("/workflows/permanent-delete", {"workflowId": erased})
    for workflow_id in (theirs, erased, "not-an-id"):
        assert as_of(api, workflow_id, "2999-01-01T00:00:00Z").status_code == 404
    assert as_of(other_api, theirs, "2999-01-01T00:00:00Z").status_code == 200
