"""Data keys are cached per process, made in the transaction of a workflow's first events, and
erasure still erases: a process that kept a destroyed key shows nothing of the workflow through the API.

"Another process" is a second services on the same store, taken out of the set of instances an
erasure evicts in this process (`DataKeys._live`), so its cache keeps the key as a real other
process would; its follower may apply the erase too, which then evicts nothing of it either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings
from domain.workflow import Workflow
from domain.workflow_content import WorkflowContent
from store.data_keys import DataKeys
from tests.support.client import Api, start_run
from tests.support.data import ACTOR, STEPS


@pytest.fixture
def other_process(services: Services, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(
        database_url=services.settings.database_url,
        files_dir=tmp_path / "other-files",
        allowed_hosts=(*LOOPBACK_HOSTS, "testserver.local"),
    )
    other = Services(settings, create_tables=False)
    DataKeys._live.discard(other.workflows.data_keys)
    yield other
    other.close()


def test_a_key_kept_by_another_process_shows_nothing_of_the_erased_workflow(
    api: Api, services: Services, other_process: Services
) -> None:
    with TestClient(create_app(services=other_process)) as client:
        there = Api(client, api.key, api.project_id)
        created = there.create("kept elsewhere", description="secret plan")
        workflow_id = created["id"]
        run = start_run(there, workflow_id, "a secret prompt")
        keyed = {"Idempotency-Key": "update-before-the-erase"}
        update = {"workflowId": workflow_id, "description": "secret update"}
        assert there.post("/workflows/update", update, keyed).status_code == 200
        assert other_process.workflows.data_keys.key(workflow_id) is not None  # cached there

        erased = services.workflows.permanently_delete_workflow(ACTOR, api.project_id, workflow_id)
        services.make_visible(erased.position)
        assert services.workflows.data_keys.key_for(workflow_id, create=False) is None
        assert other_process.workflows.data_keys.key(workflow_id) is not None  # still cached there

        assert there.get("/workflows/get", id=workflow_id).status_code == 404
        assert there.get("/workflows/history", id=workflow_id).status_code == 404
        assert there.get("/workflows/versions", id=workflow_id).status_code == 404
        assert there.post("/workflows/update", {"workflowId": workflow_id, "name": "x"}).status_code == 404
        assert there.post("/workflows/duplicate", {"workflowId": workflow_id}).status_code == 404
        assert there.post("/workflows/revert", {"workflowId": workflow_id, "version": 1}).status_code == 404
        assert there.post("/runs/start", {"workflowId": workflow_id, "prompt": "late"}).status_code == 404
        assert there.get("/runs/get", id=run["id"]).status_code == 404
        assert there.post("/runs/cancel", {"runId": run["id"]}).status_code == 404
        replayed = there.post("/workflows/update", update, keyed)
        assert replayed.status_code == 404
        assert b"secret" not in replayed.content


def test_an_erasure_evicts_the_key_from_this_process(api: Api, services: Services) -> None:
    workflow_id = api.create("evicted")["id"]
    assert services.workflows.data_keys.key(workflow_id) is not None
    assert api.post("/workflows/permanent-delete", {"workflowId": workflow_id}).status_code == 200
    assert services.workflows.data_keys.key(workflow_id) is None


def test_a_workflow_and_its_key_are_stored_together_or_not_at_all(services: Services) -> None:
    content = WorkflowContent.from_data({"name": "first", "pipelineSteps": STEPS})
    original = Workflow.create("p", ACTOR, content)
    services.workflows.save(original)
    key = services.workflows.data_keys.key_for(str(original.id), create=False)
    impostor = Workflow.create("p", ACTOR, content)
    vars(impostor)["_id"] = original.id
    for event in impostor.pending_events:
        object.__setattr__(event, "originator_id", original.id)

    with pytest.raises(IntegrityError):
        services.workflows.save(impostor)

    assert services.workflows.data_keys.key_for(str(original.id), create=False) == key
    assert services.workflows.repository.get(original.id).content.name == "first"


def test_the_key_commits_with_the_first_events(services: Services) -> None:
    """PostgreSQL: the key's row and the events' rows were written by one transaction (one xmin)."""
    if services.database.dialect != "postgres":
        pytest.skip("transaction ids are PostgreSQL's")
    workflow = Workflow.create("p", ACTOR, WorkflowContent.from_data({"name": "one", "pipelineSteps": STEPS}))
    services.workflows.save(workflow)
    with services.database.transaction(commit=False) as tx:
        rows: list[Any] = tx.execute(
            "SELECT xmin::text AS tx FROM workflows_events WHERE originator_id = ?"
            " UNION ALL SELECT xmin::text FROM data_keys WHERE aggregate_id = ?",
            (UUID(str(workflow.id)), str(workflow.id)),
        ).fetchall()
    assert len(rows) == 2
    assert len({row["tx"] for row in rows}) == 1
