"""`GET /workflows/versions` pages newest first (spec §5): limit 1..1000, default 100, signed cursors."""

from __future__ import annotations

from typing import Any

import pytest

from composition.services import Services
from domain.workflow import Actor
from domain.workflow_content import WorkflowChanges
from tests.support.client import Api

ACTOR: Actor = {"keyId": "k-test", "keyName": "tests key"}


def workflow_with_versions(api: Api, services: Services, versions: int) -> str:
    """A workflow of `versions` content versions, its updates saved at once through the domain service."""
    workflow_id: str = api.create("paged", description="v1")["id"]
    workflow = services.workflows.get_workflow(api.project_id, workflow_id)
    for version in range(2, versions + 1):
        workflow.update(ACTOR, WorkflowChanges(description=f"v{version}"))
    services.make_visible(services.workflows.save(workflow)[-1].notification.id)
    return workflow_id


def page(api: Api, workflow_id: str, **params: Any) -> dict[str, Any]:
    response = api.get("/workflows/versions", id=workflow_id, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def all_pages(api: Api, workflow_id: str, limit: int) -> list[dict[str, Any]]:
    pages = [page(api, workflow_id, limit=limit)]
    while pages[-1]["hasMore"]:
        pages.append(page(api, workflow_id, limit=limit, cursor=pages[-1]["nextCursor"]))
    return pages


def test_pages_go_newest_first_without_gaps_or_repeats(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, services, 250)

    pages = all_pages(api, workflow_id, limit=100)

    assert [len(p["versions"]) for p in pages] == [100, 100, 50]
    assert [p["hasMore"] for p in pages] == [True, True, False]
    assert pages[-1]["nextCursor"] is None
    assert all(p["nextCursor"] for p in pages[:-1])
    assert all(p["workflowId"] == workflow_id and p["currentVersion"] == 250 for p in pages)
    versions = [entry["version"] for p in pages for entry in p["versions"]]
    assert versions == list(range(250, 0, -1))
    assert pages[2]["versions"][-1]["source"] == "create"
    assert pages[0]["versions"][0]["versionId"] == f"{workflow_id}.v250"


def test_the_default_page_is_100_and_1000_is_the_largest(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, services, 150)
    first = page(api, workflow_id)
    assert [entry["version"] for entry in first["versions"]] == list(range(150, 50, -1))
    assert first["hasMore"] is True
    whole = page(api, workflow_id, limit=1000)
    assert len(whole["versions"]) == 150
    assert (whole["hasMore"], whole["nextCursor"]) == (False, None)
    single = page(api, workflow_id, limit=1)
    assert [entry["version"] for entry in single["versions"]] == [150]


def test_a_short_history_comes_whole_in_one_answer(api: Api) -> None:
    workflow_id = api.create()["id"]
    api.post("/workflows/rename", {"workflowId": workflow_id, "name": "renamed"})
    body = page(api, workflow_id)
    assert [entry["version"] for entry in body["versions"]] == [2, 1]
    assert (body["currentVersion"], body["hasMore"], body["nextCursor"]) == (2, False, None)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1.5", ""])
def test_a_limit_out_of_range_is_400(api: Api, limit: str) -> None:
    workflow_id = api.create()["id"]
    response = api.get("/workflows/versions", id=workflow_id, limit=limit)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.sqlite_only
def test_a_bad_or_foreign_cursor_is_400(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, services, 5)
    other_workflow = workflow_with_versions(api, services, 5)
    cursor = page(api, workflow_id, limit=2)["nextCursor"]
    other_cursor = page(api, other_workflow, limit=2)["nextCursor"]
    for name in range(3):
        api.create(f"listed {name}")
    list_cursor = api.get("/workflows/list", limit=1).json()["nextCursor"]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")

    for bad in ("garbage", "", tampered, other_cursor, list_cursor):
        response = api.get("/workflows/versions", id=workflow_id, cursor=bad)
        assert response.status_code == 400, (bad, response.text)
    assert page(api, workflow_id, limit=2, cursor=cursor)["versions"][0]["version"] == 3


def test_another_projects_workflow_is_404_and_its_cursor_400(
    api: Api, other_api: Api, services: Services
) -> None:
    workflow_id = workflow_with_versions(api, services, 5)
    cursor = page(api, workflow_id, limit=2)["nextCursor"]
    assert other_api.get("/workflows/versions", id=workflow_id).status_code == 404
    assert other_api.get("/workflows/versions", id=workflow_id, limit=2).status_code == 404
    assert other_api.get("/workflows/versions", id=workflow_id, cursor=cursor).status_code == 400
    assert api.get("/workflows/versions", id="00000000-0000-4000-8000-000000000000").status_code == 404


def test_new_versions_while_paging_neither_repeat_nor_hide_older_ones(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, services, 30)
    first = page(api, workflow_id, limit=10)
    for version in (31, 32):
        api.post("/workflows/update", {"workflowId": workflow_id, "description": f"v{version}"})
    rest = all_pages_from(api, workflow_id, first["nextCursor"], limit=10)
    seen = [entry["version"] for p in [first, *rest] for entry in p["versions"]]
    assert seen == list(range(30, 0, -1))
    assert rest[0]["currentVersion"] == 32


def all_pages_from(api: Api, workflow_id: str, cursor: str, limit: int) -> list[dict[str, Any]]:
    pages = [page(api, workflow_id, limit=limit, cursor=cursor)]
    while pages[-1]["hasMore"]:
        pages.append(page(api, workflow_id, limit=limit, cursor=pages[-1]["nextCursor"]))
    return pages


def test_an_erased_workflows_cursor_finds_nothing(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, services, 5)
    cursor = page(api, workflow_id, limit=2)["nextCursor"]
    api.post("/workflows/permanent-delete", {"workflowId": workflow_id})
    assert api.get("/workflows/versions", id=workflow_id, cursor=cursor).status_code == 404
