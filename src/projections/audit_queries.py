"""Queries on the audit read model: a workflow's history, a project's filtered log, a point in time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.camel import CamelStruct
from projections.audit import PublicType
from projections.documents import ActorRow, decode_dict
from projections.keyset import Keyset
from store.database import Database


class AuditItem(CamelStruct, kw_only=True, omit_defaults=True):
    """One stored event as `history` and `events` answer it."""

    position: int
    type: PublicType
    workflow_id: str
    run_id: str | None = None
    version: int
    occurred_at: str
    actor: ActorRow
    request_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class AuditFilter:
    """Which items of a project's audit log a page holds; times are milliseconds since the epoch."""

    after: int = 0
    type: PublicType | None = None
    workflow_id: str | None = None
    actor: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True)
class PointInTime:
    """What a workflow's latest event at or before a moment says: its content version and lifecycle."""

    version: int
    updated_at: str
    deleted_at: str | None


IN_STORE_ORDER = Keyset(("position",))

_ITEM_COLUMNS = (
    "SELECT position, type, workflow_id, run_id, version, occurred_at, actor_key_id, actor_key_name,"
    " request_id, data FROM audit_event"
)


def _item(row: Any) -> AuditItem:
    return AuditItem(
        position=int(row["position"]),
        type=row["type"],
        workflow_id=row["workflow_id"],
        run_id=row["run_id"],
        version=int(row["version"]),
        occurred_at=row["occurred_at"],
        actor=ActorRow(key_id=row["actor_key_id"], key_name=row["actor_key_name"]),
        request_id=row["request_id"],
        data=decode_dict(row["data"]),
    )


class AuditLog:
    """Queries on the audit read model, always within one project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def history(
        self, project_id: str, workflow_id: str, *, after: int, limit: int
    ) -> tuple[list[AuditItem], bool] | None:
        """Up to `limit` of a workflow's own items past `after`, oldest first, and whether more follow.

        Its runs' items are left to the audit log. None when the project has no such workflow, or
        it was erased.
        """
        with self.database.transaction(commit=False) as tx:
            state = tx.execute(
                "SELECT content FROM audit_workflow WHERE workflow_id = ? AND project_id = ?",
                (workflow_id, project_id),
            ).fetchone()
            if state is None or state["content"] is None:
                return None
            rows, more = IN_STORE_ORDER.page(
                tx,
                f"{_ITEM_COLUMNS} WHERE workflow_id = ? AND run_id IS NULL AND project_id = ?",
                (workflow_id, project_id),
                (after,),
                limit,
            )
        return [_item(row) for row in rows], more

    def events(self, project_id: str, where: AuditFilter, *, limit: int) -> tuple[list[AuditItem], bool]:
        """Up to `limit` of the project's items that pass the filter, in position order."""
        sql = f"{_ITEM_COLUMNS} WHERE project_id = ?"
        params: list[Any] = [project_id]
        for clause, value in (
            (" AND type = ?", where.type),
            (" AND workflow_id = ?", where.workflow_id),
            (" AND actor_key_id = ?", where.actor),
            (" AND occurred_ms >= ?", where.since_ms),
            (" AND occurred_ms < ?", where.until_ms),
        ):
            if value is not None:
                sql += clause
                params.append(value)
        with self.database.transaction(commit=False) as tx:
            rows, more = IN_STORE_ORDER.page(tx, sql, params, (where.after,), limit)
        return [_item(row) for row in rows], more

    def point_in_time(self, project_id: str, workflow_id: str, at_ms: int) -> PointInTime | None:
        """The workflow's state at a moment, from its latest event then; None before it existed."""
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT type, version, occurred_at FROM audit_event"
                " WHERE workflow_id = ? AND run_id IS NULL AND project_id = ? AND occurred_ms <= ?"
                " ORDER BY position DESC LIMIT 1",
                (workflow_id, project_id, at_ms),
            ).fetchone()
        if row is None or row["type"] == "workflow.erased":
            return None
        deleted_at = row["occurred_at"] if row["type"] == "workflow.deleted" else None
        return PointInTime(int(row["version"]), row["occurred_at"], deleted_at)
