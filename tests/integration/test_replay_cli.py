"""`workflow-service replay`: a workflow as it was, from the event store, the same as the API answers it."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from composition.services import Services
from tests.support.cli import cli_in_process
from tests.support.client import Api


def replay(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_in_process(database_url, "replay", *args)


def replayed(database_url: str, *args: str) -> Any:
    done = replay(database_url, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write(api: Api, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(route, body)
    assert response.status_code in (200, 201), response.text
    time.sleep(0.002)  # each event at its own millisecond, so every moment names one state
    found: dict[str, Any] = response.json()
    return found


def build(api: Api) -> tuple[str, list[dict[str, Any]]]:
    """A workflow through every kind of change; the documents after each write."""
    first = write(
        api,
        "/workflows/create",
        {"name": "Nightly", "description": "v1", "pipelineSteps": [{"type": "designer", "cliId": "claude"}]},
    )
    workflow_id = first["id"]
    states = [first]
    states.append(write(api, "/workflows/update", {"workflowId": workflow_id, "description": "v2"}))
    states.append(write(api, "/workflows/rename", {"workflowId": workflow_id, "name": "Nightly build"}))
    states.append(write(api, "/workflows/delete", {"workflowId": workflow_id}))
    states.append(write(api, "/workflows/restore", {"workflowId": workflow_id}))
    revert = {"workflowId": workflow_id, "versionId": f"{workflow_id}.v1"}
    states.append(write(api, "/workflows/versions/revert", revert))
    return workflow_id, states


def test_replay_by_version_answers_what_get_with_version_answers(api: Api, services: Services) -> None:
    workflow_id, _ = build(api)
    url = services.settings.database_url
    for version in (1, 2, 3, 4):
        expected = api.get("/workflows/get", id=workflow_id, version=version).json()
        assert replayed(url, "--workflow", workflow_id, "--version", str(version)) == expected


def test_replay_at_a_time_answers_what_get_as_of_answers(api: Api, services: Services) -> None:
    workflow_id, states = build(api)
    url = services.settings.database_url
    moments = [state["updatedAt"] for state in states]
    deleted = next(state for state in states if state["deletedAt"] is not None)
    assert deleted["updatedAt"] in moments  # the moment it was in the trash is one of them
    for moment in moments:
        expected = api.get("/workflows/get", id=workflow_id, asOf=moment).json()
        assert replayed(url, "--workflow", workflow_id, "--at", moment) == expected
    assert replayed(url, "--workflow", workflow_id, "--at", deleted["updatedAt"])["deletedAt"] is not None
    now = api.get("/workflows/get", id=workflow_id).json()
    assert replayed(url, "--workflow", workflow_id, "--at", "2999-01-01T00:00:00Z") == now


def test_replay_events_lists_what_history_lists(api: Api, services: Services) -> None:
    workflow_id, _ = build(api)
    url = services.settings.database_url
    history = api.get("/workflows/history", id=workflow_id).json()["items"]
    without_positions = [{k: v for k, v in item.items() if k != "position"} for item in history]
    assert replayed(url, "--workflow", workflow_id, "--version", "4", "--events") == without_positions
    up_to_two = replayed(url, "--workflow", workflow_id, "--version", "2", "--events")
    assert [item["type"] for item in up_to_two] == ["workflow.created", "workflow.updated"]
    assert up_to_two[1]["data"]["changes"] == {"description": {"from": "v1", "to": "v2"}}
    assert up_to_two[1]["actor"]["keyName"] == "tests key"


def test_replay_refuses_what_does_not_exist(api: Api, other_api: Api, services: Services) -> None:
    workflow_id, _ = build(api)
    url = services.settings.database_url
    erased = api.create("Secret")["id"]
    assert api.post("/workflows/permanent-delete", {"workflowId": erased}).status_code == 200
    run_id = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "go"}).json()["id"]
    cases = [
        (["--workflow", "not-an-id", "--version", "1"], "no workflow"),
        (["--workflow", "00000000-0000-4000-8000-000000000000", "--version", "1"], "no workflow"),
        (["--workflow", erased, "--version", "1"], "no workflow"),
        (["--workflow", run_id, "--version", "1"], "no workflow"),
        (["--workflow", workflow_id, "--version", "5"], "versions 1 to 4"),
        (["--workflow", workflow_id, "--version", "0"], "versions 1 to 4"),
        (["--workflow", workflow_id, "--at", "2001-01-01T00:00:00Z"], "did not exist yet"),
        (["--workflow", workflow_id, "--at", "yesterday"], "ISO 8601"),
    ]
    for args, message in cases:
        done = replay(url, *args)
        assert done.returncode == 1, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
        assert done.stdout == ""
    assert replay(url, "--workflow", workflow_id).returncode == 2  # --version or --at is required
