"""A workflow's content as one typed value: each field is declared once, in `WorkflowContent`.

Adding a field means declaring it in `WorkflowContent` and, to make it updatable, in
`WorkflowChanges`; the request bodies, the document, the events and every view derive from those.
Events store content as plain data keyed as clients spell the fields (`ContentData`); `from_data` and
`data` convert at that boundary, so stored events keep the shape they always had.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from domain.camel import CamelStruct
from domain.errors import InvalidInput
from domain.formats import openapi

NAME_MAX = 200
MAX_NODES = 5_000
MAX_EDGES = 20_000

ContentData = dict[str, Any]
"""Content, or some of its fields, as events store it: plain data keyed as on the wire."""

Name = Annotated[str, Meta(description="1 to 200 characters after trimming surrounding white space")]
Description = Annotated[str, Meta(max_length=10_000)]
Instructions = Annotated[str, Meta(max_length=100_000)]
WorkflowType = Annotated[str, Meta(min_length=1, max_length=64)]
StepType = Annotated[str, Meta(min_length=1, max_length=64)]
MaxIterations = Annotated[int, Meta(ge=1, le=100)]


class SandboxConfig(CamelStruct, forbid_unknown_fields=True):
    """Sandbox defaults for a workflow's runs: which tool and model, and what resources."""

    template_id: str | None = None
    cli_id: str | None = None
    model: str | None = None
    timeout_ms: Annotated[int, Meta(ge=1_000, le=86_400_000)] | None = None
    memory_mb: Annotated[int, Meta(ge=128, le=262_144)] | None = None
    cpu_count: Annotated[int, Meta(ge=1, le=64)] | None = None


class Step(CamelStruct, forbid_unknown_fields=True):
    """One execution step of the pipeline."""

    type: StepType
    cli_id: str | None = None
    model: str | None = None
    instructions: Instructions | None = None
    id: str | None = None


class PersonaStep(CamelStruct, forbid_unknown_fields=True):
    """One persona step of the pipeline."""

    persona_id: Annotated[str, Meta(min_length=1)]
    cli_id: str | None = None
    model: str | None = None
    type: StepType | None = None
    instructions: Instructions | None = None


def _kept_objects(what: str, required: tuple[str, ...], limit: int) -> Meta:
    """A list of builder objects: `required` string fields, and any others kept exactly as sent."""
    names = ", ".join(f"`{name}`" for name in required)
    return openapi(
        f"At most {limit:,} {what}s; a {what} needs {names} (non-empty), and any other fields it has"
        " are kept exactly as sent.",
        items={
            "type": "object",
            "required": list(required),
            "properties": {name: {"type": "string", "minLength": 1} for name in required},
            "additionalProperties": True,
        },
    )


GraphNode = dict[str, Any]
"""A builder node: `id` is required and unique in its graph (checked by `check_graph`); the rest
is the builder's own and is kept as sent, which a Struct could not do (it drops unknown fields)."""
GraphEdge = dict[str, Any]
"""A builder edge: `id`, `source` and `target` are required; the rest is kept as sent."""
Nodes = Annotated[list[GraphNode], Meta(max_length=MAX_NODES), _kept_objects("node", ("id",), MAX_NODES)]
Edges = Annotated[
    list[GraphEdge], Meta(max_length=MAX_EDGES), _kept_objects("edge", ("id", "source", "target"), MAX_EDGES)
]


class WorkflowGraph(CamelStruct, forbid_unknown_fields=True):
    """The builder's saved canvas."""

    nodes: Nodes = []
    edges: Edges = []


Steps = Annotated[list[Step], Meta(max_length=100)]
PersonaSteps = Annotated[list[PersonaStep], Meta(max_length=100)]


