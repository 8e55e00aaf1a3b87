"""A read model that cannot apply one stored event skips it alone: the other views, later events, a
restart and a rebuild all go on. A database error is never blamed on an event."""

from __future__ import annotations

import inspect
import sqlite3
from typing import Any

import msgspec
import psycopg
import pytest
from eventsourcing.utils import get_topic

from composition.services import Services
from composition.settings import Settings
from domain.run import Run
from domain.run_values import RunReport
from domain.workflow import Workflow
from domain.workflow_content import WorkflowChanges, WorkflowContent
from projections.failures import is_transient
from projections.tracked_view import TrackedView
from projections.workflow_versions import WorkflowVersionsProjection
from tests.support.data import ACTOR, STEPS
from tests.support.domain import a_run, head
from tests.support.failing_views import NUL_NAME, fail_on, make_nul_unstorable, report_a_nul
from tests.support.views import rebuild_in_place, view_named, view_position, view_rows


def dump(services: Services, runner: TrackedView) -> dict[str, list[tuple[Any, ...]]]:
    return view_rows(services, runner.name)


def failures(services: Services) -> list[tuple[str, int, str]]:
    return [(f.view, f.position, f.topic) for f in services.projector.failures(limit=100)[1]]


def related_ids(services: Services, workflow_id: str) -> set[str]:
    linked = services.related.entities(workflow_id)
    return {entity.id for entity in [*linked.personas, *linked.issues, *linked.learning_versions]}


