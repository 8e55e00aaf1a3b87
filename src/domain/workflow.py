"""The Workflow aggregate: every change to a workflow definition is one of its past-tense events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypedDict
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as LibrarySnapshot

from domain.errors import Conflict, InvalidInput

NAME_MAX = 200

CONTENT_FIELDS = (
    "name",
    "description",
    "type",
    "defaultConfig",
    "maxIterations",
    "pipelineSteps",
    "personaPipelineSteps",
    "workflowGraph",
    "defaultCheckerInstructions",
    "defaultOptimizerInstructions",
)
"""A workflow's content, keyed as clients spell the fields; a content version is a value of this."""

CONTENT_DEFAULTS: dict[str, Any] = {
    "description": None,
    "type": "standard",
    "defaultConfig": None,
    "maxIterations": None,
    "pipelineSteps": [],
    "personaPipelineSteps": [],
    "workflowGraph": None,
    "defaultCheckerInstructions": None,
    "defaultOptimizerInstructions": None,
}

Content = dict[str, Any]


class Actor(TypedDict):
    """Who caused an event: the API key that authorised the request."""

    keyId: str
    keyName: str


class Sealed:
    """Marks events whose content fields are encrypted with their aggregate's own data key."""


def normalize_name(name: str, field: str = "name") -> str:
    """Trim a workflow name and check its length; names are never blank."""
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= NAME_MAX:
        raise InvalidInput(field, f"must be 1 to {NAME_MAX} characters after trimming")
    return trimmed


def check_content(content: Content) -> None:
    """Enforce the invariants every content version must keep."""
    if not content["pipelineSteps"] and not content["personaPipelineSteps"]:
        raise InvalidInput(
            "pipelineSteps", "at least one of pipelineSteps and personaPipelineSteps is needed"
        )
    if content["workflowGraph"] is not None:
        check_graph(content["workflowGraph"])


def check_graph(graph: dict[str, Any]) -> None:
    """Node ids are unique strings, and every edge joins two existing nodes."""
    node_ids: set[str] = set()
    for index, node in enumerate(graph.get("nodes", [])):
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise InvalidInput(f"workflowGraph.nodes[{index}].id", "a non-empty string is needed")
        if node_id in node_ids:
            raise InvalidInput(f"workflowGraph.nodes[{index}].id", f"duplicate node id {node_id!r}")
        node_ids.add(node_id)
    for index, edge in enumerate(graph.get("edges", [])):
        for key in ("id", "source", "target"):
            value = edge.get(key)
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"workflowGraph.edges[{index}].{key}", "a non-empty string is needed")
        for key in ("source", "target"):
            if edge[key] not in node_ids:
                raise InvalidInput(f"workflowGraph.edges[{index}].{key}", f"no node has id {edge[key]!r}")


def complete_content(given: Content) -> Content:
    """A full content value from the fields a client gave, defaults filled in, invariants checked."""
    content = {**CONTENT_DEFAULTS, **given}
    content["name"] = normalize_name(content["name"])
    check_content(content)
    return content


