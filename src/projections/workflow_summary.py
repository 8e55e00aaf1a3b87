"""The list read model's projection: one row per live or trashed workflow, with its document and list item."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.dispatch import singledispatchmethod
from msgspec import UNSET, UnsetType

from domain.workflow import Workflow
from domain.workflow_content import WorkflowChanges
from projections.documents import decode_document, encode, micros, render_document
from projections.read_model import WORKFLOW_EVENTS, ReadModel, topics_of
from store.database import Tx


class WorkflowSummaryProjection(ReadModel):
    """Keeps `workflow_summary` equal to the current state of every workflow not erased."""

    name = "workflow_summary"
    tables = ("workflow_summary",)
    topics = topics_of(*WORKFLOW_EVENTS)
    ddl = (
        "CREATE TABLE IF NOT EXISTS workflow_summary ("
        " workflow_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, deleted INTEGER NOT NULL,"
        " updated_key BIGINT NOT NULL, item TEXT NOT NULL, document TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS workflow_summary_page"
        " ON workflow_summary (project_id, deleted, updated_key, workflow_id)",
    )

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Events without a rule here change nothing."""

    @apply.register
    def _created(self, event: Workflow.Created, tx: Tx) -> None:
        document = render_document(
            str(event.originator_id), event.new_content(), 1, event.timestamp, event.timestamp, None
        )
        tx.execute(
            "INSERT INTO workflow_summary"
            " (workflow_id, project_id, deleted, updated_key, item, document)"
            " VALUES (?, ?, 0, ?, ?, ?)",
            (
                document.id,
                event.project_id,
                micros(event.timestamp),
                encode(document.list_item()).decode(),
                encode(document).decode(),
            ),
        )

    @apply.register
    def _updated(self, event: Workflow.Updated | Workflow.Reverted | Workflow.Renamed, tx: Tx) -> None:
        self._write(tx, event, changes=event.content_changes())

    @apply.register
    def _deleted(self, event: Workflow.Deleted, tx: Tx) -> None:
        self._write(tx, event, deleted_at=event.timestamp)

    @apply.register
    def _restored(self, event: Workflow.Restored, tx: Tx) -> None:
        self._write(tx, event, deleted_at=None)

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        tx.execute("DELETE FROM workflow_summary WHERE workflow_id = ?", (str(event.originator_id),))

    def _write(
        self,
        tx: Tx,
        event: Workflow.Event,
        changes: WorkflowChanges | None = None,
        deleted_at: datetime | UnsetType | None = UNSET,
    ) -> None:
        """The row after the event: its document revised (see `WorkflowDocument.revised`)."""
        workflow_id = str(event.originator_id)
        row = tx.execute(
            "SELECT document FROM workflow_summary WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        if row is None:
            return
        document = decode_document(row["document"]).revised(event.timestamp, changes, deleted_at)
        tx.execute(
            "UPDATE workflow_summary SET deleted = ?, updated_key = ?, item = ?, document = ?"
            " WHERE workflow_id = ?",
            (
                0 if document.deleted_at is None else 1,
                micros(event.timestamp),
                encode(document.list_item()).decode(),
                encode(document).decode(),
                workflow_id,
            ),
        )
