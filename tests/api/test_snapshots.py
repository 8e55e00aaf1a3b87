"""Snapshots: taken every WFS_SNAPSHOT_INTERVAL events of a workflow, loaded from, sealed, never of runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from domain.errors import ErasedError, NotFound
from domain.snapshots import SNAPSHOT_INTERVAL_VARIABLE, snapshot_interval
from domain.workflow import Actor, Workflow
from domain.workflow_content import WorkflowChanges, WorkflowContent
from tests.support.client import Api

INTERVAL = 5
ACTOR: Actor = {"keyId": "k-test", "keyName": "tests key"}
CONTENT = WorkflowContent.from_data(
    {"name": "written before snapshots", "description": "v1", "pipelineSteps": [{"type": "designer"}]}
)
SNAPSHOT_TOPIC = get_topic(Workflow.Snapshot)
FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def small_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the services fixture builds the service, which reads it once."""
    monkeypatch.setenv(SNAPSHOT_INTERVAL_VARIABLE, str(INTERVAL))


def update(api: Api, workflow_id: str, description: str) -> dict[str, Any]:
    response = api.post("/workflows/update", {"workflowId": workflow_id, "description": description})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def workflow_with_versions(api: Api, versions: int, label: str = "v") -> str:
    """A workflow whose content version n has description f"{label}{n}"."""
    workflow_id: str = api.create("long history", description=f"{label}1")["id"]
    for version in range(2, versions + 1):
        update(api, workflow_id, f"{label}{version}")
    return workflow_id


def snapshot_versions(services: Services, aggregate_id: str) -> list[int]:
    assert services.workflows.snapshots is not None
    rows = services.workflows.snapshots.recorder.select_events(UUID(aggregate_id))
    assert all(row.topic == SNAPSHOT_TOPIC for row in rows)
    return [row.originator_version for row in rows]


def raw_snapshots(services: Services, aggregate_id: str) -> list[bytes]:
    assert services.workflows.snapshots is not None
    return [row.state for row in services.workflows.snapshots.recorder.select_events(UUID(aggregate_id))]


class EventReads:
    """Records every read of a stream from the event table (the `gt` it started after)."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[UUID, int | None]] = []
        recorder: Any = services.workflows.events.recorder
        select = recorder.select_events

        def recording(originator_id: UUID, **kwargs: Any) -> Any:
            self.calls.append((originator_id, kwargs.get("gt")))
            return select(originator_id, **kwargs)

        monkeypatch.setattr(recorder, "select_events", recording)

    def starts(self, aggregate_id: str) -> list[int | None]:
        return [gt for originator_id, gt in self.calls if originator_id == UUID(aggregate_id)]


class SnapshotDecodes:
    """Records every snapshot the mapper unsealed."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoded: list[tuple[UUID, int]] = []
        mapper: Any = services.workflows.mapper
        decode = mapper.to_domain_event

        def recording(stored: Any) -> Any:
            event = decode(stored)
            if stored.topic == SNAPSHOT_TOPIC:
                self.decoded.append((event.originator_id, event.originator_version))
            return event

        monkeypatch.setattr(mapper, "to_domain_event", recording)


def test_a_snapshot_is_taken_at_every_interval(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, 4)
    assert snapshot_versions(services, workflow_id) == []
    update(api, workflow_id, "v5")
    assert snapshot_versions(services, workflow_id) == [5]
    api.post("/workflows/delete", {"workflowId": workflow_id})
    api.post("/workflows/restore", {"workflowId": workflow_id})  # deletes and restores are events too
    for version in range(6, 10):
        update(api, workflow_id, f"v{version}")
    assert snapshot_versions(services, workflow_id) == [5, 10]


