"""Request bodies and response envelopes of the workflow routes; decoded once, at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from domain.workflow import MAX_VERSION
from projections.documents import PersonaStep, SandboxConfig, Step, WorkflowGraph, WorkflowListItem

Description = Annotated[str, Meta(max_length=10_000)]
Instructions = Annotated[str, Meta(max_length=100_000)]
WorkflowType = Annotated[str, Meta(min_length=1, max_length=64)]
MaxIterations = Annotated[int, Meta(ge=1, le=100)]
Steps = Annotated[list[Step], Meta(max_length=100)]
PersonaSteps = Annotated[list[PersonaStep], Meta(max_length=100)]
Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
MAX_ID_LENGTH = 200
"""Ids are opaque, but none is longer than this; a longer one is refused (400) rather than looked up."""
Id = Annotated[str, Meta(max_length=MAX_ID_LENGTH)]
Name = Annotated[str, Meta(description="1 to 200 characters after trimming surrounding white space")]


class Body(Struct, rename="camel", forbid_unknown_fields=True):
    """Every write body: camelCase on the wire, unknown fields refused."""


class CreateWorkflow(Body):
    name: Name
    description: Description | None = None
    type: WorkflowType = "standard"
    default_config: SandboxConfig | None = None
    max_iterations: MaxIterations | None = None
    pipeline_steps: Steps = []
    persona_pipeline_steps: PersonaSteps = []
    workflow_graph: WorkflowGraph | None = None
    default_checker_instructions: Instructions | None = None
    default_optimizer_instructions: Instructions | None = None


class UpdateWorkflow(Body):
    workflow_id: Id
    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    type: WorkflowType | UnsetType = UNSET
    default_config: SandboxConfig | UnsetType | None = UNSET
    max_iterations: MaxIterations | UnsetType | None = UNSET
    pipeline_steps: Steps | UnsetType = UNSET
    persona_pipeline_steps: PersonaSteps | UnsetType = UNSET
    workflow_graph: WorkflowGraph | UnsetType | None = UNSET
    default_checker_instructions: Instructions | UnsetType | None = UNSET
    default_optimizer_instructions: Instructions | UnsetType | None = UNSET
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


class BulkDeleteResult(Struct, rename="camel"):
    workflow_id: str
    status: Literal["deleted", "not_found", "already_deleted"]


class BulkDeleteResults(Struct):
    results: list[BulkDeleteResult]


class PermanentlyDeleted(Struct, rename="camel"):
    workflow_id: str
    permanently_deleted: bool = True


class WorkflowPage(Struct, rename="camel"):
    """A page of the workflows list; pass `nextCursor` back as `cursor` for the next one."""

    items: list[WorkflowListItem]
    next_cursor: str | None
    has_more: bool


def content_fields(body: Body) -> dict[str, Any]:
    """The workflow fields a body sets, keyed as on the wire; unset ones are left out."""
    fields: dict[str, Any] = msgspec.to_builtins(body)
    for name in ("workflowId", "expectedVersion"):
        fields.pop(name, None)
    return fields
