"""A workflow as it was, replayed from the event store itself (never from a read model).

`replay` answers what `GET /workflows/get?version=N` and `?asOf=TIME` answer, and its events what
`GET /workflows/history` lists, so an operator can check a view against the events it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.errors import NotFound
from domain.service import WorkflowService
from domain.workflow import Workflow, parse_workflow_id
from domain.workflow_content import ContentData, WorkflowContent
from projections.audit_state import changes_between
from projections.documents import epoch_ms, iso_ms, render_document

PUBLIC_TYPES: dict[type, str] = {
    Workflow.Duplicated: "workflow.duplicated",
    Workflow.Created: "workflow.created",
    Workflow.Updated: "workflow.updated",
    Workflow.Renamed: "workflow.renamed",
    Workflow.Reverted: "workflow.reverted",
    Workflow.Deleted: "workflow.deleted",
    Workflow.Restored: "workflow.restored",
    Workflow.PermanentlyDeleted: "workflow.erased",
}


class ReplayError(Exception):
    """The workflow, version or time asked for does not exist in the event store."""


@dataclass(frozen=True)
class Step:
    """One event replayed: the event, and what the workflow was right after it."""

    event: Any
    version: int
    content: WorkflowContent
    created_on: datetime
    deleted_at: datetime | None
    data: dict[str, Any]


def replay(service: WorkflowService, workflow_id: str) -> Iterator[Step]:
    """Every event of the workflow in order, applied one by one."""
    uuid = parse_workflow_id(workflow_id)
    unknown = ReplayError(f"no workflow has id {workflow_id!r} (or it was permanently deleted)")
    if uuid is None:
        raise unknown
    try:
        events: list[Any] = list(service.events.get(uuid))
    except NotFound:  # its data key is destroyed: erased
        raise unknown from None
    if not events or not isinstance(events[0], Workflow.Created):
        raise unknown
    workflow: Any = None
    for event in events:
        before = None if workflow is None else workflow.content.data()
        workflow = event.mutate(workflow)
        if workflow.erased:
            raise unknown
        data = _data(event, before)
        yield Step(
            event, workflow.content_version, workflow.content, workflow.created_on, workflow.deleted_at, data
        )


def up_to_version(service: WorkflowService, workflow_id: str, version: int) -> list[Step]:
    """The events up to the one that made content version `version`."""
    steps: list[Step] = []
    for step in replay(service, workflow_id):
        steps.append(step)
        if step.version == version:
            return steps
    latest = steps[-1].version
    raise ReplayError(f"workflow {workflow_id!r} has versions 1 to {latest}, not {version}")


def up_to_time(service: WorkflowService, workflow_id: str, moment: datetime) -> list[Step]:
    """The events at or before `moment` (to the millisecond, as times are shown)."""
    limit = epoch_ms(moment)
    steps: list[Step] = []
    for step in replay(service, workflow_id):
        if epoch_ms(step.event.timestamp) > limit:
            break
        steps.append(step)
    if not steps:
        raise ReplayError(f"workflow {workflow_id!r} did not exist yet at {iso_ms(moment)}")
    return steps


def document_at_version(steps: list[Step]) -> dict[str, Any]:
    """As `get?version=N` answers it: that version's content, updated when it was made, not deleted."""
    last = steps[-1]
    document = render_document(
        str(last.event.originator_id), last.content, last.version, last.created_on, last.event.timestamp, None
    )
    return msgspec.to_builtins(document)  # type: ignore[no-any-return]


def document_at_time(steps: list[Step]) -> dict[str, Any]:
    """As `get?asOf=TIME` answers it: the content then, and whether it was deleted then."""
    last = steps[-1]
    document = render_document(
        str(last.event.originator_id),
        last.content,
        last.version,
        last.created_on,
        last.event.timestamp,
        last.deleted_at,
    )
    return msgspec.to_builtins(document)  # type: ignore[no-any-return]


def event_items(steps: list[Step]) -> list[dict[str, Any]]:
    """The events as `history` lists them (without positions, which the event store keeps apart)."""
    return [
        {
            "type": PUBLIC_TYPES[type(step.event)],
            "workflowId": str(step.event.originator_id),
            "version": step.version,
            "occurredAt": iso_ms(step.event.timestamp),
            "actor": step.event.actor,
            "requestId": getattr(step.event, "request_id", None),
            "data": step.data,
        }
        for step in steps
    ]


def _data(event: Any, before: ContentData | None) -> dict[str, Any]:
    if isinstance(event, Workflow.Created):
        content = event.new_content().data()
        if isinstance(event, Workflow.Duplicated):
            return {**content, "sourceWorkflowId": event.duplicated_from}
        return content
    assert before is not None
    if isinstance(event, Workflow.Renamed):
        return changes_between(before, {"name": event.name})
    if isinstance(event, Workflow.Reverted):
        return {**changes_between(before, event.changes), "revertedFromVersion": event.reverted_from_version}
    if isinstance(event, Workflow.Updated):
        return changes_between(before, event.changes)
    return {}


def parse_moment(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 time; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