def test_a_write_loads_from_the_latest_snapshot(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = workflow_with_versions(api, 12)
    reads = EventReads(services, monkeypatch)
    decodes = SnapshotDecodes(services, monkeypatch)

    assert update(api, workflow_id, "v13")["version"] == 13

    assert reads.starts(workflow_id) == [10]
    assert decodes.decoded == [(UUID(workflow_id), 10)]


def test_content_at_every_version_is_right_after_snapshots(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, 7)
    api.post("/workflows/delete", {"workflowId": workflow_id})
    api.post("/workflows/restore", {"workflowId": workflow_id})
    for version in range(8, 14):
        update(api, workflow_id, f"v{version}")
    assert snapshot_versions(services, workflow_id) == [5, 10, 15]

    project = api.project_id
    for version in range(1, 14):
        assert services.workflows.content_at(project, workflow_id, version).description == f"v{version}"
    for version in (1, 4, 5, 6, 11, 13):
        response = api.post(
            "/workflows/versions/revert",
            {"workflowId": workflow_id, "versionId": f"{workflow_id}.v{version}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["description"] == f"v{version}"
    assert api.get("/workflows/get", id=workflow_id).json()["description"] == "v13"
    with pytest.raises(NotFound):
        services.workflows.content_at(project, workflow_id, 20)


def test_content_at_is_the_same_with_snapshots_off(
    api: Api, services: Services, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = workflow_with_versions(api, 12)
    with_snapshots = [services.workflows.content_at(api.project_id, workflow_id, v) for v in range(1, 13)]
    monkeypatch.setenv(SNAPSHOT_INTERVAL_VARIABLE, "0")
    plain = Services(Settings(database_url=database_url, files_dir=tmp_path / "plain"), create_tables=False)
    try:
        assert plain.workflows.snapshotting is None
        assert [
            plain.workflows.content_at(api.project_id, workflow_id, v) for v in range(1, 13)
        ] == with_snapshots
        assert plain.workflows.get_workflow(api.project_id, workflow_id).content.description == "v12"
    finally:
        plain.close()


def test_a_permanent_delete_leaves_no_readable_snapshot(
    api: Api, services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"secret-{uuid4().hex}"
    workflow_id = workflow_with_versions(api, 9, label=secret)
    assert snapshot_versions(services, workflow_id) == [5]
    assert all(secret.encode() not in state for state in raw_snapshots(services, workflow_id))

    assert api.post("/workflows/permanent-delete", {"workflowId": workflow_id}).status_code == 200

    assert snapshot_versions(services, workflow_id) == [5]  # the erase (version 10) is never snapshotted
    assert services.workflows.snapshots is not None
    for stored in services.workflows.snapshots.recorder.select_events(UUID(workflow_id)):
        assert secret.encode() not in stored.state
        with pytest.raises(ErasedError):
            services.workflows.mapper.to_domain_event(stored)
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        on_disk = b"".join(
            Path(f"{path}{end}").read_bytes() for end in ("", "-wal") if Path(f"{path}{end}").exists()
        )
        assert secret.encode() not in on_disk


def test_an_erased_workflow_never_loads_from_a_snapshot(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = workflow_with_versions(api, 12)
    api.post("/workflows/permanent-delete", {"workflowId": workflow_id})
    decodes = SnapshotDecodes(services, monkeypatch)

    assert api.get("/workflows/get", id=workflow_id).status_code == 404
    assert update_status(api, workflow_id) == 404
    revert = {"workflowId": workflow_id, "versionId": f"{workflow_id}.v2"}
    assert api.post("/workflows/versions/revert", revert).status_code == 404
    assert api.post("/runs/start", {"workflowId": workflow_id, "prompt": "go"}).status_code == 404
    with pytest.raises(NotFound):
        services.workflows.get_workflow(api.project_id, workflow_id)
    assert decodes.decoded == []


def update_status(api: Api, workflow_id: str) -> int:
    status: int = api.post("/workflows/update", {"workflowId": workflow_id, "description": "x"}).status_code
    return status


def test_runs_get_no_snapshots_and_skip_the_look_up(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = api.create()["id"]
    run = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "go"}).json()
    assert services.workflows.snapshots is not None
    snapshot_recorder: Any = services.workflows.snapshots.recorder
    looked_up: list[UUID] = []
    select = snapshot_recorder.select_events

    def recording(originator_id: UUID, **kwargs: Any) -> Any:
        looked_up.append(originator_id)
        return select(originator_id, **kwargs)

    monkeypatch.setattr(snapshot_recorder, "select_events", recording)
    for _ in range(INTERVAL + 1):
        response = api.post("/runs/report", {"runId": run["id"], "status": "running"})
        assert response.status_code == 200, response.text
    assert api.post("/runs/cancel", {"runId": run["id"]}).status_code == 200

    monkeypatch.undo()
    assert snapshot_versions(services, run["id"]) == []
    assert UUID(run["id"]) not in looked_up


def test_a_snapshot_that_cannot_be_stored_never_fails_the_write(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = workflow_with_versions(api, 4)
    assert services.workflows.snapshots is not None

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("snapshot table unavailable")

    monkeypatch.setattr(services.workflows.snapshots, "put", broken)
    assert update(api, workflow_id, "v5")["version"] == 5
    monkeypatch.undo()
    assert snapshot_versions(services, workflow_id) == []
    assert api.get("/workflows/get", id=workflow_id).json()["description"] == "v5"
    update(api, workflow_id, "v6")  # its load replayed a whole interval: it takes the missed snapshot
    assert snapshot_versions(services, workflow_id) == [5]


@pytest.fixture
def old_store(tmp_path: Path) -> Iterator[tuple[Services, Api]]:
    shutil.copy(FIXTURES / "store-v1.db", tmp_path / "store-v1.db")
    url = f"sqlite:///{tmp_path / 'store-v1.db'}"
    services = Services(Settings(database_url=url, files_dir=tmp_path / "files"))
    key = json.loads((FIXTURES / "store-v1.json").read_text())["key"]
    with TestClient(create_app(services=services)) as client:
        yield services, Api(client, key, project_id="")
    services.close()


def test_a_store_from_before_snapshots_gets_the_table_and_then_snapshots(
    old_store: tuple[Services, Api],
) -> None:
    services, api = old_store
    item = api.get("/workflows/list").json()["items"][0]
    workflow_id, start = item["id"], item["version"]
    for version in range(start + 1, start + 2 * INTERVAL + 1):
        update(api, workflow_id, f"v{version}")
    assert len(snapshot_versions(services, workflow_id)) == 2
    for version in (start, start + 1, start + INTERVAL + 1):
        revert = {"workflowId": workflow_id, "versionId": f"{workflow_id}.v{version}"}
        response = api.post("/workflows/versions/revert", revert)
        assert response.status_code == 200, response.text
        expected = item["description"] if version == start else f"v{version}"
        assert response.json()["description"] == expected


@pytest.mark.parametrize(("text", "interval"), [(None, 20), ("", 20), ("0", 0), ("2", 2), ("100", 100)])
def test_the_interval_setting(text: str | None, interval: int) -> None:
    assert snapshot_interval(text) == interval


@pytest.mark.parametrize("text", ["1", "-5", "many"])
def test_a_bad_interval_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=SNAPSHOT_INTERVAL_VARIABLE):
        snapshot_interval(text)


def test_a_workflow_erased_before_its_key_is_destroyed_is_already_gone(api: Api, services: Services) -> None:
    workflow_id = workflow_with_versions(api, 12)
    services.workflows.permanently_delete_workflow(ACTOR, api.project_id, workflow_id)
    # Not settled: the erasure policy has not destroyed the key yet, so the snapshot still opens.
    with pytest.raises(NotFound):
        services.workflows.get_workflow(api.project_id, workflow_id)
    with pytest.raises(NotFound):
        services.workflows.content_at(api.project_id, workflow_id, 3)


def test_a_history_without_snapshots_gets_one_at_its_next_write(
    api: Api, services: Services, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SNAPSHOT_INTERVAL_VARIABLE, "0")
    plain = Services(Settings(database_url=database_url, files_dir=tmp_path / "plain"), create_tables=False)
    try:
        workflow_id = str(plain.workflows.create_workflow(ACTOR, api.project_id, CONTENT).workflow.id)
        for version in range(2, 13):
            plain.workflows.update_workflow(
                ACTOR, api.project_id, workflow_id, WorkflowChanges(description=f"v{version}")
            )
    finally:
        plain.close()
    assert snapshot_versions(services, workflow_id) == []

    update(api, workflow_id, "v13")  # its load replayed 12 events: more than an interval
    assert snapshot_versions(services, workflow_id) == [12]
    reads = EventReads(services, monkeypatch)
    update(api, workflow_id, "v14")
    assert reads.starts(workflow_id) == [12]
    assert api.get("/workflows/get", id=workflow_id).json()["description"] == "v14"
