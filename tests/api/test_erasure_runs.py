"""Permanent delete erases the workflow's runs too; data keys are wrapped; SQLite keeps no residue."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from domain.errors import ErasedError, NotFound
from domain.run_values import RunRequest
from store.key_encryption import WRAPPED_PREFIX, MasterKeyError
from tests.support.client import Api, start_run
from tests.support.data import ACTOR
from tests.support.stores import all_table_bytes, sqlite_file_bytes
from tests.support.views import replay_from_scratch

FIXTURES = Path(__file__).parent.parent / "fixtures"
OTHER_MASTER_KEY = "a1" * 32


def unique(label: str) -> str:
    return f"{label}-{uuid4().hex}"


class ErasableWorkflow:
    """A workflow with two runs whose every content field holds a string found nowhere else."""

    def __init__(self, api: Api) -> None:
        self.secrets = {
            label: unique(label)
            for label in (
                "name",
                "description",
                "prompt",
                "repo",
                "branch",
                "pr",
                "error",
                "model",
                "persona",
            )
        }
        s = self.secrets
        self.workflow = api.create(s["name"], description=s["description"])
        self.id = self.workflow["id"]
        self.run = start_run(
            api,
            self.id,
            s["prompt"],
            githubRepoUrl=f"https://github.com/acme/{s['repo']}",
            branchName=s["branch"],
        )
        report = {
            "runId": self.run["id"],
            "status": "failed",
            "prUrl": f"https://github.com/acme/app/pull/{s['pr']}",
            "error": s["error"],
            "costBreakdown": [{"model": s["model"], "cliId": "claude", "costUsd": 0.25}],
            "links": {"personas": [{"id": "p-1", "name": s["persona"]}]},
        }
        assert api.post("/runs/report", {"runId": self.run["id"], "status": "running"}).status_code == 200
        assert api.post("/runs/report", report).status_code == 200, report
        self.cancelled = start_run(api, self.id, f"{s['prompt']}-second")
        assert api.post("/runs/cancel", {"runId": self.cancelled["id"]}).status_code == 200
        self.run_ids = [self.run["id"], self.cancelled["id"]]

    def needles(self) -> list[bytes]:
        return [value.encode() for value in self.secrets.values()]


def test_run_content_is_sealed_with_the_workflows_key(api: Api, services: Services) -> None:
    flow = ErasableWorkflow(api)
    notifications = services.workflows.recorder.select_notifications(start=1, limit=1000)
    states = b"\n".join(n.state for n in notifications)
    assert [needle for needle in flow.needles() if needle in states] == []

    run_events = services.workflows.recorder.select_events(UUID(flow.run["id"]))
    started = services.workflows.mapper.clear_state(run_events[0])
    assert started["workflow_id"] == flow.id
    assert "prompt" not in started
    assert "sealed" in json.loads(run_events[0].state)
    assert services.workflows.mapper.to_domain_event(run_events[0]).prompt == flow.secrets["prompt"]
    got = api.get("/runs/get", id=flow.run["id"]).json()
    assert (got["prompt"], got["error"], got["status"]) == (
        flow.secrets["prompt"],
        flow.secrets["error"],
        "failed",
    )
    with services.database.transaction(commit=False) as tx:
        keys = tx.execute("SELECT aggregate_id FROM data_keys").fetchall()
    assert [row["aggregate_id"] for row in keys] == [flow.id], "runs use their workflow's key, not their own"


def test_erasing_a_workflow_erases_its_runs_on_every_route_and_in_the_store(
    api: Api, services: Services
) -> None:
    flow = ErasableWorkflow(api)
    kept = api.create("kept")
    kept_run = start_run(api, kept["id"], "kept prompt")

    assert api.post("/workflows/permanent-delete", {"workflowId": flow.id}).status_code == 200

    for run_id in flow.run_ids:
        assert api.get("/runs/get", id=run_id).status_code == 404
        assert api.post("/runs/report", {"runId": run_id, "status": "running"}).status_code == 404
        assert api.post("/runs/cancel", {"runId": run_id}).status_code == 404
        with pytest.raises(NotFound):
            services.runs.get_run(api.project_id, run_id)
        for stored in services.workflows.recorder.select_events(UUID(run_id)):
            if stored.topic.endswith("Cancelled"):  # nothing in it but who and when: never sealed
                assert "sealed" not in json.loads(stored.state)
                continue
            with pytest.raises(ErasedError):
                services.workflows.mapper.to_domain_event(stored)
    for route in ("/workflows/runs", "/workflows/related", "/workflows/analytics"):
        assert api.get(route, id=flow.id).status_code == 404
    assert api.post("/runs/start", {"workflowId": flow.id, "prompt": "again"}).status_code == 404
    with services.database.transaction(commit=False) as tx:
        assert tx.execute("SELECT 1 FROM data_keys WHERE aggregate_id = ?", (flow.id,)).fetchone() is None
    assert api.get("/runs/get", id=kept_run["id"]).json()["prompt"] == "kept prompt"

    replay_from_scratch(services)  # a rebuild brings none of it back
    assert [needle for needle in flow.needles() if needle in all_table_bytes(services)] == []
    assert api.get("/runs/get", id=flow.run["id"]).status_code == 404
    assert api.get("/workflows/runs", id=kept["id"]).json()["items"][0]["id"] == kept_run["id"]


def test_a_run_stored_after_the_erase_never_reaches_a_view(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race's worst order: the start read the workflow before the erase and sealed the run with
    the key before it was destroyed, but stored it after the erase, so one catch-up batch decodes
    it while the key still exists and then applies the erase before it."""
    flow = ErasableWorkflow(api)
    late_prompt = unique("late")
    read_before_the_erase = services.workflows.get_workflow(api.project_id, flow.id)
    services.stop_following()  # no catch-up of its own in flight either
    with monkeypatch.context() as patch:
        patch.setattr(services.projector, "catch_up", lambda up_to=None: None)  # no view moves yet
        patch.setattr(services.workflows, "get_workflow", lambda *_: read_before_the_erase)
        assert api.post("/workflows/permanent-delete", {"workflowId": flow.id}).status_code == 200
        late = services.runs.start_run(ACTOR, api.project_id, flow.id, RunRequest(prompt=late_prompt))
    services.projector.catch_up()

    assert api.get("/runs/get", id=str(late.run.id)).status_code == 404
    assert late_prompt.encode() not in all_table_bytes(services)
    with pytest.raises(ErasedError):
        services.workflows.mapper.to_domain_event(services.workflows.recorder.select_events(late.run.id)[0])

    head = services.workflows.recorder.max_notification_id()
    monkeypatch.setattr(services.workflows, "get_workflow", lambda *_: read_before_the_erase)
    with pytest.raises(NotFound):  # once the key is gone, a start is refused and stores nothing
        services.runs.start_run(ACTOR, api.project_id, flow.id, RunRequest(prompt=late_prompt))
    assert services.workflows.recorder.max_notification_id() == head
    with services.database.transaction(commit=False) as tx:
        assert tx.execute("SELECT 1 FROM data_keys WHERE aggregate_id = ?", (flow.id,)).fetchone() is None


