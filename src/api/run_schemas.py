"""Request bodies and response envelopes of the run routes; decoded once, at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from api.schemas import Body, Id
from projections.documents import SandboxConfig
from projections.runs import RunDocument

Prompt = Annotated[str, Meta(min_length=1, max_length=100_000)]
Url = Annotated[str, Meta(max_length=2048, description="An absolute https URL")]
BranchName = Annotated[
    str, Meta(min_length=1, max_length=255, description="A valid git branch name (git check-ref-format)")
]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Label = Annotated[str, Meta(min_length=1, max_length=200)]
MAX_TOKENS = 2**53 - 1
"""The largest integer every JSON client reads exactly."""
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]


class StartRun(Body):
    workflow_id: Id
    prompt: Prompt
    github_repo_url: Url | None = None
    branch_name: BranchName | None = None
    config: SandboxConfig | None = None
    reference_image_ids: Annotated[list[Id], Meta(max_length=100)] = []


class CostLine(Struct, rename="camel", forbid_unknown_fields=True):
    """What one model on one CLI cost, as the runner reports it."""

    model: Label
    cli_id: Label
    cost_usd: Annotated[float, Meta(ge=0, le=1_000_000_000)]
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None


class LinkRef(Struct, forbid_unknown_fields=True):
    """An entity a run worked with: a persona, an issue or a learning version."""

    id: Annotated[str, Meta(min_length=1, max_length=200)]
    name: Annotated[str, Meta(max_length=500)] | None = None


LinkList = Annotated[list[LinkRef], Meta(max_length=1_000)]


class RunLinks(Struct, rename="camel", forbid_unknown_fields=True):
    personas: LinkList = []
    issues: LinkList = []
    learning_versions: LinkList = []


class ReportRun(Body):
    run_id: Id
    status: Status
    branch_name: BranchName | None = None
    pr_url: Url | None = None
    cost_breakdown: Annotated[list[CostLine], Meta(max_length=1_000)] = []
    error: Annotated[str, Meta(max_length=100_000)] | None = None
    links: RunLinks | None = None


class RunCommand(Body):
    """Cancel names one run."""

    run_id: Id


class RunPage(Struct, rename="camel"):
    """A page of a workflow's runs, newest first; pass `nextCursor` back as `cursor` for the next one."""

    items: list[RunDocument]
    next_cursor: str | None
    has_more: bool


def to_wire(value: Any) -> Any:
    """Plain data keyed as on the wire, as events store it."""
    return msgspec.to_builtins(value)
