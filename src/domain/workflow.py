"""The Workflow aggregate: every change to a workflow definition is one of its past-tense events.

Each command checks its invariants and prepares plain data; a small `@event` method named after the
event then only changes state, and runs again on every replay. The event classes are declared
explicitly, so their stored topics (`domain.workflow:Workflow.Renamed`, …) never change.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypedDict
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as LibrarySnapshot

from domain.errors import Conflict
from domain.workflow_content import CONTENT_DEFAULTS as CONTENT_DEFAULTS  # re-exported for the views
from domain.workflow_content import CONTENT_FIELDS as CONTENT_FIELDS
from domain.workflow_content import (
    NAME_MAX,
    ContentData,
    WorkflowChanges,
    WorkflowContent,
    check_content,
    normalize_name,
)


class Actor(TypedDict):
    """Who caused an event: the API key that authorised the request."""

    keyId: str
    keyName: str


class Sealed:
    """Marks events whose content fields are encrypted with their aggregate's own data key."""


class Workflow(Aggregate):
    """A workflow definition; `content_version` counts content changes, not deletes and restores."""

    class Created(Aggregate.Created, Sealed):
        project_id: str
        actor: Actor
        content: ContentData

        def new_content(self) -> WorkflowContent:
            return WorkflowContent.from_data(self.content)

    class Duplicated(Created):
        duplicated_from: str

    class Updated(Aggregate.Event, Sealed):
        actor: Actor
        changes: ContentData

        def content_changes(self) -> WorkflowChanges:
            return WorkflowChanges.from_data(self.changes)

    class Renamed(Aggregate.Event, Sealed):
        actor: Actor
        name: str

        def content_changes(self) -> WorkflowChanges:
            return WorkflowChanges(name=self.name)

    class Reverted(Aggregate.Event, Sealed):
        actor: Actor
        reverted_from_version: int
        changes: ContentData

        def content_changes(self) -> WorkflowChanges:
            return WorkflowChanges.from_data(self.changes)

    class Deleted(Aggregate.Event, Sealed):
        actor: Actor

    class Restored(Aggregate.Event, Sealed):
        actor: Actor

    class PermanentlyDeleted(Aggregate.Event, Sealed):
        actor: Actor

    class Snapshot(LibrarySnapshot, Sealed):
        """The whole state at one version (domain/snapshots.py): sealed like the events it stands for.

        Its content is stored as the events store it (plain data), and typed again when loaded.
        """

        clear_fields = frozenset({"timestamp", "topic"})

        @classmethod
        def take(cls, aggregate: Any) -> Workflow.Snapshot:
            snapshot = super().take(aggregate)
            snapshot.state["content"] = aggregate.content.data()
            return snapshot

        def mutate(self, _: None) -> Any:
            workflow: Any = super().mutate(None)
            workflow.content = WorkflowContent.from_data(self.state["content"])
            return workflow

    def __init__(self, project_id: str, content: ContentData, duplicated_from: str | None = None) -> None:
        self.project_id = project_id
        self.content = WorkflowContent.from_data(content)
        self.content_version = 1
        self.deleted_at: datetime | None = None
        self.erased = False
        self.duplicated_from = duplicated_from

    @classmethod
    def create(cls, project_id: str, actor: Actor, content: WorkflowContent) -> Workflow:
        """A new workflow: the name trimmed, the invariants checked."""
        data = {**content.data(), "name": normalize_name(content.name)}
        check_content(WorkflowContent.from_data(data))
        return cls._create(cls.Created, id=uuid4(), project_id=project_id, actor=actor, content=data)

    def duplicate(self, actor: Actor, name: str | None) -> Workflow:
        """A new workflow with this one's content, named `name` or "<name> (copy)"."""
        if name is None:
            suffix = " (copy)"
            name = self.content.name[: NAME_MAX - len(suffix)] + suffix
        content = self.content.changed(WorkflowChanges(name=normalize_name(name)))
        return type(self)._create(
            self.Duplicated,
            id=uuid4(),
            project_id=self.project_id,
            actor=actor,
            content=content.data(),
            duplicated_from=str(self.id),
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def update(self, actor: Actor, changes: WorkflowChanges) -> None:
        """Change any subset of the content; a change that changes nothing records nothing."""
        self._refuse_if_deleted()
        if isinstance(changes.name, str):
            changes = WorkflowChanges(**{**changes.given(), "name": normalize_name(changes.name)})
        diff = self.content.changes_to(changes)
        if diff.given():
            check_content(self.content.changed(diff))
            self._updated(actor, diff.data())

    def rename(self, actor: Actor, name: str) -> None:
        """Give the workflow a new name; the same name again records nothing."""
        self._refuse_if_deleted()
        name = normalize_name(name)
        if name != self.content.name:
            self._renamed(actor, name)

    def revert(self, actor: Actor, version: int, content_then: WorkflowContent) -> None:
        """Make the content what it was at `version`, as a new content version."""
        self._refuse_if_deleted()
        self._reverted(actor, version, self.content.differences(content_then).data())

    def delete(self, actor: Actor) -> None:
        """Move the workflow to the trash."""
        if self.is_deleted:
            raise Conflict("the workflow is already deleted")
        self._deleted(actor, Workflow.Deleted.create_timestamp())

    def restore(self, actor: Actor) -> None:
        """Bring the workflow back from the trash."""
        if not self.is_deleted:
            raise Conflict("the workflow is not deleted")
        self._restored(actor)

    def erase(self, actor: Actor) -> None:
        """Delete for good: its data key is destroyed once this event is recorded."""
        self._permanently_deleted(actor)

    def _refuse_if_deleted(self) -> None:
        if self.is_deleted:
            raise Conflict("the workflow is deleted; restore it first")

    @event(Updated)
    def _updated(self, actor: Actor, changes: ContentData) -> None:
        self._change_content(WorkflowChanges.from_data(changes))

    @event(Renamed)
    def _renamed(self, actor: Actor, name: str) -> None:
        self._change_content(WorkflowChanges(name=name))

    @event(Reverted)
    def _reverted(self, actor: Actor, reverted_from_version: int, changes: ContentData) -> None:
        self._change_content(WorkflowChanges.from_data(changes))

    @event(Deleted)
    def _deleted(self, actor: Actor, timestamp: datetime) -> None:
        self.deleted_at = timestamp

    @event(Restored)
    def _restored(self, actor: Actor) -> None:
        self.deleted_at = None

    @event(PermanentlyDeleted)
    def _permanently_deleted(self, actor: Actor) -> None:
        self.erased = True

    def _change_content(self, changes: WorkflowChanges) -> None:
        """What every content event does: a new content version (the mutators' one shared step)."""
        self.content = self.content.changed(changes)
        self.content_version += 1


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