class Workflow(Aggregate):
    """A workflow definition; `content_version` counts content changes, not deletes and restores."""

    class Created(Aggregate.Created, Sealed):
        project_id: str
        actor: Actor
        content: Content

    class Duplicated(Created):
        duplicated_from: str

    class Updated(Aggregate.Event, Sealed):
        actor: Actor
        changes: Content

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.content.update(self.changes)
            aggregate.content_version += 1

    class Renamed(Aggregate.Event, Sealed):
        actor: Actor
        name: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.content["name"] = self.name
            aggregate.content_version += 1

    class Reverted(Aggregate.Event, Sealed):
        actor: Actor
        reverted_from_version: int
        changes: Content

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.content.update(self.changes)
            aggregate.content_version += 1

    class Deleted(Aggregate.Event, Sealed):
        actor: Actor

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.deleted_at = self.timestamp

    class Restored(Aggregate.Event, Sealed):
        actor: Actor

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.deleted_at = None

    class PermanentlyDeleted(Aggregate.Event, Sealed):
        actor: Actor

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Workflow)
            aggregate.erased = True

    class Snapshot(LibrarySnapshot, Sealed):
        """The whole state at one version (domain/snapshots.py): sealed like the events it stands for."""

        clear_fields = frozenset({"timestamp", "topic"})

    def __init__(
        self, project_id: str, actor: Actor, content: Content, duplicated_from: str | None = None
    ) -> None:
        self.project_id = project_id
        self.content: Content = dict(content)
        self.content_version = 1
        self.deleted_at: datetime | None = None
        self.erased = False
        self.duplicated_from = duplicated_from

    @classmethod
    def create(cls, project_id: str, actor: Actor, content: Content) -> Workflow:
        """A new workflow from the fields a client gave."""
        return cls._create(
            cls.Created,
            id=uuid4(),
            project_id=project_id,
            actor=actor,
            content=complete_content(content),
        )

    def duplicate(self, actor: Actor, name: str | None) -> Workflow:
        """A new workflow with this one's content, named `name` or "<name> (copy)"."""
        if name is None:
            suffix = " (copy)"
            name = self.content["name"][: NAME_MAX - len(suffix)] + suffix
        content = {**self.content, "name": normalize_name(name)}
        return type(self)._create(
            self.Duplicated,
            id=uuid4(),
            project_id=self.project_id,
            actor=actor,
            content=content,
            duplicated_from=str(self.id),
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def update(self, actor: Actor, changes: Content) -> None:
        """Change any subset of the content; a change that changes nothing records nothing."""
        self._refuse_if_deleted()
        if "name" in changes:
            changes = {**changes, "name": normalize_name(changes["name"])}
        diff = {key: value for key, value in changes.items() if self.content[key] != value}
        if not diff:
            return
        check_content({**self.content, **diff})
        self.trigger_event(self.Updated, actor=actor, changes=diff)

    def rename(self, actor: Actor, name: str) -> None:
        """Give the workflow a new name; the same name again records nothing."""
        self._refuse_if_deleted()
        name = normalize_name(name)
        if name != self.content["name"]:
            self.trigger_event(self.Renamed, actor=actor, name=name)

    def revert(self, actor: Actor, version: int, content_then: Content) -> None:
        """Make the content what it was at `version`, as a new content version."""
        self._refuse_if_deleted()
        diff = {key: value for key, value in content_then.items() if self.content[key] != value}
        self.trigger_event(self.Reverted, actor=actor, reverted_from_version=version, changes=diff)

    def delete(self, actor: Actor) -> None:
        """Move the workflow to the trash."""
        if self.is_deleted:
            raise Conflict("the workflow is already deleted")
        self.trigger_event(self.Deleted, actor=actor)

    def restore(self, actor: Actor) -> None:
        """Bring the workflow back from the trash."""
        if not self.is_deleted:
            raise Conflict("the workflow is not deleted")
        self.trigger_event(self.Restored, actor=actor)

    def erase(self, actor: Actor) -> None:
        """Delete for good: its data key is destroyed once this event is recorded."""
        self.trigger_event(self.PermanentlyDeleted, actor=actor)

    def _refuse_if_deleted(self) -> None:
        if self.is_deleted:
            raise Conflict("the workflow is deleted; restore it first")


MAX_VERSION = 2**31 - 1
"""The highest content version a client may name; far beyond any real history, and fits every SQL integer."""

_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,9}")


def parse_workflow_id(value: str) -> UUID | None:
    """A workflow (or run) id from a client, or None when it cannot be one.

    Only the spelling the service gives out counts: `UUID()` also takes upper case, braces and
    `urn:uuid:`, which the read models (keyed by the canonical string) would not find.
    """
    try:
        uuid = UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None
    return uuid if str(uuid) == value else None


def parse_version_number(text: str) -> int | None:
    """A content version as the service writes it: ASCII digits, no leading zero, at most MAX_VERSION.

    (`str.isdigit` also takes superscripts and other scripts' digits, which `int()` refuses.)
    """
    if not _VERSION_NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None


def version_id(workflow_id: str, version: int) -> str:
    """The opaque id clients use to name one content version of one workflow."""
    return f"{workflow_id}.v{version}"


def parse_version_id(value: str) -> tuple[str, int] | None:
    """The workflow id and content version a version id names, or None if it names none."""
    workflow_id, _, number = value.rpartition(".v")
    version = parse_version_number(number)
    if not workflow_id or version is None:
        return None
    return workflow_id, version
