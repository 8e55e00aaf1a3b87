"""`workflow-service verify`: 0 while the read models equal a fresh replay; 1, naming each difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from composition.services import Services
from tests.support.client import Api, start_run
from tests.support.data import OPUS
from tests.support.domain import a_run
from tests.support.failing_views import make_nul_unstorable, report_a_nul
from tests.support.servers import run_cli


def some_of_everything(api: Api) -> dict[str, str]:
    kept = api.create("Kept")["id"]
    api.post("/workflows/update", {"workflowId": kept, "description": "described"})
    run = start_run(api, kept)["id"]
    api.post("/runs/report", {"runId": run, "status": "succeeded", "costBreakdown": [OPUS]})
    trashed = api.create("Trashed")["id"]
    api.post("/workflows/delete", {"workflowId": trashed})
    erased = api.create("Erased")["id"]
    start_run(api, erased)
    api.post("/workflows/permanent-delete", {"workflowId": erased})
    return {"kept": kept, "trashed": trashed, "run": run}


def verify(database_url: str) -> tuple[int, str]:
    result = run_cli(database_url, "verify")
    return result.returncode, result.stdout + result.stderr


def test_verify_exits_0_on_a_healthy_store(api: Api, database_url: str) -> None:
    some_of_everything(api)
    code, output = verify(database_url)
    assert code == 0, output
    assert "the read models equal a fresh replay" in output
    assert "events/s" in output


def test_a_changed_row_is_named_by_view_row_and_column(
    api: Api, services: Services, database_url: str
) -> None:
    ids = some_of_everything(api)
    with services.database.transaction() as tx:
        row = tx.execute("SELECT item FROM workflow_summary WHERE workflow_id = ?", (ids["kept"],)).fetchone()
        item = {**json.loads(row["item"]), "name": "Changed behind its back"}
        tx.execute(
            "UPDATE workflow_summary SET item = ? WHERE workflow_id = ?", (json.dumps(item), ids["kept"])
        )

    code, output = verify(database_url)

    assert code == 1, output
    line = next(line for line in output.splitlines() if "Changed behind its back" in line)
    assert line.startswith(f"workflow_summary workflow_summary workflow_id={ids['kept']} column item: live ")
    assert "replayed " in line
    assert "workflow_summary workflow_summary: 1 difference\n" in output
    assert ": 1 difference\n" in output


def test_a_deleted_row_and_an_extra_row_are_named(api: Api, services: Services, database_url: str) -> None:
    ids = some_of_everything(api)
    with services.database.transaction() as tx:
        tx.execute("DELETE FROM runs WHERE run_id = ?", (ids["run"],))
        tx.execute(
            "INSERT INTO audit_run (run_id, workflow_id, project_id) VALUES (?, ?, ?)",
            ("run-from-nowhere", ids["kept"], api.project_id),
        )

    code, output = verify(database_url)

    assert code == 1, output
    assert f"runs runs run_id={ids['run']}: missing from the live view" in output
    assert "audit audit_run run_id=run-from-nowhere: only in the live view" in output
    assert ": 2 differences\n" in output


def test_a_changed_number_is_named_and_a_float_equal_to_1e_9_is_not(
    api: Api, services: Services, database_url: str
) -> None:
    some_of_everything(api)
    with services.database.transaction() as tx:
        tx.execute("UPDATE analytics_daily SET cost_usd = cost_usd * (1 + 1e-12)")
        tx.execute("UPDATE workflow_version SET version = version + 100 WHERE version = 2")

    code, output = verify(database_url)

    assert code == 1, output
    assert "analytics_daily" not in output
    assert "workflow_version workflow_version workflow_id=" in output
    assert "version=102: only in the live view" in output
    assert "version=2: missing from the live view" in output


def test_an_event_a_view_skipped_is_skipped_by_the_replay_too(
    api: Api,
    services: Services,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_nul_unstorable(services, monkeypatch)  # PostgreSQL refuses it by itself
    _, run_id = a_run(services, api.project_id)
    report_a_nul(services, api.project_id, run_id)
    assert services.projector.failures()[0] == 1
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)

    assert main(["verify"]) == 0
    assert "the read models equal a fresh replay" in capsys.readouterr().err
