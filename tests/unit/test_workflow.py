"""The Workflow aggregate's commands and invariants, without any I/O."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.utils import get_topic

from domain.errors import Conflict, InvalidInput
from domain.workflow import Actor, Workflow, parse_version_id, version_id
from domain.workflow_content import CONTENT_FIELDS, Step, WorkflowChanges, WorkflowContent

ALICE: Actor = {"keyId": "k1", "keyName": "alice"}
STEPS = [{"type": "designer", "cliId": "claude", "model": "claude-opus-4-7"}]
STORED_STEPS = [{**STEPS[0], "instructions": None, "id": None}]
"""STEPS as events store them: every field of a step, None when not given."""


def content(**fields: Any) -> WorkflowContent:
    """Content from fields keyed as clients send them."""
    return WorkflowContent.from_data(fields)


def changes(**fields: Any) -> WorkflowChanges:
    return WorkflowChanges.from_data(fields)


def new_workflow(**fields: Any) -> Workflow:
    return Workflow.create("p1", ALICE, content(**{"name": "Release", "pipelineSteps": STEPS, **fields}))


def replayed(workflow: Workflow) -> Workflow:
    """The workflow rebuilt from its pending events, as the repository would load it."""
    aggregate: Any = None
    for event in list(workflow.pending_events):
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Workflow)
    return aggregate


def event_names(workflow: Workflow) -> list[str]:
    return [type(event).__name__ for event in workflow.collect_events()]


def test_create_fills_defaults_trims_the_name_and_records_the_actor() -> None:
    workflow = Workflow.create("p1", ALICE, content(name="  Release  ", pipelineSteps=STEPS))
    assert workflow.content.name == "Release"
    assert workflow.content.type == "standard"
    assert workflow.content.persona_pipeline_steps == []
    assert workflow.content.description is None
    assert workflow.content.pipeline_steps == [
        Step(type="designer", cli_id="claude", model="claude-opus-4-7")
    ]
    assert workflow.content_version == 1
    created = workflow.collect_events()[0]
    assert isinstance(created, Workflow.Created)
    assert created.actor == ALICE
    assert created.project_id == "p1"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_refuses_a_blank_or_long_name(name: str) -> None:
    with pytest.raises(InvalidInput) as error:
        new_workflow(name=name)
    assert error.value.field == "name"


def test_create_accepts_a_name_of_200_characters_after_trimming() -> None:
    assert new_workflow(name=" " + "x" * 200 + " ").content.name == "x" * 200


def test_create_needs_at_least_one_step() -> None:
    with pytest.raises(InvalidInput) as error:
        Workflow.create("p1", ALICE, content(name="Release"))
    assert error.value.field == "pipelineSteps"


def test_persona_steps_alone_are_enough() -> None:
    workflow = Workflow.create("p1", ALICE, content(name="R", personaPipelineSteps=[{"personaId": "p"}]))
    assert workflow.content.pipeline_steps == []


@pytest.mark.parametrize(
    ("graph", "field"),
    [
        ({"nodes": [{"id": "a"}, {"id": "a"}], "edges": []}, "workflowGraph.nodes[1].id"),
        ({"nodes": [{"type": "step"}], "edges": []}, "workflowGraph.nodes[0].id"),
        (
            {"nodes": [{"id": "a"}], "edges": [{"id": "e", "source": "a", "target": "b"}]},
            "workflowGraph.edges[0].target",
        ),
        ({"nodes": [{"id": "a"}], "edges": [{"id": "e", "target": "a"}]}, "workflowGraph.edges[0].source"),
    ],
)
def test_graph_edges_must_join_existing_unique_nodes(graph: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        new_workflow(workflowGraph=graph)
    assert error.value.field == field


def test_graph_keeps_builder_fields_as_sent() -> None:
    graph = {
        "nodes": [{"id": "n1", "position": {"x": 1}, "data": {"k": [1]}}, {"id": "n2"}],
        "edges": [{"id": "e1", "source": "n1", "target": "n2", "animated": True}],
    }
    workflow = new_workflow(workflowGraph=graph)
    assert workflow.content.data()["workflowGraph"] == graph
    assert replayed(workflow).content.data()["workflowGraph"] == graph


def test_update_records_only_the_fields_that_changed() -> None:
    workflow = new_workflow(description="old")
    workflow.collect_events()
    workflow.update(ALICE, changes(description="new", pipelineSteps=STEPS))
    (event,) = workflow.collect_events()
    assert isinstance(event, Workflow.Updated)
    assert event.changes == {"description": "new"}
    assert workflow.content_version == 2


def test_an_update_that_changes_nothing_records_nothing() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    workflow.update(ALICE, changes(name="Release", pipelineSteps=STEPS))
    assert workflow.collect_events() == []
    assert workflow.content_version == 1


def test_update_may_not_empty_both_step_lists() -> None:
    workflow = new_workflow()
    with pytest.raises(InvalidInput):
        workflow.update(ALICE, changes(pipelineSteps=[]))
    assert workflow.content.data()["pipelineSteps"] == STORED_STEPS


def test_rename_is_a_content_version_and_the_same_name_is_no_change() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    workflow.rename(ALICE, "Release")
    assert workflow.collect_events() == []
    workflow.rename(ALICE, " Hardening ")
    assert event_names(workflow) == ["Renamed"]
    assert workflow.content.name == "Hardening"
    assert workflow.content_version == 2


def test_revert_adds_a_version_with_the_old_content() -> None:
    workflow = new_workflow(description="v1")
    original = workflow.content
    workflow.update(ALICE, changes(description="v2"))
    workflow.collect_events()
    workflow.revert(ALICE, 1, original)
    (event,) = workflow.collect_events()
    assert isinstance(event, Workflow.Reverted)
    assert event.reverted_from_version == 1
    assert event.changes == {"description": "v1"}
    assert workflow.content == original
    assert workflow.content_version == 3


def test_delete_and_restore_do_not_change_the_content_version() -> None:
    workflow = new_workflow()
    workflow.delete(ALICE)
    assert workflow.is_deleted
    assert workflow.deleted_at is not None
    workflow.restore(ALICE)
    assert not workflow.is_deleted
    assert workflow.content_version == 1
    assert event_names(workflow) == ["Created", "Deleted", "Restored"]


def test_a_deleted_workflow_refuses_changes() -> None:
    workflow = new_workflow()
    workflow.delete(ALICE)
    for change in (
        lambda: workflow.update(ALICE, changes(description="x")),
        lambda: workflow.rename(ALICE, "other"),
        lambda: workflow.revert(ALICE, 1, workflow.content),
        lambda: workflow.delete(ALICE),
    ):
        with pytest.raises(Conflict):
            change()


def test_restoring_a_live_workflow_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        new_workflow().restore(ALICE)


def test_duplicate_copies_the_content_under_a_new_id() -> None:
    workflow = new_workflow(workflowGraph={"nodes": [{"id": "a"}], "edges": []})
    copy = workflow.duplicate(ALICE, None)
    assert copy.id != workflow.id
    assert copy.content.name == "Release (copy)"
    assert copy.content.workflow_graph == workflow.content.workflow_graph
    created = copy.collect_events()[0]
    assert isinstance(created, Workflow.Duplicated)
    assert created.duplicated_from == str(workflow.id)
    assert workflow.duplicate(ALICE, " Named ").content.name == "Named"


def test_the_copy_suffix_never_makes_a_name_too_long() -> None:
    copy = new_workflow(name="x" * 200).duplicate(ALICE, None)
    assert len(copy.content.name) == 200
    assert copy.content.name.endswith(" (copy)")


def test_erase_is_recorded_for_live_and_deleted_workflows() -> None:
    workflow = new_workflow()
    workflow.delete(ALICE)
    workflow.erase(ALICE)
    assert workflow.erased
    assert event_names(workflow)[-1] == "PermanentlyDeleted"


def test_version_ids_round_trip() -> None:
    assert parse_version_id(version_id("abc-1", 12)) == ("abc-1", 12)
    assert parse_version_id("nonsense") is None
    assert parse_version_id("abc.vx") is None


def test_events_store_content_as_plain_data_keyed_as_on_the_wire() -> None:
    workflow = new_workflow(workflowGraph={"nodes": [{"id": "a", "x": 1}], "edges": []})
    workflow.rename(ALICE, "Renamed")
    workflow.update(ALICE, changes(maxIterations=3, defaultConfig={"cliId": "codex"}))
    created, renamed, updated = workflow.collect_events()
    assert isinstance(created, Workflow.Created)
    assert list(created.content) == list(CONTENT_FIELDS)
    assert created.content["pipelineSteps"] == STORED_STEPS
    assert created.content["workflowGraph"] == {"nodes": [{"id": "a", "x": 1}], "edges": []}
    assert isinstance(renamed, Workflow.Renamed)
    assert renamed.name == "Renamed"
    assert isinstance(updated, Workflow.Updated)
    assert updated.changes == {
        "defaultConfig": {
            "templateId": None,
            "cliId": "codex",
            "model": None,
            "timeoutMs": None,
            "memoryMb": None,
            "cpuCount": None,
        },
        "maxIterations": 3,
    }


def test_event_topics_stay_the_stored_class_paths() -> None:
    names = ["Created", "Duplicated", "Updated", "Renamed", "Reverted", "Deleted", "Restored"]
    for name in [*names, "PermanentlyDeleted", "Snapshot"]:
        assert get_topic(getattr(Workflow, name)) == f"domain.workflow:Workflow.{name}"


def test_replaying_the_events_rebuilds_the_same_workflow() -> None:
    workflow = new_workflow(description="v1")
    workflow.update(ALICE, changes(description="v2", personaPipelineSteps=[{"personaId": "p"}]))
    workflow.rename(ALICE, "Renamed")
    workflow.revert(ALICE, 1, content(name="Release", pipelineSteps=STEPS, description="v1"))
    workflow.delete(ALICE)
    loaded = replayed(workflow)
    assert loaded.content == workflow.content
    assert (loaded.content_version, loaded.deleted_at) == (4, workflow.deleted_at)


def test_a_snapshot_stores_the_content_as_plain_data_and_loads_it_typed() -> None:
    workflow = new_workflow(workflowGraph={"nodes": [{"id": "a", "keep": [1]}], "edges": []})
    workflow.collect_events()
    snapshot = Workflow.Snapshot.take(workflow)
    assert snapshot.state["content"] == workflow.content.data()
    loaded = snapshot.mutate(None)
    assert isinstance(loaded.content, WorkflowContent)
    assert loaded.content == workflow.content
