"""The version-history read model: one row per content version, with its full document."""

from __future__ import annotations

from typing import Literal

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from domain.camel import CamelStruct
from domain.formats import Timestamp
from domain.workflow import Actor, Workflow, version_id
from domain.workflow_content import CONTENT_DEFAULTS, WorkflowChanges
from projections.documents import ActorRow, WorkflowDocument, decode_document, encode, render_document
from projections.read_model import ReadModel, topics_of
from store.database import Database, Tx

Source = Literal["create", "update", "rename", "revert", "duplicate"]


class VersionEntry(CamelStruct):
    """One content version as the Versions tab lists it."""

    version_id: str
    version: int
    created_at: Timestamp
    actor: ActorRow
    source: Source
    changed_fields: list[str]
    reverted_from_version: int | None
    name: str


DEFAULT_VERSIONS_LIMIT = 100
"""A page of the Versions tab: enough that a usual history comes whole in one answer."""
MAX_VERSIONS_LIMIT = 1000


class WorkflowVersions(CamelStruct):
    """The Versions tab, a page at a time: content versions newest first, `nextCursor` to go on."""

    workflow_id: str
    current_version: int
    versions: list[VersionEntry]
    next_cursor: str | None = None
    has_more: bool = False


decode_entry = msgspec.json.Decoder(VersionEntry).decode


class WorkflowVersionsProjection(ReadModel):
    """Keeps `workflow_version` equal to the content history of every workflow not erased."""

    name = "workflow_version"
    tables = ("workflow_version",)
    topics = topics_of(
        Workflow.Created,
        Workflow.Duplicated,
        Workflow.Updated,
        Workflow.Renamed,
        Workflow.Reverted,
        Workflow.PermanentlyDeleted,
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS workflow_version ("
        " workflow_id TEXT NOT NULL, version INTEGER NOT NULL, project_id TEXT NOT NULL,"
        " entry TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (workflow_id, version))",
    )

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Events without a rule here change nothing."""

    @apply.register
    def _created(self, event: Workflow.Created, tx: Tx) -> None:
        source: Source = "duplicate" if isinstance(event, Workflow.Duplicated) else "create"
        content = event.new_content()
        changed = [field for field, value in content.data().items() if value != CONTENT_DEFAULTS.get(field)]
        at = event.timestamp
        document = render_document(str(event.originator_id), content, 1, at, at, None)
        self._insert(tx, event.actor, event.project_id, document, source, changed, None)

    @apply.register
    def _updated(self, event: Workflow.Updated, tx: Tx) -> None:
        self._next_version(tx, event, event.content_changes(), "update", None)

    @apply.register
    def _renamed(self, event: Workflow.Renamed, tx: Tx) -> None:
        self._next_version(tx, event, event.content_changes(), "rename", None)

    @apply.register
    def _reverted(self, event: Workflow.Reverted, tx: Tx) -> None:
        self._next_version(tx, event, event.content_changes(), "revert", event.reverted_from_version)

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        tx.execute("DELETE FROM workflow_version WHERE workflow_id = ?", (str(event.originator_id),))

    def _next_version(
        self,
        tx: Tx,
        event: Workflow.Updated | Workflow.Renamed | Workflow.Reverted,
        changes: WorkflowChanges,
        source: Source,
        reverted_from: int | None,
    ) -> None:
        row = tx.execute(
            "SELECT project_id, document FROM workflow_version WHERE workflow_id = ?"
            " ORDER BY version DESC LIMIT 1",
            (str(event.originator_id),),
        ).fetchone()
        if row is None:
            return
        document = decode_document(row["document"]).revised(event.timestamp, changes, deleted_at=None)
        changed = changes.wire_names()
        self._insert(tx, event.actor, row["project_id"], document, source, changed, reverted_from)

    @staticmethod
    def _insert(
        tx: Tx,
        actor: Actor,
        project_id: str,
        document: WorkflowDocument,
        source: Source,
        changed: list[str],
        reverted_from: int | None,
    ) -> None:
        entry = VersionEntry(
            version_id=version_id(document.id, document.version),
            version=document.version,
            created_at=document.updated_at,
            actor=ActorRow(key_id=actor["keyId"], key_name=actor["keyName"]),
            source=source,
            changed_fields=changed,
            reverted_from_version=reverted_from,
            name=document.name,
        )
        tx.execute(
            "INSERT INTO workflow_version (workflow_id, version, project_id, entry, document)"
            " VALUES (?, ?, ?, ?, ?)",
            (document.id, document.version, project_id, encode(entry).decode(), encode(document).decode()),
        )


class VersionHistory:
    """Queries on the version-history read model, always within one project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def versions(
        self,
        project_id: str,
        workflow_id: str,
        *,
        limit: int = DEFAULT_VERSIONS_LIMIT,
        before: int | None = None,
    ) -> WorkflowVersions | None:
        """Up to `limit` versions below `before` (None: the newest); None if the project has no such workflow.

        A workflow's versions are the whole numbers 1..current, so a page is a range of the primary
        key: it reads `limit` rows at version 10,000 as at version 10, whatever plan the database
        picks (an `ORDER BY … LIMIT` can be planned as a sort of the whole history). `next_cursor`
        is left to the caller, who signs the last version of the page when `has_more`.
        """
        with self.database.transaction(commit=False) as tx:
            newest = tx.execute(
                "SELECT version, project_id FROM workflow_version WHERE workflow_id = ?"
                " ORDER BY version DESC LIMIT 1",
                (workflow_id,),
            ).fetchone()
            if newest is None or newest["project_id"] != project_id:
                return None
            top = newest["version"] + 1 if before is None else min(before, newest["version"] + 1)
            rows = tx.execute(
                "SELECT entry FROM workflow_version"
                " WHERE workflow_id = ? AND project_id = ? AND version < ? AND version >= ?"
                " ORDER BY version DESC",
                (workflow_id, project_id, top, top - limit),
            ).fetchall()
        return WorkflowVersions(
            workflow_id=workflow_id,
            current_version=newest["version"],
            versions=[decode_entry(row["entry"]) for row in rows],
            has_more=top - limit > 1,
        )

    def document(self, project_id: str, workflow_id: str, version: int) -> WorkflowDocument | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT document FROM workflow_version"
                " WHERE workflow_id = ? AND version = ? AND project_id = ?",
                (workflow_id, version, project_id),
            ).fetchone()
        return None if row is None else decode_document(row["document"])
