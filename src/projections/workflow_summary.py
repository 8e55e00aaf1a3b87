"""The list read model: one row per live or trashed workflow, with its document, paged by keyset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.workflow import Workflow
from projections.documents import (
    WorkflowDocument,
    WorkflowListItem,
    content_of,
    decode_dict,
    decode_document,
    decode_list_item,
    encode,
    iso_ms,
    list_item,
    micros,
    render_document,
)
from projections.read_model import WORKFLOW_EVENTS, ReadModel, topics_of
from store.database import Database, Tx


@dataclass(frozen=True)
class PageKey:
    """Where a page of the list ends: the last row's sort key."""

    updated_key: int
    workflow_id: str


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
            str(event.originator_id), event.content, 1, event.timestamp, event.timestamp, None
        )
        tx.execute(
            "INSERT INTO workflow_summary"
            " (workflow_id, project_id, deleted, updated_key, item, document)"
            " VALUES (?, ?, 0, ?, ?, ?)",
            (
                document["id"],
                event.project_id,
                micros(event.timestamp),
                encode(list_item(document)).decode(),
                encode(document).decode(),
            ),
        )

    @apply.register
    def _updated(self, event: Workflow.Updated | Workflow.Reverted, tx: Tx) -> None:
        self._change_content(tx, event, event.changes)

    @apply.register
    def _renamed(self, event: Workflow.Renamed, tx: Tx) -> None:
        self._change_content(tx, event, {"name": event.name})

    @apply.register
    def _deleted(self, event: Workflow.Deleted, tx: Tx) -> None:
        self._write(tx, event, deletedAt=iso_ms(event.timestamp))

    @apply.register
    def _restored(self, event: Workflow.Restored, tx: Tx) -> None:
        self._write(tx, event, deletedAt=None)

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        tx.execute("DELETE FROM workflow_summary WHERE workflow_id = ?", (str(event.originator_id),))

    def _change_content(self, tx: Tx, event: Workflow.Event, changes: dict[str, Any]) -> None:
        document = self._document(tx, str(event.originator_id))
        if document is None:
            return
        content = {**content_of(document), **changes}
        self._write(tx, event, document, **content, version=document["version"] + 1)

    def _write(
        self,
        tx: Tx,
        event: Workflow.Event,
        document: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        workflow_id = str(event.originator_id)
        if document is None:
            document = self._document(tx, workflow_id)
            if document is None:
                return
        document.update(fields)
        document = render_document(
            workflow_id,
            content_of(document),
            document["version"],
            document["createdAt"],
            event.timestamp,
            document["deletedAt"],
        )
        tx.execute(
            "UPDATE workflow_summary SET deleted = ?, updated_key = ?, item = ?, document = ?"
            " WHERE workflow_id = ?",
            (
                0 if document["deletedAt"] is None else 1,
                micros(event.timestamp),
                encode(list_item(document)).decode(),
                encode(document).decode(),
                workflow_id,
            ),
        )

    @staticmethod
    def _document(tx: Tx, workflow_id: str) -> dict[str, Any] | None:
        row = tx.execute(
            "SELECT document FROM workflow_summary WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        return None if row is None else decode_dict(row["document"])


class WorkflowSummaries:
    """Queries on the list read model, always within one project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, project_id: str, workflow_id: str) -> WorkflowDocument | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT document FROM workflow_summary WHERE workflow_id = ? AND project_id = ?",
                (workflow_id, project_id),
            ).fetchone()
        return None if row is None else decode_document(row["document"])

    def page(
        self, project_id: str, *, deleted: bool, after: PageKey | None, limit: int
    ) -> tuple[list[WorkflowListItem], PageKey | None]:
        """Up to `limit` items, newest `updatedAt` first, and the key to continue from (if more)."""
        sql = (
            "SELECT workflow_id, updated_key, item FROM workflow_summary WHERE project_id = ? AND deleted = ?"
        )
        params: list[Any] = [project_id, 1 if deleted else 0]
        if after is not None:
            sql += " AND (updated_key, workflow_id) < (?, ?)"
            params += [after.updated_key, after.workflow_id]
        sql += " ORDER BY updated_key DESC, workflow_id DESC LIMIT ?"
        params.append(limit + 1)
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [decode_list_item(row["item"]) for row in rows]
        last = PageKey(rows[-1]["updated_key"], rows[-1]["workflow_id"]) if more else None
        return items, last
