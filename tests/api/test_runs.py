"""Run routes over HTTP on both stores: start, report, cancel, get, and a workflow's runs list."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from composition.services import Services
from domain.run import run_number_claim_id
from tests.support.client import Api, send, upload_url
from tests.support.client import start_run as start
from tests.support.data import GPT, OPUS, PNG

RUN_FIELDS = {
    "id",
    "workflowId",
    "workflowVersion",
    "runNumber",
    "displayId",
    "status",
    "prompt",
    "githubRepoUrl",
    "branchName",
    "prUrl",
    "config",
    "referenceImageIds",
    "createdAt",
    "startedAt",
    "completedAt",
    "durationMs",
    "costUsd",
    "costBreakdown",
    "error",
}


def report(api: Api, run_id: str, status: str, **fields: Any) -> Any:
    return api.post("/runs/report", {"runId": run_id, "status": status, **fields})


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def head(services: Services) -> int:
    return services.workflows.recorder.max_notification_id() or 0


def problem_field(response: Any) -> str:
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    field: str = body["errors"][0]["field"]
    return field


def test_start_answers_a_queued_run_with_every_field(api: Api) -> None:
    workflow = api.create()
    run = start(
        api,
        workflow["id"],
        githubRepoUrl="https://github.com/acme/app",
        branchName="feature/flaky",
        config={"cliId": "claude", "timeoutMs": 60_000},
    )
    assert set(run) == RUN_FIELDS
    assert run["status"] == "queued"
    assert run["workflowId"] == workflow["id"]
    assert run["workflowVersion"] == 1
    assert run["runNumber"] == 1
    assert run["displayId"] == "RUN-1"
    assert run["prompt"] == "Fix the flaky test"
    assert run["githubRepoUrl"] == "https://github.com/acme/app"
    assert run["branchName"] == "feature/flaky"
    assert run["config"] == {
        "templateId": None,
        "cliId": "claude",
        "model": None,
        "timeoutMs": 60_000,
        "memoryMb": None,
        "cpuCount": None,
    }
    assert run["referenceImageIds"] == []
    assert run["createdAt"].endswith("Z")
    assert len(run["createdAt"]) == 24
    for field in ("prUrl", "startedAt", "completedAt", "durationMs", "error"):
        assert run[field] is None
    assert run["costUsd"] == 0
    assert run["costBreakdown"] == []
    assert api.get("/runs/get", id=run["id"]).json() == run


def test_optional_fields_come_back_as_null(api: Api) -> None:
    run = start(api, api.create()["id"])
    assert run["githubRepoUrl"] is None
    assert run["branchName"] is None
    assert run["config"] is None


def test_a_run_records_the_workflow_version_at_its_start(api: Api) -> None:
    workflow = api.create()
    first = start(api, workflow["id"])
    assert api.post("/workflows/rename", {"workflowId": workflow["id"], "name": "Renamed"}).status_code == 200
    second = start(api, workflow["id"])
    assert (first["workflowVersion"], second["workflowVersion"]) == (1, 2)
    assert (first["runNumber"], second["runNumber"]) == (1, 2)


def test_run_numbers_are_per_project(api: Api, other_api: Api) -> None:
    ours = api.create()
    theirs = other_api.create()
    assert [start(api, ours["id"])["runNumber"] for _ in range(3)] == [1, 2, 3]
    assert start(other_api, theirs["id"])["runNumber"] == 1
    assert start(api, api.create("Another")["id"])["runNumber"] == 4


def test_a_run_goes_from_queued_to_running_to_succeeded(api: Api) -> None:
    run = start(api, api.create()["id"])
    running = report(api, run["id"], "running", branchName="wfs/run-1")
    assert running.status_code == 200, running.text
    running_run = running.json()
    assert running_run["status"] == "running"
    assert running_run["startedAt"] is not None
    assert running_run["branchName"] == "wfs/run-1"
    assert running_run["completedAt"] is None
    assert running_run["durationMs"] is None

    more = report(api, run["id"], "running", costBreakdown=[OPUS])
    assert more.status_code == 200
    assert more.json()["costUsd"] == pytest.approx(1.25)
    assert more.json()["startedAt"] == running_run["startedAt"]

    done = report(
        api, run["id"], "succeeded", prUrl="https://github.com/acme/app/pull/7", costBreakdown=[OPUS, GPT]
    ).json()
    assert done["status"] == "succeeded"
    assert done["prUrl"] == "https://github.com/acme/app/pull/7"
    assert done["costUsd"] == pytest.approx(2.6)
    assert done["costBreakdown"] == [OPUS, OPUS, {**GPT, "inputTokens": None, "outputTokens": None}]
    assert done["durationMs"] == ms(done["completedAt"]) - ms(done["startedAt"])
    assert done["durationMs"] >= 0
    assert api.get("/runs/get", id=run["id"]).json() == done


def test_a_failed_run_keeps_its_error(api: Api) -> None:
    run = start(api, api.create()["id"])
    report(api, run["id"], "running")
    failed = report(api, run["id"], "failed", error="tests failed: 3")
    assert failed.status_code == 200
    assert failed.json()["error"] == "tests failed: 3"
    assert failed.json()["status"] == "failed"


def test_cancelling_a_queued_run_measures_from_creation(api: Api) -> None:
    run = start(api, api.create()["id"])
    response = api.post("/runs/cancel", {"runId": run["id"]})
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["startedAt"] is None
    assert cancelled["durationMs"] == ms(cancelled["completedAt"]) - ms(cancelled["createdAt"])


def test_cancelling_a_running_run(api: Api) -> None:
    run = start(api, api.create()["id"])
    report(api, run["id"], "running")
    cancelled = api.post("/runs/cancel", {"runId": run["id"]}).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["durationMs"] == ms(cancelled["completedAt"]) - ms(cancelled["startedAt"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ([], "succeeded"),
        ([], "failed"),
        (["running"], "queued"),
        (["running", "succeeded"], "running"),
        (["running", "succeeded"], "succeeded"),
        (["running", "failed"], "cancelled"),
        (["cancelled"], "running"),
    ],
)
def test_an_impossible_transition_is_409_and_stores_nothing(
    api: Api, services: Services, path: list[str], status: str
) -> None:
    run = start(api, api.create()["id"])
    for step in path:
        assert report(api, run["id"], step).status_code == 200
    before = api.get("/runs/get", id=run["id"]).json()
    position = head(services)
    response = report(api, run["id"], status, costBreakdown=[OPUS])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert head(services) == position
    assert api.get("/runs/get", id=run["id"]).json() == before


def test_cancelling_a_finished_run_is_409_and_stores_nothing(api: Api, services: Services) -> None:
    run = start(api, api.create()["id"])
    assert api.post("/runs/cancel", {"runId": run["id"]}).status_code == 200
    position = head(services)
    assert api.post("/runs/cancel", {"runId": run["id"]}).status_code == 409
    assert head(services) == position


def test_a_report_of_nothing_new_stores_nothing(api: Api, services: Services) -> None:
    run = start(api, api.create()["id"])
    report(api, run["id"], "running", branchName="main")
    position = head(services)
    again = report(api, run["id"], "running", branchName="main")
    assert again.status_code == 200
    assert again.json()["status"] == "running"
    assert head(services) == position


def test_links_are_accepted_and_validated(api: Api) -> None:
    run = start(api, api.create()["id"])
    links = {
        "personas": [{"id": "p1", "name": "Ada"}],
        "issues": [{"id": "ISS-1"}],
        "learningVersions": [{"id": "lv-3", "name": None}],
    }
    assert report(api, run["id"], "running", links=links).status_code == 200
    bad = report(api, run["id"], "running", links={"personas": [{"id": "p1", "role": "x"}]})
    assert bad.status_code == 400
    assert "role" in problem_field(bad)
    assert report(api, run["id"], "running", links={"teams": []}).status_code == 400
    assert report(api, run["id"], "running", links={"issues": [{"name": "no id"}]}).status_code == 400


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 100_001}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"githubRepoUrl": "http://github.com/acme/app"}, "githubRepoUrl"),
        ({"githubRepoUrl": "github.com/acme/app"}, "githubRepoUrl"),
        ({"githubRepoUrl": "https://"}, "githubRepoUrl"),
        ({"githubRepoUrl": "https://github.com/a b"}, "githubRepoUrl"),
        ({"githubRepoUrl": "javascript:alert(1)"}, "githubRepoUrl"),
        ({"branchName": "a..b"}, "branchName"),
        ({"branchName": "has space"}, "branchName"),
        ({"branchName": "ends.lock"}, "branchName"),
        ({"branchName": "/leading"}, "branchName"),
        ({"branchName": "trailing/"}, "branchName"),
        ({"branchName": "x//y"}, "branchName"),
        ({"branchName": "what?"}, "branchName"),
        ({"branchName": "a@{1}"}, "branchName"),
        ({"branchName": "@"}, "branchName"),
        ({"branchName": "tab\tname"}, "branchName"),
        ({"branchName": "dot."}, "branchName"),
        ({"branchName": ""}, "branchName"),
        ({"config": {"timeoutMs": 999}}, "config.timeoutMs"),
        ({"config": {"memoryMb": 262_145}}, "config.memoryMb"),
        ({"config": {"cpuCount": 0}}, "config.cpuCount"),
        ({"config": {"gpu": True}}, "config.gpu"),
        ({"referenceImageIds": "img"}, "referenceImageIds"),
        ({"runNumber": 5}, "runNumber"),
    ],
)
def test_start_refuses_invalid_input_with_400_naming_the_field(
    api: Api, services: Services, fields: dict[str, Any], field: str
) -> None:
    workflow = api.create()
    position = head(services)
    response = api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "go", **fields})
    assert response.status_code == 400, response.text
    assert problem_field(response) == field
    assert head(services) == position


def test_start_accepts_a_prompt_of_100000_characters(api: Api) -> None:
    assert start(api, api.create()["id"], prompt="x" * 100_000)["prompt"] == "x" * 100_000


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "paused"}, "status"),
        ({"status": "RUNNING"}, "status"),
        ({"status": ""}, "status"),
        ({"status": 1}, "status"),
        ({"status": None}, "status"),
        ({"prUrl": "http://github.com/acme/app/pull/1"}, "prUrl"),
        ({"branchName": "bad..ref"}, "branchName"),
        ({"costBreakdown": [{**OPUS, "costUsd": -0.01}]}, "costBreakdown[0].costUsd"),
        ({"costBreakdown": [{**OPUS, "inputTokens": -1}]}, "costBreakdown[0].inputTokens"),
        ({"costBreakdown": [{**OPUS, "outputTokens": 1.5}]}, "costBreakdown[0].outputTokens"),
        ({"costBreakdown": [{"cliId": "claude", "costUsd": 1}]}, "costBreakdown[0].model"),
        ({"costBreakdown": [{**OPUS, "currency": "EUR"}]}, "costBreakdown[0].currency"),
        ({"costUsd": 3}, "costUsd"),
    ],
)
def test_report_refuses_invalid_input_with_400(
    api: Api, services: Services, fields: dict[str, Any], field: str
) -> None:
    run = start(api, api.create()["id"])
    position = head(services)
    response = api.post("/runs/report", {"runId": run["id"], "status": "running", **fields})
    assert response.status_code == 400, response.text
    assert problem_field(response) == field
    assert head(services) == position


@pytest.mark.sqlite_only
def test_bodies_need_their_ids(api: Api) -> None:
    assert problem_field(api.post("/runs/start", {"prompt": "go"})) == "workflowId"
    assert problem_field(api.post("/runs/report", {"status": "running"})) == "runId"
    assert problem_field(api.post("/runs/cancel", {})) == "runId"
    assert problem_field(api.post("/runs/cancel", {"runId": "r", "reason": "x"})) == "reason"


def test_starting_a_run_of_an_unknown_workflow_is_404(api: Api) -> None:
    for workflow_id in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        response = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "go"})
        assert response.status_code == 404, response.text


def test_starting_a_run_of_another_projects_workflow_is_404(api: Api, other_api: Api) -> None:
    theirs = other_api.create()
    response = api.post("/runs/start", {"workflowId": theirs["id"], "prompt": "go"})
    assert response.status_code == 404


def test_starting_a_run_of_a_deleted_workflow_is_409_and_restore_allows_it(
    api: Api, services: Services
) -> None:
    workflow = api.create()
    assert api.post("/workflows/delete", {"workflowId": workflow["id"]}).status_code == 200
    position = head(services)
    response = api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "go"})
    assert response.status_code == 409
    assert head(services) == position
    assert api.post("/workflows/restore", {"workflowId": workflow["id"]}).status_code == 200
    assert start(api, workflow["id"])["runNumber"] == 1


def test_runs_of_a_soft_deleted_workflow_stay_readable(api: Api) -> None:
    workflow = api.create()
    run = start(api, workflow["id"])
    assert api.post("/workflows/delete", {"workflowId": workflow["id"]}).status_code == 200
    assert api.get("/runs/get", id=run["id"]).status_code == 200
    assert report(api, run["id"], "running").status_code == 200
    assert api.get("/workflows/runs", id=workflow["id"]).json()["items"][0]["id"] == run["id"]


def test_another_projects_run_is_404_everywhere(api: Api, other_api: Api) -> None:
    run = start(api, api.create()["id"])
    assert other_api.get("/runs/get", id=run["id"]).status_code == 404
    assert report(other_api, run["id"], "running").status_code == 404
    assert other_api.post("/runs/cancel", {"runId": run["id"]}).status_code == 404
    assert api.get("/runs/get", id=run["id"]).json()["status"] == "queued"


def test_unknown_run_ids_are_404(api: Api) -> None:
    workflow = api.create()
    start(api, workflow["id"])
    claim = str(run_number_claim_id(api.project_id, 1))
    for run_id in ("nope", "00000000-0000-4000-8000-000000000000", workflow["id"], claim):
        assert api.get("/runs/get", id=run_id).status_code == 404
        assert report(api, run_id, "running").status_code == 404
        assert api.post("/runs/cancel", {"runId": run_id}).status_code == 404
    assert api.get("/runs/get").status_code == 400


def test_a_permanently_deleted_workflows_runs_answer_404(api: Api) -> None:
    workflow = api.create()
    run = start(api, workflow["id"])
    kept = start(api, api.create("Kept")["id"])
    assert api.post("/workflows/permanent-delete", {"workflowId": workflow["id"]}).status_code == 200
    assert api.get("/runs/get", id=run["id"]).status_code == 404
    assert api.get("/workflows/runs", id=workflow["id"]).status_code == 404
    assert report(api, run["id"], "running").status_code == 404
    assert api.post("/runs/cancel", {"runId": run["id"]}).status_code == 404
    assert api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "go"}).status_code == 404
    assert api.get("/runs/get", id=kept["id"]).status_code == 200
    assert start(api, api.create("Next")["id"])["runNumber"] == 3


def test_workflow_runs_are_paged_newest_first(api: Api) -> None:
    workflow = api.create()
    other = api.create("Other")
    started = [start(api, workflow["id"])["id"] for _ in range(5)]
    start(api, other["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"id": workflow["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/workflows/runs", **params).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        assert all(set(item) == RUN_FIELDS for item in page["items"])
        assert page["hasMore"] == (page["nextCursor"] is not None)
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            break
    assert pages == 3
    assert seen == list(reversed(started))
    everything = api.get("/workflows/runs", id=workflow["id"]).json()
    assert [item["runNumber"] for item in everything["items"]] == [5, 4, 3, 2, 1]
    assert everything["hasMore"] is False
    assert everything["nextCursor"] is None


def test_a_page_reflects_reports(api: Api) -> None:
    workflow = api.create()
    run = start(api, workflow["id"])
    report(api, run["id"], "running", costBreakdown=[GPT])
    item = api.get("/workflows/runs", id=workflow["id"]).json()["items"][0]
    assert item == api.get("/runs/get", id=run["id"]).json()
    assert item["status"] == "running"


def test_workflow_runs_of_a_workflow_with_none_is_an_empty_page(api: Api) -> None:
    page = api.get("/workflows/runs", id=api.create()["id"]).json()
    assert page == {"items": [], "nextCursor": None, "hasMore": False}


def test_workflow_runs_refuses_bad_paging_and_unknown_workflows(api: Api, other_api: Api) -> None:
    workflow = api.create()
    other = api.create("Other")
    for _ in range(3):
        start(api, workflow["id"])
        start(api, other["id"])
    cursor = api.get("/workflows/runs", id=workflow["id"], limit=1).json()["nextCursor"]
    assert api.get("/workflows/runs", id=workflow["id"], limit=1, cursor=cursor).status_code == 200
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert problem_field(api.get("/workflows/runs", id=workflow["id"], cursor=tampered)) == "cursor"
    assert api.get("/workflows/runs", id=workflow["id"], cursor="garbage").status_code == 400
    assert api.get("/workflows/runs", id=other["id"], cursor=cursor).status_code == 400
    list_cursor_source = api.get("/workflows/list", limit=1).json()["nextCursor"]
    assert api.get("/workflows/runs", id=workflow["id"], cursor=list_cursor_source).status_code == 400
    for limit in (0, 101, "x"):
        assert api.get("/workflows/runs", id=workflow["id"], limit=limit).status_code == 400
    assert api.get("/workflows/runs", id=workflow["id"], limit=100).status_code == 200
    assert api.get("/workflows/runs", id="00000000-0000-4000-8000-000000000000").status_code == 404
    assert other_api.get("/workflows/runs", id=workflow["id"]).status_code == 404
    assert api.get("/workflows/runs").status_code == 400


def test_twenty_simultaneous_starts_get_consecutive_numbers(api: Api) -> None:
    workflow = api.create()

    def one(_: int) -> Any:
        return api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "go"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(one, range(20)))
    assert [r.status_code for r in responses] == [201] * 20, [
        r.text for r in responses if r.status_code != 201
    ]
    numbers = sorted(r.json()["runNumber"] for r in responses)
    assert numbers == list(range(1, 21))
    listed = api.get("/workflows/runs", id=workflow["id"], limit=100).json()["items"]
    assert sorted(item["runNumber"] for item in listed) == numbers
    by_created = sorted(listed, key=lambda item: (item["createdAt"], item["runNumber"]))
    assert [item["runNumber"] for item in by_created] == numbers


def uploaded_image(api: Api) -> str:
    response = send(api.client, upload_url(api), PNG)
    assert response.status_code == 200, response.text
    storage_id: str = response.json()["storageId"]
    return storage_id


def test_reference_images_of_this_project_are_kept_on_the_run(api: Api) -> None:
    image = uploaded_image(api)
    run = start(api, api.create()["id"], referenceImageIds=[image])
    assert run["referenceImageIds"] == [image]
    assert api.get("/runs/get", id=run["id"]).json()["referenceImageIds"] == [image]


def test_unknown_or_foreign_reference_images_are_400_and_store_nothing(
    api: Api, other_api: Api, services: Services
) -> None:
    workflow = api.create()
    ours = uploaded_image(api)
    theirs = uploaded_image(other_api)
    position = head(services)
    for ids, field in (
        (["no-such-file"], "referenceImageIds[0]"),
        ([ours, theirs], "referenceImageIds[1]"),
    ):
        response = api.post(
            "/runs/start", {"workflowId": workflow["id"], "prompt": "go", "referenceImageIds": ids}
        )
        assert response.status_code == 400, response.text
        assert problem_field(response) == field
    assert head(services) == position
    assert api.get("/workflows/runs", id=workflow["id"]).json()["items"] == []


@pytest.mark.sqlite_only
def test_the_openapi_document_types_runs(api: Api) -> None:
    schemas = api.client.get("/schema/openapi.json").json()["components"]["schemas"]
    assert schemas["RunStatus"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert schemas["ReportRun"]["properties"]["status"] == {"$ref": "#/components/schemas/RunStatus"}
    assert schemas["RunDocument"]["properties"]["status"] == {"$ref": "#/components/schemas/RunStatus"}
    for body, field in (("StartRun", "githubRepoUrl"), ("ReportRun", "prUrl"), ("RunDocument", "prUrl")):
        assert schemas[body]["properties"][field]["format"] == "uri", (body, field)
    for field in ("createdAt", "startedAt", "completedAt"):
        assert schemas["RunDocument"]["properties"][field]["format"] == "date-time", field
    assert set(schemas["CostLine"]["required"]) == {"model", "cliId", "costUsd"}
    assert set(schemas["RunLinks"]["properties"]) == {"personas", "issues", "learningVersions"}