def test_erasure_leaves_no_residue_in_the_tables_or_the_database_files(
    api: Api, services: Services, database_url: str
) -> None:
    neighbours = [ErasableWorkflow(api) for _ in range(2)]  # rows sharing pages with the erased ones
    flow = ErasableWorkflow(api)
    neighbours += [ErasableWorkflow(api) for _ in range(2)]
    key = services.workflows.data_keys.key_for(flow.id, create=False)
    assert key is not None
    with services.database.transaction(commit=False) as tx:
        wrapped = tx.execute("SELECT data_key FROM data_keys WHERE aggregate_id = ?", (flow.id,)).fetchone()
    needles = [*flow.needles(), key, key.hex().encode(), wrapped["data_key"].encode()]
    sqlite = services.database.dialect == "sqlite"
    before = all_table_bytes(services) + (sqlite_file_bytes(database_url) if sqlite else b"")
    assert flow.secrets["name"].encode() in before, "the search must find what is there"
    assert wrapped["data_key"].encode() in before

    assert api.post("/workflows/permanent-delete", {"workflowId": flow.id}).status_code == 200

    assert [n for n in needles if n in all_table_bytes(services)] == []
    if sqlite:
        assert [n for n in needles if n in sqlite_file_bytes(database_url)] == []
    kept = neighbours[0].secrets["name"]
    assert api.get("/workflows/get", id=neighbours[0].id).json()["name"] == kept


def test_data_keys_are_stored_wrapped_and_a_wrong_master_key_is_refused_at_start(
    api: Api, services: Services, database_url: str, tmp_path: Path
) -> None:
    flow = ErasableWorkflow(api)
    key = services.workflows.data_keys.key_for(flow.id, create=False)
    assert key is not None
    with services.database.transaction(commit=False) as tx:
        stored = tx.execute("SELECT data_key FROM data_keys").fetchone()["data_key"]
    assert stored.startswith(WRAPPED_PREFIX)
    assert key.hex() not in stored

    for create_tables in (True, False):
        with pytest.raises(MasterKeyError, match="is not the one this store's data keys were wrapped with"):
            Services(
                Settings(database_url=database_url, master_key=OTHER_MASTER_KEY), create_tables=create_tables
            )
    with pytest.raises(MasterKeyError, match="must hold 32 bytes"):
        Services(Settings(database_url=database_url, master_key="too short"))
    key_file = tmp_path / "master.key"
    key_file.write_text(str(services.workflows.data_keys.master_key.key.hex()))
    again = Services(Settings(database_url=database_url, master_key=None, master_key_file=key_file))
    try:
        assert again.runs.get_run(api.project_id, flow.run["id"]).prompt == flow.secrets["prompt"]
    finally:
        again.close()


