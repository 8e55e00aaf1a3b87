"""Projections resume where they stopped, survive a crash mid-batch, and equal a fresh replay."""

from __future__ import annotations

import time
from typing import Any

import pytest

from composition.services import Services
from composition.settings import Settings
from domain.workflow import Actor
from domain.workflow_content import WorkflowChanges, WorkflowContent
from projections.tracked_view import TrackedView
from tests.support.views import (
    catch_up,
    drop_tables,
    replay_from_scratch,
    view_named,
    view_position,
    view_rows,
)

ACTOR: Actor = {"keyId": "k1", "keyName": "ops"}
STEPS = [{"type": "designer", "cliId": "claude", "model": None, "instructions": None, "id": None}]


def fill(services: Services, project_id: str, count: int = 12) -> None:
    """A stream with every kind of workflow event, written through the domain without settling."""
    service = services.workflows
    for i in range(count):
        content = WorkflowContent.from_data({"name": f"wf {i}", "pipelineSteps": STEPS})
        saved = service.create_workflow(ACTOR, project_id, content)
        workflow_id = str(saved.workflow.id)
        service.update_workflow(ACTOR, project_id, workflow_id, WorkflowChanges(description=f"d{i}"))
        if i % 3 == 0:
            service.rename_workflow(ACTOR, project_id, workflow_id, f"renamed {i}")
            service.revert_workflow(ACTOR, project_id, workflow_id, 1)
        if i % 4 == 1:
            service.delete_workflow(ACTOR, project_id, workflow_id)
        if i % 4 == 2:
            service.duplicate_workflow(ACTOR, project_id, workflow_id, None)
        if i == 5:
            service.permanently_delete_workflow(ACTOR, project_id, workflow_id)


def dump(services: Services, runner: TrackedView) -> dict[str, list[tuple[Any, ...]]]:
    return view_rows(services, runner.name)


def rebuilt(services: Services, runner: TrackedView) -> dict[str, list[tuple[Any, ...]]]:
    replay_from_scratch(services, runner.name)
    return dump(services, runner)


def test_a_stopped_projection_resumes_and_equals_a_fresh_replay(database_url: str) -> None:
    first = Services(Settings(database_url=database_url))
    project = first.accounts.create_project("p").project_id
    fill(first, project)
    head = first.workflows.recorder.max_notification_id()
    for runner in first.projector.runners:
        runner.batch_size = 7
        stopped_at = catch_up(runner, batches=2)
        if runner.name in ("workflow_summary", "workflow_version"):  # others read few of these events
            assert 0 < stopped_at < head
    first.close()

    restarted = Services(Settings(database_url=database_url))
    try:
        for runner in restarted.projector.runners:
            assert view_position(runner) > 0
            assert catch_up(runner) == head
            resumed = dump(restarted, runner)
            assert resumed == rebuilt(restarted, runner)
        assert restarted.summaries.page(project, deleted=False, after=None, limit=100)[0]
    finally:
        restarted.close()


def test_a_crash_mid_batch_neither_loses_nor_double_applies(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = Services(Settings(database_url=database_url))
    try:
        project = services.accounts.create_project("p").project_id
        fill(services, project, count=6)
        runner = view_named(services, "workflow_version")
        projection = runner.projection
        real_apply = type(projection).apply
        calls = {"n": 0}

        class PowerCut(BaseException):
            """Like the process dying: no handler of ordinary errors sees it."""

        def crashing_apply(self: Any, event: Any, tx: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 10:
                raise PowerCut
            real_apply.__get__(self)(event, tx)

        monkeypatch.setattr(type(projection), "apply", crashing_apply)
        with pytest.raises(PowerCut):
            catch_up(runner)
        assert view_position(runner) == 0
        monkeypatch.undo()

        catch_up(runner)
        assert dump(services, runner) == rebuilt(services, runner)
    finally:
        services.close()


def test_two_runners_on_one_view_apply_each_batch_once(database_url: str) -> None:
    first = Services(Settings(database_url=database_url))
    second = Services(Settings(database_url=database_url))
    try:
        project = first.accounts.create_project("p").project_id
        fill(first, project, count=6)
        a = view_named(first, "workflow_summary")
        b = view_named(second, "workflow_summary")
        a.batch_size = b.batch_size = 3
        catch_up(a, batches=1)
        catch_up(b, batches=2)
        catch_up(a)
        catch_up(b)
        assert dump(first, a) == rebuilt(first, a)
    finally:
        first.close()
        second.close()


def test_the_app_follows_events_written_by_other_writers(services: Services, api: Any) -> None:
    """Events saved outside the HTTP path (scripts, other hosts) reach the read models unprompted."""
    saved = services.workflows.create_workflow(
        ACTOR, api.project_id, WorkflowContent.from_data({"name": "from a script", "pipelineSteps": STEPS})
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = api.get("/workflows/list").json()["items"]
        if items:
            break
        time.sleep(0.1)
    assert [item["id"] for item in items] == [str(saved.workflow.id)]


def test_rebuilding_one_view_never_moves_the_others_back(database_url: str) -> None:
    services = Services(Settings(database_url=database_url))
    try:
        project = services.accounts.create_project("p").project_id
        fill(services, project)
        services.projector.catch_up()
        summary = view_named(services, "workflow_summary")
        versions = view_named(services, "workflow_version")
        drop_tables(versions)
        versions.create_tables()
        fill(services, project, count=1)  # the other views now lag a little, the rebuilt one a lot
        for runner in services.projector.runners:
            runner.batch_size = 5
        services.projector.catch_up()
        head = services.workflows.recorder.max_notification_id()
        assert set(services.projector.positions().values()) == {head}
        assert dump(services, summary) == rebuilt(services, summary)
        assert dump(services, versions) == rebuilt(services, versions)
    finally:
        services.close()