def test_a_view_skips_only_the_event_it_cannot_apply(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_nul_unstorable(services, monkeypatch)
    project = services.accounts.create_project("p").project_id
    workflow_id, run_id = a_run(services, project)

    poisoned_at = report_a_nul(services, project, run_id)
    report = {"status": "running", "links": {"issues": [{"id": "ISS-7", "name": "later"}]}}
    later = services.runs.report_run(ACTOR, project, run_id, msgspec.convert(report, RunReport))
    services.make_visible(later.position)

    assert set(services.projector.positions().values()) == {head(services)}
    assert failures(services) == [("related", poisoned_at, get_topic(Run.Reported))]
    failure = services.projector.failures()[1][0]
    assert failure.error_type == ("DataError" if services.database.dialect == "postgres" else "ValueError")
    assert "NUL" in failure.error_message
    run = services.runs_view.get(project, run_id)
    assert run is not None
    assert run.branch_name == "poisoned"  # the runs view applied the event the related view skipped
    assert related_ids(services, workflow_id) == {"ISS-7"}  # and the related view went on after it
    for runner in services.projector.runners:
        if runner.name != "related":
            before = dump(services, runner)
            rebuild_in_place(runner)
            assert dump(services, runner) == before, runner.name


def test_an_event_that_cannot_be_decoded_is_recorded_for_each_view_that_reads_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = services.accounts.create_project("p").project_id
    saved = services.workflows.create_workflow(
        ACTOR, project, WorkflowContent.from_data({"name": "wf", "pipelineSteps": STEPS})
    )
    workflow_id = str(saved.workflow.id)
    services.make_visible(saved.position)
    renamed = services.workflows.rename_workflow(ACTOR, project, workflow_id, "unreadable")
    mapper = services.workflows.mapper
    real_decode = mapper.to_domain_event

    def decode(stored: Any) -> Any:
        if getattr(stored, "id", None) == renamed.position:  # notifications only, not aggregate loads
            raise ValueError("corrupt event")
        return real_decode(stored)

    monkeypatch.setattr(mapper, "to_domain_event", decode)
    services.make_visible(renamed.position)
    later = services.workflows.update_workflow(
        ACTOR, project, workflow_id, WorkflowChanges(description="after")
    )
    services.make_visible(later.position)

    topic = get_topic(Workflow.Renamed)
    readers = sorted(runner.name for runner in services.projector.runners if runner.wants(topic))
    assert readers
    assert sorted(failures(services)) == [(name, renamed.position, topic) for name in readers]
    assert set(services.projector.positions().values()) == {head(services)}
    document = services.summaries.get(project, workflow_id)
    assert document is not None
    assert document.description == "after"


def test_a_database_error_is_not_blamed_on_the_event(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = services.accounts.create_project("p").project_id
    before = dict(services.projector.positions())

    def busy() -> BaseException:
        if services.database.dialect == "postgres":
            return psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
        return sqlite3.OperationalError("database is locked")

    fail_on(monkeypatch, WorkflowVersionsProjection, lambda event: True, busy)
    saved = services.workflows.create_workflow(
        ACTOR, project, WorkflowContent.from_data({"name": "wf", "pipelineSteps": STEPS})
    )
    with pytest.raises(Exception) as raised:  # noqa: PT011 - whichever driver's error, wrapped or not
        services.projector.catch_up()
    assert is_transient(raised.value)
    assert services.projector.positions() == before  # the whole batch waits for the database
    assert failures(services) == []

    services.make_visible(saved.position)  # a write's make_visible logs it and returns: the write was stored
    monkeypatch.undo()
    services.projector.catch_up()
    assert failures(services) == []
    assert services.history.versions(project, str(saved.workflow.id)) is not None
    assert set(services.projector.positions().values()) == {head(services)}


def test_a_restart_starts_and_keeps_the_record(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, files_dir=tmp_path / "files")
    first = Services(settings)
    make_nul_unstorable(first, monkeypatch)
    project = first.accounts.create_project("p").project_id
    _, run_id = a_run(first, project)
    first.projector.catch_up()
    # Stored but not yet applied when the process stops: the next start meets it first.
    report = {"status": "running", "links": {"personas": [{"id": "p-nul", "name": NUL_NAME}]}}
    saved = first.runs.report_run(ACTOR, project, run_id, msgspec.convert(report, RunReport))
    first.close()

    restarted = Services(settings)
    try:
        restarted.projector.catch_up()
        assert set(restarted.projector.positions().values()) == {head(restarted)}
        assert failures(restarted) == [("related", saved.position, get_topic(Run.Reported))]
        more = restarted.workflows.create_workflow(
            ACTOR, project, WorkflowContent.from_data({"name": "next", "pipelineSteps": STEPS})
        )
        restarted.make_visible(more.position)
        assert restarted.summaries.get(project, str(more.workflow.id)) is not None
    finally:
        restarted.close()


def test_a_rebuild_applies_a_skipped_event_again(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    project = services.accounts.create_project("p").project_id
    saved = services.workflows.create_workflow(
        ACTOR, project, WorkflowContent.from_data({"name": "wf", "pipelineSteps": STEPS})
    )
    workflow_id = str(saved.workflow.id)
    services.make_visible(saved.position)
    fail_on(
        monkeypatch,
        WorkflowVersionsProjection,
        lambda event: getattr(event, "name", None) == "renamed",
        lambda: KeyError("a bug in the view"),
    )
    renamed = services.workflows.rename_workflow(ACTOR, project, workflow_id, "renamed")
    services.make_visible(renamed.position)
    runner = view_named(services, "workflow_version")
    assert failures(services) == [("workflow_version", renamed.position, get_topic(Workflow.Renamed))]

    position, again = rebuild_in_place(runner)  # the bug is still there: recorded again, nothing else lost
    assert position == head(services)
    assert [(f.view, f.position) for f in again] == [("workflow_version", renamed.position)]
    assert failures(services) == [("workflow_version", renamed.position, get_topic(Workflow.Renamed))]
    skipped = dump(services, runner)

    monkeypatch.undo()  # the bug is fixed
    position, again = rebuild_in_place(runner)
    assert (position, again, failures(services)) == (head(services), [], [])
    assert dump(services, runner) != skipped
    versions = services.history.versions(project, workflow_id)
    assert versions is not None
    assert [entry.version for entry in versions.versions] == [2, 1]


def test_a_rebuild_that_fails_leaves_the_old_view(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = services.accounts.create_project("p").project_id
    for i in range(4):
        saved = services.workflows.create_workflow(
            ACTOR, project, WorkflowContent.from_data({"name": f"wf {i}", "pipelineSteps": STEPS})
        )
        services.make_visible(saved.position)
    runner = view_named(services, "workflow_summary")
    before = dump(services, runner)
    position = view_position(runner)
    calls = {"n": 0}

    def lost_connection_at_the_third_event(_: Any) -> bool:
        calls["n"] += 1
        return calls["n"] == 3

    def lost() -> BaseException:
        if services.database.dialect == "postgres":
            return psycopg.OperationalError("server closed the connection unexpectedly")
        return sqlite3.OperationalError("disk I/O error")

    fail_on(monkeypatch, type(runner.projection), lost_connection_at_the_third_event, lost)
    runner.batch_size = 2
    with pytest.raises(Exception) as raised:  # noqa: PT011 - whichever driver's error, wrapped or not
        rebuild_in_place(runner)
    assert is_transient(raised.value)
    assert calls["n"] == 3
    assert dump(services, runner) == before
    assert view_position(runner) == position
    assert failures(services) == []


def test_a_statement_the_database_refuses_inside_a_view_is_contained(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL aborts the whole transaction on a refused statement; only the view's part is undone."""
    project = services.accounts.create_project("p").project_id
    real_apply = inspect.getattr_static(WorkflowVersionsProjection, "apply")

    def apply(self: Any, event: Any, tx: Any) -> None:
        real_apply.__get__(self, type(self))(event, tx)
        if (getattr(event, "content", None) or {}).get("name") == "refused":
            tx.execute("INSERT INTO no_such_table (x) VALUES (1)")

    monkeypatch.setattr(WorkflowVersionsProjection, "apply", apply)
    names = ["before", "refused", "after"]
    created = [
        services.workflows.create_workflow(
            ACTOR, project, WorkflowContent.from_data({"name": name, "pipelineSteps": STEPS})
        )
        for name in names
    ]
    services.projector.catch_up()  # one batch holding all three

    assert failures(services) == [("workflow_version", created[1].position, get_topic(Workflow.Created))]
    kept = {
        name: services.history.versions(project, str(saved.workflow.id))
        for name, saved in zip(names, created, strict=True)
    }
    assert {name: versions is not None for name, versions in kept.items()} == {
        "before": True,
        "refused": False,
        "after": True,
    }
    assert all(services.summaries.get(project, str(saved.workflow.id)) for saved in created)
