"""Request bodies and response envelopes of the workflow routes; decoded once, at the edge."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from domain.camel import CamelStruct
from domain.workflow import MAX_VERSION
from domain.workflow_content import Name, WorkflowChanges, WorkflowContent
from projections.documents import WorkflowListItem

Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
MAX_ID_LENGTH = 200
"""Ids are opaque, but none is longer than this; a longer one is refused (400) rather than looked up."""
Id = Annotated[str, Meta(max_length=MAX_ID_LENGTH)]


class Body(CamelStruct, forbid_unknown_fields=True):
    """Every write body: camelCase on the wire, unknown fields refused."""


class CreateWorkflow(WorkflowContent, forbid_unknown_fields=True):
    """A new workflow's content: the name, and any other fields (the rest take their defaults)."""


class UpdateWorkflow(WorkflowChanges, kw_only=True, forbid_unknown_fields=True):
    """The workflow to change, and the fields to change; the others stay as they are."""

    workflow_id: Id
    expected_version: Version | None = None


class RenameWorkflow(Body):
    workflow_id: Id
    name: Name
    expected_version: Version | None = None


class RevertWorkflow(Body):
    workflow_id: Id
    version_id: Id
    expected_version: Version | None = None


class DuplicateWorkflow(Body):
    workflow_id: Id
    name: Name | None = None
    expected_version: Version | None = None


class WorkflowCommand(Body):
    """Delete, restore and permanent delete name one workflow."""

    workflow_id: Id
    expected_version: Version | None = None


class BulkDeleteWorkflows(Body):
    workflow_ids: Annotated[list[Id], Meta(min_length=1, max_length=100)]


class BulkDeleteResult(CamelStruct):
    workflow_id: str
    status: Literal["deleted", "not_found", "already_deleted"]


class BulkDeleteResults(CamelStruct):
    results: list[BulkDeleteResult]


class PermanentlyDeleted(CamelStruct):
    workflow_id: str
    permanently_deleted: bool = True


class WorkflowPage(CamelStruct):
    """A page of the workflows list; pass `nextCursor` back as `cursor` for the next one."""

    items: list[WorkflowListItem]
    next_cursor: str | None
    has_more: bool