class WorkflowContent(CamelStruct, kw_only=True):
    """Everything a workflow version says; THE one declaration of a workflow's fields and defaults."""

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

    @classmethod
    def from_data(cls, data: ContentData) -> WorkflowContent:
        """Content from stored data (fields it lacks take their defaults, others are ignored)."""
        return msgspec.convert(data, WorkflowContent)

    def data(self) -> ContentData:
        """The content as events store it: every field, keyed as on the wire."""
        return _data_of({name: getattr(self, name) for name in FIELD_NAMES})

    def changed(self, changes: WorkflowChanges) -> WorkflowContent:
        """This content with the fields `changes` sets replaced."""
        return msgspec.structs.replace(self, **changes.given())

    def changes_to(self, changes: WorkflowChanges) -> WorkflowChanges:
        """The part of `changes` that differs from this content (nothing set: no difference)."""
        return WorkflowChanges(
            **{name: value for name, value in changes.given().items() if getattr(self, name) != value}
        )

    def differences(self, other: WorkflowContent) -> WorkflowChanges:
        """What to change to make this content `other`."""
        return self.changes_to(WorkflowChanges(**{name: getattr(other, name) for name in FIELD_NAMES}))


class WorkflowChanges(CamelStruct, kw_only=True):
    """Some of a workflow's fields, to change; a field left UNSET stays as it is."""

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

    @classmethod
    def from_data(cls, data: ContentData) -> WorkflowChanges:
        return msgspec.convert(data, WorkflowChanges)

    def given(self) -> dict[str, Any]:
        """The fields set, by their Python names (only content fields, also on a request body)."""
        return {name: value for name in FIELD_NAMES if (value := getattr(self, name)) is not UNSET}

    def data(self) -> ContentData:
        """The fields set, as events store them."""
        return _data_of(self.given())

    def wire_names(self) -> list[str]:
        """The fields set, as clients spell them, in document order."""
        return [_WIRE_NAME[name] for name in self.given()]


FIELD_NAMES: tuple[str, ...] = WorkflowContent.__struct_fields__
CONTENT_FIELDS: tuple[str, ...] = WorkflowContent.__struct_encode_fields__
"""The content fields as clients spell them, in document order."""
_WIRE_NAME = dict(zip(FIELD_NAMES, CONTENT_FIELDS, strict=True))
if WorkflowChanges.__struct_fields__ != FIELD_NAMES:
    raise TypeError("WorkflowChanges must declare WorkflowContent's fields, in the same order")


def _data_of(fields: dict[str, Any]) -> ContentData:
    return {_WIRE_NAME[name]: msgspec.to_builtins(value) for name, value in fields.items()}


def normalize_name(name: str, field: str = "name") -> str:
    """Trim a workflow name and check its length; names are never blank."""
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= NAME_MAX:
        raise InvalidInput(field, f"must be 1 to {NAME_MAX} characters after trimming")
    return trimmed


def check_content(content: WorkflowContent) -> None:
    """Enforce the invariants every content version must keep."""
    if not content.pipeline_steps and not content.persona_pipeline_steps:
        raise InvalidInput(
            "pipelineSteps", "at least one of pipelineSteps and personaPipelineSteps is needed"
        )
    if content.workflow_graph is not None:
        check_graph(content.workflow_graph)


def check_graph(graph: WorkflowGraph) -> None:
    """Node ids are unique non-empty strings, and every edge joins two existing nodes."""
    node_ids: set[str] = set()
    for index, node in enumerate(graph.nodes):
        node_id = _required_string(node, "id", f"workflowGraph.nodes[{index}]")
        if node_id in node_ids:
            raise InvalidInput(f"workflowGraph.nodes[{index}].id", f"duplicate node id {node_id!r}")
        node_ids.add(node_id)
    for index, edge in enumerate(graph.edges):
        path = f"workflowGraph.edges[{index}]"
        for key in ("id", "source", "target"):
            _required_string(edge, key, path)
        for end in ("source", "target"):
            if edge[end] not in node_ids:
                raise InvalidInput(f"{path}.{end}", f"no node has id {edge[end]!r}")


def _required_string(item: dict[str, Any], key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{path}.{key}", "a non-empty string is needed")
    return value


CONTENT_DEFAULTS: ContentData = {
    field.encode_name: msgspec.to_builtins(
        field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    )
    for field in msgspec.structs.fields(WorkflowContent)
    if not field.required
}
"""Each optional field's default, keyed as on the wire (what a create that leaves it out stores)."""
