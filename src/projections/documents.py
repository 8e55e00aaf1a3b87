"""The workflow document and list item as clients read them, and how content renders into them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from domain.workflow import CONTENT_FIELDS, Content

CLI_TOOL_LABELS = {
    "claude": "Claude Code",
    "codex": "Codex CLI",
    "gemini": "Gemini CLI",
    "cursor": "Cursor CLI",
    "opencode": "OpenCode",
}

Instructions = Annotated[str, Meta(max_length=100_000)]
StepType = Annotated[str, Meta(min_length=1, max_length=64)]


class SandboxConfig(Struct, rename="camel", forbid_unknown_fields=True):
    """Sandbox defaults for a workflow's runs: which tool and model, and what resources."""

    template_id: str | None = None
    cli_id: str | None = None
    model: str | None = None
    timeout_ms: Annotated[int, Meta(ge=1_000, le=86_400_000)] | None = None
    memory_mb: Annotated[int, Meta(ge=128, le=262_144)] | None = None
    cpu_count: Annotated[int, Meta(ge=1, le=64)] | None = None


class Step(Struct, rename="camel", forbid_unknown_fields=True):
    """One execution step of the pipeline."""

    type: StepType
    cli_id: str | None = None
    model: str | None = None
    instructions: Instructions | None = None
    id: str | None = None


class PersonaStep(Struct, rename="camel", forbid_unknown_fields=True):
    """One persona step of the pipeline."""

    persona_id: Annotated[str, Meta(min_length=1)]
    cli_id: str | None = None
    model: str | None = None
    type: StepType | None = None
    instructions: Instructions | None = None


GraphNode = Annotated[
    dict[str, Any],
    Meta(description="A builder node: `id` is required; every other field is kept as sent."),
]
GraphEdge = Annotated[
    dict[str, Any],
    Meta(description="A builder edge: `id`, `source` and `target` are required; others are kept."),
]


class WorkflowGraph(Struct, forbid_unknown_fields=True):
    """The builder's saved canvas."""

    nodes: Annotated[list[GraphNode], Meta(max_length=5_000)] = []
    edges: Annotated[list[GraphEdge], Meta(max_length=20_000)] = []


class Display(Struct, rename="camel"):
    """Labels the list UI shows for the CLI tools a workflow uses."""

    cli_tools: list[str]
    cli_tool_labels: list[str]


class ActorRow(Struct, rename="camel"):
    """The API key an event was recorded for."""

    key_id: str
    key_name: str


class WorkflowDocument(Struct, rename="camel"):
    """The full workflow, as `get` and every workflow write answer it."""

    id: str
    name: str
    description: str | None
    type: str
    default_config: SandboxConfig | None
    max_iterations: int | None
    pipeline_steps: list[Step]
    persona_pipeline_steps: list[PersonaStep]
    workflow_graph: WorkflowGraph | None
    default_checker_instructions: str | None
    default_optimizer_instructions: str | None
    version: int
    created_at: str
    updated_at: str
    deleted_at: str | None
    display: Display


class WorkflowListItem(Struct, rename="camel"):
    """One row of the workflows table."""

    id: str
    name: str
    description: str | None
    type: str
    version: int
    step_count: int
    persona_step_count: int
    created_at: str
    updated_at: str
    deleted_at: str | None
    display: Display


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Exact whole milliseconds since the epoch (no float rounding), as the wire timestamps show them."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def iso_ms(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the one timestamp format on the wire."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def micros(moment: datetime) -> int:
    """A sortable integer for a moment, used as a keyset key."""
    return int(moment.timestamp() * 1_000_000)


def display_of(content: Content) -> dict[str, list[str]]:
    """Distinct CLI ids of steps, persona steps and the default config, first seen first."""
    seen: dict[str, None] = {}
    config = content.get("defaultConfig") or {}
    for holder in (*content["pipelineSteps"], *content["personaPipelineSteps"], config):
        cli_id = holder.get("cliId")
        if cli_id:
            seen.setdefault(cli_id)
    tools = list(seen)
    return {"cliTools": tools, "cliToolLabels": [CLI_TOOL_LABELS.get(t, t) for t in tools]}


def render_document(
    workflow_id: str,
    content: Content,
    version: int,
    created_at: datetime | str,
    updated_at: datetime | str,
    deleted_at: datetime | str | None,
) -> dict[str, Any]:
    """The workflow document as plain data, from its content and lifecycle facts."""
    document: dict[str, Any] = {"id": workflow_id}
    document.update({field: content[field] for field in CONTENT_FIELDS})
    document.update(
        version=version,
        createdAt=_stamp(created_at),
        updatedAt=_stamp(updated_at),
        deletedAt=None if deleted_at is None else _stamp(deleted_at),
        display=display_of(content),
    )
    return document


def list_item(document: dict[str, Any]) -> dict[str, Any]:
    """The list row of a workflow document."""
    return {
        "id": document["id"],
        "name": document["name"],
        "description": document["description"],
        "type": document["type"],
        "version": document["version"],
        "stepCount": len(document["pipelineSteps"]),
        "personaStepCount": len(document["personaPipelineSteps"]),
        "createdAt": document["createdAt"],
        "updatedAt": document["updatedAt"],
        "deletedAt": document["deletedAt"],
        "display": document["display"],
    }


def content_of(document: dict[str, Any]) -> Content:
    return {field: document[field] for field in CONTENT_FIELDS}


def _stamp(value: datetime | str) -> str:
    return value if isinstance(value, str) else iso_ms(value)


encode = msgspec.json.encode
decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
decode_document = msgspec.json.Decoder(WorkflowDocument).decode
decode_list_item = msgspec.json.Decoder(WorkflowListItem).decode