@pytest.mark.postgres
def test_postgresql_without_a_master_key_refuses_to_start(make_postgres_url: Any) -> None:
    with pytest.raises(MasterKeyError, match="WFS_MASTER_KEY"):
        Services(Settings(database_url=make_postgres_url(), master_key=None, master_key_file=None))


def test_the_embedded_store_makes_a_key_file_beside_the_database_on_first_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
    settings = Settings(database_url=url, files_dir=tmp_path / "files", master_key=None, master_key_file=None)
    first = Services(settings)
    key_file = tmp_path / "data" / "store.db.key"
    try:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        project = first.accounts.create_project("p")
        with TestClient(create_app(services=first)) as client:
            api = Api(client, project.secret, project.project_id)
            flow = ErasableWorkflow(api)
    finally:
        first.close()
    text = key_file.read_text()
    assert text.strip().encode() not in (tmp_path / "data" / "store.db").read_bytes()

    restarted = Services(settings)
    try:
        assert key_file.read_text() == text
        assert restarted.runs.get_run(project.project_id, flow.run["id"]).prompt == flow.secrets["prompt"]
    finally:
        restarted.close()


def test_a_store_written_before_wrapping_is_migrated_and_its_runs_still_load(tmp_path: Path) -> None:
    """tests/fixtures/store-v1.db: plain-hex data keys and clear-text run events, as stored then."""
    store = tmp_path / "store-v1.db"
    shutil.copy(FIXTURES / "store-v1.db", store)
    answers = json.loads((FIXTURES / "store-v1.json").read_text())
    with sqlite3.connect(store) as connection:
        plain_keys = [row[0] for row in connection.execute("SELECT data_key FROM data_keys")]
    assert plain_keys
    assert not any(key.startswith(WRAPPED_PREFIX) for key in plain_keys)

    services = Services(Settings(database_url=f"sqlite:///{store}", files_dir=tmp_path / "files"))
    try:
        with services.database.transaction(commit=False) as tx:
            keys = [row["data_key"] for row in tx.execute("SELECT data_key FROM data_keys").fetchall()]
        assert len(keys) == len(plain_keys)
        assert all(key.startswith(WRAPPED_PREFIX) for key in keys)
        assert [k for k in plain_keys if k.encode() in sqlite_file_bytes(f"sqlite:///{store}")] == []
        assert services.workflows.data_keys.wrap_plain_keys() == 0
        replay_from_scratch(services)  # the old clear-text run events replay as they did
        with TestClient(create_app(services=services)) as client:
            api = Api(client, answers["key"], "")
            for run_id in answers["runIds"]:
                assert api.get("/runs/get", id=run_id).json() == answers["reads"][f"/runs/get?id={run_id}"]
            workflow_id = answers["workflowId"]
            new_run = start_run(api, workflow_id, "after the upgrade")
            assert api.post("/workflows/permanent-delete", {"workflowId": workflow_id}).status_code == 200
            for gone in (*answers["runIds"], new_run["id"]):
                assert api.get("/runs/get", id=gone).status_code == 404
    finally:
        services.close()


def test_answers_kept_for_idempotency_keys_are_erased_with_their_workflow(
    api: Api, services: Services
) -> None:
    name, prompt = unique("idem-name"), unique("idem-prompt")
    create_body = {"name": name, "pipelineSteps": [{"type": "designer"}]}
    created = api.post("/workflows/create", create_body, headers={"Idempotency-Key": "create-1"})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    run_body = {"workflowId": workflow_id, "prompt": prompt}
    started = api.post("/runs/start", run_body, headers={"Idempotency-Key": "start-1"})
    assert started.status_code == 201, started.text
    replayed = api.post("/runs/start", run_body, headers={"Idempotency-Key": "start-1"})
    assert replayed.json() == started.json()
    with services.database.transaction(commit=False) as tx:
        kept = b"".join(
            bytes(row["body"]) for row in tx.execute("SELECT body FROM idempotency_keys").fetchall()
        )
    assert kept, "the answers are kept"
    assert prompt.encode() not in kept, "a kept answer is sealed at rest"

    assert api.post("/workflows/permanent-delete", {"workflowId": workflow_id}).status_code == 200

    stored = all_table_bytes(services)
    assert name.encode() not in stored
    assert prompt.encode() not in stored
    assert api.post("/runs/start", run_body, headers={"Idempotency-Key": "start-1"}).status_code == 404
    again = api.post("/workflows/create", create_body, headers={"Idempotency-Key": "create-1"})
    assert again.status_code == 201, "the erased answer is gone, so the request runs afresh"
    assert again.json()["id"] != workflow_id
