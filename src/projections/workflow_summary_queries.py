"""Queries on the list read model: one workflow's document, and the list (or the trash) page by page."""

from __future__ import annotations

from dataclasses import dataclass

from projections.documents import WorkflowDocument, WorkflowListItem, decode_document, decode_list_item
from projections.keyset import Keyset
from store.database import Database

NEWEST_UPDATED_FIRST = Keyset(("updated_key", "workflow_id"), descending=True)


@dataclass(frozen=True)
class PageKey:
    """Where a page of the list ends: the last row's sort key."""

    updated_key: int
    workflow_id: str


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
        select = (
            "SELECT workflow_id, updated_key, item FROM workflow_summary WHERE project_id = ? AND deleted = ?"
        )
        key = None if after is None else (after.updated_key, after.workflow_id)
        with self.database.transaction(commit=False) as tx:
            rows, more = NEWEST_UPDATED_FIRST.page(tx, select, (project_id, 1 if deleted else 0), key, limit)
        items = [decode_list_item(row["item"]) for row in rows]
        last = PageKey(*NEWEST_UPDATED_FIRST.key_of(rows[-1])) if more else None
        return items, last
