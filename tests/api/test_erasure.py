"""Permanent delete: the events stay (who erased what, when) but their content is unreadable."""

from __future__ import annotations

from uuid import UUID

import pytest

from composition.services import Services
from domain.errors import ErasedError
from domain.workflow import Workflow
from tests.support.client import Api
from tests.support.views import replay_from_scratch


def test_content_is_encrypted_at_rest_and_unreadable_after_erasure(api: Api, services: Services) -> None:
    created = api.create("Top secret plan", description="classified details")
    api.post("/workflows/rename", {"workflowId": created["id"], "name": "Still secret"})
    workflow_id = UUID(created["id"])
    stored = services.workflows.recorder.select_events(workflow_id)
    assert all(b"secret" not in event.state and b"classified" not in event.state for event in stored)
    assert [type(services.workflows.mapper.to_domain_event(e)).__name__ for e in stored] == [
        "Created",
        "Renamed",
    ]

    assert api.post("/workflows/permanent-delete", {"workflowId": created["id"]}).status_code == 200

    stored = services.workflows.recorder.select_events(workflow_id)
    assert [e.topic.rsplit(".", 1)[-1] for e in stored] == ["Created", "Renamed", "PermanentlyDeleted"]
    for event in stored[:2]:
        with pytest.raises(ErasedError):
            services.workflows.mapper.to_domain_event(event)
    erased = services.workflows.mapper.to_domain_event(stored[2])
    assert isinstance(erased, Workflow.PermanentlyDeleted)
    assert erased.actor["keyName"] == "tests key"
    created_clear = services.workflows.mapper.clear_state(stored[0])
    assert created_clear["actor"]["keyName"] == "tests key"
    assert "content" not in created_clear
    with services.database.transaction(commit=False) as tx:
        assert (
            tx.execute("SELECT 1 FROM data_keys WHERE aggregate_id = ?", (created["id"],)).fetchone() is None
        )


def test_a_rebuild_after_erasure_does_not_bring_the_workflow_back(api: Api, services: Services) -> None:
    kept = api.create("kept")
    erased = api.create("erased")
    api.post("/workflows/permanent-delete", {"workflowId": erased["id"]})
    replay_from_scratch(services)
    assert [i["id"] for i in api.get("/workflows/list").json()["items"]] == [kept["id"]]
    assert api.get("/workflows/get", id=erased["id"]).status_code == 404
    assert api.get("/workflows/versions", id=erased["id"]).status_code == 404
