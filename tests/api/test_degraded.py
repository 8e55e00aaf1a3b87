"""Over HTTP: once a stored event breaks a read model, writes still answer and are read, `/ready`
says `degraded` with the detail, and a restart and a rebuild still work."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from eventsourcing.utils import get_topic
from litestar.testing import TestClient

from api.app import create_app
from api.cli import main, serve
from api.cli.serve import serve_command
from composition.services import Services
from composition.settings import Settings
from domain.run import Run
from domain.run_values import LinkRef, RunLinks, RunReport, RunStatus
from projections.projector import Projector
from projections.workflow_summary import WorkflowSummaryProjection
from tests.support.client import Api, start_run
from tests.support.domain import a_run, head
from tests.support.failing_views import fail_on, make_nul_unstorable, report_a_nul
from tests.support.servers import start_server, stop_server


def ready(client: TestClient[Any]) -> dict[str, Any]:
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def expected_error(services: Services) -> str:
    return "DataError" if services.database.dialect == "postgres" else "ValueError"


def unreachable(services: Services) -> BaseException:
    if services.database.dialect == "postgres":
        return psycopg.OperationalError("connection refused")
    return sqlite3.OperationalError("database is locked")


def test_ready_is_ready_while_nothing_was_skipped(client: TestClient[Any], api: Api) -> None:
    api.create()
    body = ready(client)
    assert body["status"] == "ready"
    assert (body["failureCount"], body["failures"]) == (0, [])
    assert {view["position"] for view in body["projections"].values()} == {body["head"]}


def test_after_an_event_a_view_cannot_apply_writes_answer_and_ready_is_degraded(
    services: Services, client: TestClient[Any], api: Api, other_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_nul_unstorable(services, monkeypatch)
    workflow_id = api.create()["id"]
    run_id = start_run(api, workflow_id)["id"]
    poisoned_at = report_a_nul(services, api.project_id, run_id)

    reported = api.post(
        "/runs/report", {"runId": run_id, "status": "running", "links": {"issues": [{"id": "ISS-7"}]}}
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["branchName"] == "poisoned"  # the runs view applied the skipped event
    same_project = api.create("after the bad event")
    assert api.get("/workflows/get", id=same_project["id"]).status_code == 200
    assert start_run(api, same_project["id"])
    other_project = other_api.create("elsewhere")
    listed = other_api.get("/workflows/list").json()["items"]
    assert [item["id"] for item in listed] == [other_project["id"]]
    related = api.get("/workflows/related", id=workflow_id).json()
    assert [issue["id"] for issue in related["issues"]] == ["ISS-7"]

    body = ready(client)
    assert body["status"] == "degraded"
    assert body["failureCount"] == 1
    [failure] = body["failures"]
    assert failure["failedAt"].endswith("Z")
    del failure["failedAt"]
    assert failure == {
        "view": "related",
        "position": poisoned_at,
        "topic": get_topic(Run.Reported),
        "error": expected_error(services),
    }
    assert {name: view["position"] for name, view in body["projections"].items()} == {
        name: head(services) for name in body["projections"]
    }
    assert "related" in body["projections"]


def test_a_write_answers_when_its_read_models_cannot_catch_up(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_: Any, **__: Any) -> None:
        raise unreachable(services)

    monkeypatch.setattr(services.projector, "catch_up", down)
    created = api.post("/workflows/create", {"name": "stored", "pipelineSteps": [{"type": "designer"}]})
    assert created.status_code == 201, created.text
    monkeypatch.undo()

    services.projector.catch_up()  # what the follower does once the database answers again
    assert api.get("/workflows/get", id=created.json()["id"]).json()["name"] == "stored"


def test_a_restart_over_the_store_serves_and_stays_degraded(
    services: Services, api: Api, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_nul_unstorable(services, monkeypatch)
    _, run_id = a_run(services, api.project_id)
    services.projector.catch_up()
    report_a_nul(services, api.project_id, run_id)

    restarted = Services(Settings(database_url=database_url, files_dir=tmp_path / "files"))
    try:
        with TestClient(create_app(services=restarted)) as client:
            assert ready(client)["status"] == "degraded"
            again = Api(client, api.key, api.project_id)
            created = again.create("after the restart")
            assert again.get("/workflows/get", id=created["id"]).status_code == 200
    finally:
        restarted.close()


def test_serve_starts_when_catching_up_at_start_fails(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    served: list[dict[str, Any]] = []

    def failing_catch_up(self: Projector, up_to: int | None = None) -> None:
        raise RuntimeError("a read model cannot apply an event")

    monkeypatch.setattr(Projector, "catch_up", failing_catch_up)
    monkeypatch.setattr(serve, "run_server", lambda **kwargs: served.append(kwargs))
    code = serve_command(argparse.Namespace(host="127.0.0.1", port=8000, workers=1))
    assert code == 0
    assert [call["port"] for call in served] == [8000]


@pytest.mark.postgres
def test_serve_restarts_over_a_stored_nul(make_postgres_url: Any, tmp_path: Path) -> None:
    """The deployment seen failing: `serve` exited 1 on a PostgreSQL store holding such an event."""
    database_url = make_postgres_url()
    services = Services(Settings(database_url=database_url, files_dir=tmp_path / "files"))
    try:
        project = services.accounts.create_project("p")
        workflow_id, run_id = a_run(services, project.project_id)
        services.runs.report_run(  # stored, not applied: the server meets it at start
            {"keyId": "k1", "keyName": "ops"},
            project.project_id,
            run_id,
            RunReport(
                status=RunStatus.RUNNING, links=RunLinks(personas=[LinkRef("p-nul", "Ada\x00Lovelace")])
            ),
        )
    finally:
        services.close()
    server = start_server(database_url)
    try:
        headers = {"Authorization": f"Bearer {project.secret}"}
        body = httpx.get(f"{server.base_url}/ready").json()
        assert (body["status"], [f["view"] for f in body["failures"]]) == ("degraded", ["related"])
        created = httpx.post(
            f"{server.base_url}/api/v1/workflows/create",
            json={"name": "after", "pipelineSteps": [{"type": "designer"}]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        runs = httpx.get(
            f"{server.base_url}/api/v1/workflows/runs", params={"id": workflow_id}, headers=headers
        )
        assert [run["id"] for run in runs.json()["items"]] == [run_id]
    finally:
        stop_server(server)


def test_rebuild_tries_the_event_again_and_the_views_keep_answering(
    services: Services,
    client: TestClient[Any],
    api: Api,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_nul_unstorable(services, monkeypatch)
    workflow_id = api.create()["id"]
    run_id = start_run(api, workflow_id)["id"]
    poisoned_at = report_a_nul(services, api.project_id, run_id)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)

    assert main(["rebuild"]) == 0
    printed = capsys.readouterr()
    assert "related: rebuilt up to position" in printed.out
    assert f"related: skipped the event at position {poisoned_at}" in printed.err
    body = ready(client)
    assert (body["status"], [(f["view"], f["position"]) for f in body["failures"]]) == (
        "degraded",
        [("related", poisoned_at)],
    )
    assert [item["id"] for item in api.get("/workflows/list").json()["items"]] == [workflow_id]
    assert api.get("/runs/get", id=run_id).json()["branchName"] == "poisoned"


def test_a_rebuild_that_fails_keeps_the_old_view(
    services: Services,
    api: Api,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workflow_id = api.create("kept")["id"]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    fail_on(monkeypatch, WorkflowSummaryProjection, lambda event: True, lambda: unreachable(services))

    assert main(["rebuild"]) == 1
    assert "workflow_summary: not rebuilt, the old view is kept" in capsys.readouterr().err
    listed = api.get("/workflows/list")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [workflow_id]
