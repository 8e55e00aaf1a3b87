"""`export` / `import`: a store moved to an empty store of the other kind answers every read the same.

The stores are built through the real app over HTTP; the commands run as real processes, as an
operator would run them; both stores are then read with the same keys and compared answer by answer.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings
from tests.support.cli import cli_in_process
from tests.support.client import Api
from tests.support.data import GPT, OPUS, PNG

pytestmark = pytest.mark.postgres

SECRET_NAME = "Zanzibar-7f3c erase me"
SECRET_DESCRIPTION = "quokka-91d2 confidential plan"
SECRET_PROMPT = "narwhal-5b8e launch codes"

BACKENDS: dict[int, Services] = {}


@contextmanager
def opened(database_url: str, files_dir: Path) -> Iterator[TestClient[Any]]:
    """The real app over a store, as a test client; `services_behind(client)` is its services."""
    settings = Settings(
        database_url=database_url, files_dir=files_dir, allowed_hosts=(*LOOPBACK_HOSTS, "testserver.local")
    )
    services = Services(settings)
    try:
        with TestClient(create_app(services=services)) as client:
            BACKENDS[id(client)] = services
            yield client
            del BACKENDS[id(client)]
    finally:
        services.close()


def services_behind(client: TestClient[Any]) -> Services:
    return BACKENDS[id(client)]


@dataclass
class Facts:
    """What the scenario made: the keys, and the ids and times worth reading back."""

    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    workflows: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    moments: list[str] = field(default_factory=list)
    erased: str = ""
    storage_id: str = ""


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def build(client: TestClient[Any], make_gap: Callable[[], None]) -> Facts:
    """Every kind of event in two projects, runs with reports, links and costs, an upload, an erasure."""
    services = services_behind(client)
    facts = Facts()
    apis = {}
    for name in ("alpha", "beta"):
        new = services.accounts.create_project(name)
        facts.keys[name], facts.key_ids[name] = new.secret, new.key_id
        apis[name] = Api(client, new.secret, new.project_id)
    alpha, beta = apis["alpha"], apis["beta"]

    main = alpha.create(
        description="Ship it",
        defaultConfig={"cliId": "claude", "model": "claude-opus-4-7", "timeoutMs": 60_000},
        maxIterations=3,
        personaPipelineSteps=[{"personaId": "p1", "cliId": "codex"}],
        workflowGraph={
            "nodes": [{"id": "n1", "x": 1}, {"id": "n2"}],
            "edges": [{"id": "e", "source": "n1", "target": "n2"}],
        },
    )["id"]
    facts.moments.append(main_created := ok(alpha.get("/workflows/get", id=main))["updatedAt"])
    time.sleep(0.01)
    ok(alpha.post("/workflows/update", {"workflowId": main, "description": "Ship it safely"}))
    make_gap()
    ok(alpha.post("/workflows/rename", {"workflowId": main, "name": "Release hardening II"}))
    ok(alpha.post("/workflows/versions/revert", {"workflowId": main, "versionId": f"{main}.v1"}))
    facts.moments.append(ok(alpha.get("/workflows/get", id=main))["updatedAt"])
    time.sleep(0.01)
    ok(alpha.post("/workflows/delete", {"workflowId": main}))
    facts.moments.append(ok(alpha.get("/workflows/get", id=main))["updatedAt"])
    time.sleep(0.01)
    ok(alpha.post("/workflows/restore", {"workflowId": main}))
    copy = ok(alpha.post("/workflows/duplicate", {"workflowId": main}), 201)["id"]
    facts.workflows += [main, copy]
    assert main_created

    upload = ok(alpha.post("/files/upload-url", {}))["uploadUrl"]
    facts.storage_id = ok(client.post(upload, content=PNG, headers={"Content-Type": "image/png"}))[
        "storageId"
    ]
    first = ok(
        alpha.post(
            "/runs/start",
            {
                "workflowId": main,
                "prompt": "Fix the flaky test",
                "githubRepoUrl": "https://github.com/acme/app",
                "branchName": "fix/flaky",
                "referenceImageIds": [facts.storage_id],
            },
        ),
        201,
    )["id"]
    ok(alpha.post("/runs/report", {"runId": first, "status": "running", "costBreakdown": [OPUS]}))
    links = {
        "personas": [{"id": "p1", "name": "Ada"}],
        "issues": [{"id": "ISS-1"}],
        "learningVersions": [{"id": "lv-3"}],
    }
    ok(
        alpha.post(
            "/runs/report",
            {
                "runId": first,
                "status": "succeeded",
                "prUrl": "https://github.com/acme/app/pull/7",
                "costBreakdown": [GPT],
                "links": links,
            },
        )
    )
    cancelled = ok(alpha.post("/runs/start", {"workflowId": main, "prompt": "Try again"}), 201)["id"]
    ok(alpha.post("/runs/cancel", {"runId": cancelled}))
    failed = ok(alpha.post("/runs/start", {"workflowId": copy, "prompt": "Once more"}), 201)["id"]
    ok(alpha.post("/runs/report", {"runId": failed, "status": "running"}))
    ok(alpha.post("/runs/report", {"runId": failed, "status": "failed", "error": "boom"}))
    facts.runs += [first, cancelled, failed]
    ok(alpha.post("/workflows/delete", {"workflowId": copy}))  # stays in the trash

    # Idempotency-Keys too: their stored answers hold the content, and move with the store.
    secret = {"name": SECRET_NAME, "description": SECRET_DESCRIPTION, "pipelineSteps": [{"type": "designer"}]}
    doomed = ok(alpha.post("/workflows/create", secret, headers={"Idempotency-Key": "doomed-1"}), 201)["id"]
    run = {"workflowId": doomed, "prompt": SECRET_PROMPT}
    ok(alpha.post("/runs/start", run, headers={"Idempotency-Key": "doomed-2"}), 201)
    ok(alpha.post("/workflows/permanent-delete", {"workflowId": doomed}))
    facts.erased = doomed

    other = beta.create("Other team", description="theirs")["id"]
    facts.runs.append(ok(beta.post("/runs/start", {"workflowId": other, "prompt": "Theirs"}), 201)["id"])
    facts.workflows.append(other)
    again = ok(
        alpha.post("/workflows/create", idempotent_create(), headers={"Idempotency-Key": "move-1"}), 201
    )
    facts.workflows.append(again["id"])
    facts.moments.append(ok(alpha.get("/workflows/get", id=main))["updatedAt"])
    return facts


def idempotent_create() -> dict[str, Any]:
    return {"name": "Made once", "pipelineSteps": [{"type": "designer"}]}


def reads(facts: Facts) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, route, params) of every read worth comparing."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for key, actor in facts.key_ids.items():
        found += [
            (key, "/workflows/list", {}),
            (key, "/workflows/list", {"deleted": "true"}),
            (key, "/workflows/list", {"limit": 1}),
            (key, "/events", {}),
            (key, "/events", {"type": "workflow.updated"}),
            (key, "/events", {"actor": actor}),
            (key, "/events", {"after": 5, "limit": 3}),
            (key, "/events", {"since": facts.moments[1], "until": facts.moments[-1]}),
        ]
        for workflow_id in facts.workflows:
            found += [
                (key, "/workflows/get", {"id": workflow_id}),
                (key, "/workflows/get", {"id": workflow_id, "version": 2}),
                (key, "/workflows/versions", {"id": workflow_id}),
                (key, "/workflows/runs", {"id": workflow_id}),
                (key, "/workflows/runs", {"id": workflow_id, "limit": 1}),
                (key, "/workflows/related", {"id": workflow_id}),
                (key, "/workflows/history", {"id": workflow_id}),
                (key, "/workflows/history", {"id": workflow_id, "limit": 2}),
                (key, "/events", {"workflowId": workflow_id}),
                *(
                    (key, "/workflows/analytics", {"id": workflow_id, "granularity": granularity})
                    for granularity in ("daily", "weekly", "monthly")
                ),
                *((key, "/workflows/get", {"id": workflow_id, "asOf": moment}) for moment in facts.moments),
            ]
        found += [(key, "/runs/get", {"id": run_id}) for run_id in facts.runs]
        found.append((key, "/events", {"workflowId": facts.erased}))  # kept, without content
        found += [
            (key, route, {"id": facts.erased})
            for route in ("/workflows/get", "/workflows/versions", "/workflows/history", "/workflows/runs")
        ]
    return found


def answer(client: TestClient[Any], key: str, route: str, params: dict[str, Any]) -> Any:
    response = client.get(f"/api/v1{route}", params=params, headers={"Authorization": f"Bearer {key}"})
    body = response.json()
    if route == "/workflows/analytics" and response.status_code == 200:
        body.pop("to")  # the time of the request
    return response.status_code, body


def next_cursors(client: TestClient[Any], facts: Facts) -> list[tuple[str, str, dict[str, Any]]]:
    """Reads that pass on a cursor the source store gave out: the cursor secret must move too."""
    found = []
    for key, route, params in reads(facts):
        if params.get("limit") in (1, 2, 3):
            response = client.get(
                f"/api/v1{route}", params=params, headers={"Authorization": f"Bearer {facts.keys[key]}"}
            )
            cursor = response.json().get("nextCursor")
            if cursor:
                found.append((key, route, {**params, "cursor": cursor}))
    assert len(found) >= 4
    return found


def positions(database_url: str, files_dir: Path) -> list[int]:
    with opened(database_url, files_dir) as client:
        recorder = services_behind(client).workflows.recorder
        return [n.id for n in recorder.select_notifications(start=1, limit=10_000)]


def postgres_gap(database_url: str) -> Callable[[], None]:
    """Consumes a position, as a rolled-back insert does, so the source has a gap to keep."""

    def make_gap() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT nextval(pg_get_serial_sequence('public.workflows_events', 'notification_id'))"
            )

    return make_gap


def no_gap() -> None:
    """SQLite never leaves a gap: its positions are rowids, one past the largest."""


@pytest.mark.parametrize("direction", ["sqlite-to-postgres", "postgres-to-sqlite"])
def test_a_moved_store_answers_every_read_the_same(
    direction: str, tmp_path: Path, make_postgres_url: Callable[[], str]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    postgres_url = make_postgres_url()
    source, target = (
        (sqlite_url, postgres_url) if direction == "sqlite-to-postgres" else (postgres_url, sqlite_url)
    )
    source_files, target_files = tmp_path / "files", tmp_path / "moved-files"
    with opened(source, source_files) as client:
        facts = build(client, postgres_gap(source) if source == postgres_url else no_gap)
    export_file = tmp_path / "export.jsonl"

    exported = cli_in_process(source, "export", "--out", str(export_file))
    assert exported.returncode == 0, exported.stderr
    assert "events/s" in exported.stderr.splitlines()[-1]
    imported = cli_in_process(target, "import", str(export_file))
    assert imported.returncode == 0, imported.stderr
    assert "imported" in imported.stderr
    assert "events/s" in imported.stderr
    shutil.copytree(source_files, target_files)  # upload bytes move beside the export, as the README says

    moved = positions(target, target_files)
    assert moved == positions(source, source_files)
    if source == postgres_url:
        assert moved != list(range(1, len(moved) + 1))  # the gap survived the move

    with opened(source, source_files) as before, opened(target, target_files) as after:
        found = 0
        for key, route, params in [*reads(facts), *next_cursors(before, facts)]:
            secret = facts.keys[key]
            expected = answer(before, secret, route, params)
            assert answer(after, secret, route, params) == expected, (route, params)
            found += expected[0] == 200
        assert found > 60  # many reads find something: the comparison is not of two sets of 404s
        erased = answer(after, facts.keys["alpha"], "/events", {"workflowId": facts.erased})[1]["items"]
        assert [item["type"] for item in erased][-1] == "workflow.erased"
        assert all(item["data"] == {"erased": True} for item in erased)
        assert_writes_continue(after, facts, moved[-1])


def assert_writes_continue(client: TestClient[Any], facts: Facts, last_position: int) -> None:
    """After the move: a retried request still replays, new events follow the old, uploads resolve."""
    alpha = Api(client, facts.keys["alpha"], "")
    replayed = alpha.post("/workflows/create", idempotent_create(), headers={"Idempotency-Key": "move-1"})
    assert ok(replayed, 201)["id"] == facts.workflows[-1]
    main = facts.workflows[0]
    ok(
        alpha.post(
            "/runs/start", {"workflowId": main, "prompt": "after", "referenceImageIds": [facts.storage_id]}
        ),
        201,
    )
    items = ok(alpha.get("/events", after=last_position))["items"]
    assert [item["type"] for item in items] == ["run.started"]
    assert items[0]["position"] > last_position


def test_the_export_holds_nothing_of_an_erased_workflow(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with opened(url, tmp_path / "files") as client:
        facts = build(client, no_gap)
    exported = cli_in_process(url, "export")
    assert exported.returncode == 0, exported.stderr
    text = exported.stdout
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["kind"] for line in (lines[0], lines[-1])] == ["header", "end"]
    states = [base64.b64decode(line["state"]).decode() for line in lines if line["kind"] == "event"]
    assert len(states) == lines[0]["counts"]["events"] == lines[-1]["counts"]["events"]
    erased_events = [
        line for line in lines if line["kind"] == "event" and line["originatorId"] == facts.erased
    ]
    assert erased_events  # its events are kept, sealed
    for secret in (SECRET_NAME, SECRET_DESCRIPTION, SECRET_PROMPT, "Zanzibar", "quokka", "narwhal"):
        assert secret not in text
        assert not any(secret in state for state in states)
    assert "Ship it safely" not in text  # content is never decrypted, even a live workflow's
    assert not any(facts.keys[name] in text for name in facts.keys)  # key hashes only
    data_keys = {line["row"]["aggregate_id"] for line in lines if line.get("table") == "data_keys"}
    assert facts.workflows[0] in data_keys
    assert facts.erased not in data_keys
    assert sum(line.get("table") == "idempotency_keys" for line in lines) == 3


def test_import_refuses_a_store_that_is_not_empty(
    tmp_path: Path, make_postgres_url: Callable[[], str]
) -> None:
    source = f"sqlite:///{tmp_path / 'store.db'}"
    with opened(source, tmp_path / "files") as client:
        services_behind(client).accounts.create_project("alpha")
    export_file = tmp_path / "export.jsonl"
    assert cli_in_process(source, "export", "--out", str(export_file)).returncode == 0
    target = make_postgres_url()
    assert cli_in_process(target, "import", str(export_file)).returncode == 0
    again = cli_in_process(target, "import", str(export_file))
    assert again.returncode == 1
    assert "not empty" in again.stderr
    assert "projects" in again.stderr
    into_itself = cli_in_process(source, "import", str(export_file))
    assert into_itself.returncode == 1
    assert "not empty" in into_itself.stderr


def test_import_refuses_another_master_key_and_a_cut_file(
    tmp_path: Path, make_postgres_url: Callable[[], str]
) -> None:
    source = f"sqlite:///{tmp_path / 'store.db'}"
    with opened(source, tmp_path / "files") as client:
        build(client, no_gap)
    export_file = tmp_path / "export.jsonl"
    assert cli_in_process(source, "export", "--out", str(export_file)).returncode == 0
    target = make_postgres_url()

    wrong_key = cli_in_process(target, "import", str(export_file), WFS_MASTER_KEY="ab" * 32)
    assert wrong_key.returncode == 1
    assert "master key" in wrong_key.stderr

    sqlite_target = tmp_path / "keyless.db"
    keyless = cli_in_process(f"sqlite:///{sqlite_target}", "import", str(export_file), WFS_MASTER_KEY="")
    assert keyless.returncode == 1
    assert "copy the source's key file" in keyless.stderr
    assert not Path(f"{sqlite_target}.key").exists()  # no new random key was made in its place

    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(export_file.read_text().splitlines(keepends=True)[:-3]))
    cut_short = cli_in_process(target, "import", str(cut))
    assert cut_short.returncode == 1
    assert "cut short" in cut_short.stderr
    with opened(target, tmp_path / "files") as client:  # nothing of it was kept
        assert services_behind(client).workflows.recorder.max_notification_id() in (None, 0)

    assert cli_in_process(target, "import", str(tmp_path / "missing.jsonl")).returncode == 1
    assert cli_in_process(target, "import", str(export_file)).returncode == 0
