"""The history and audit-log routes: who changed what and when, answered from the audit read model."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.dependencies import CURSORS, PRINCIPAL, CursorsDep, PrincipalDep, from_services
from api.params import Cursor, Limit, WorkflowId
from api.routes import read
from domain.camel import CamelStruct
from domain.errors import InvalidInput, NotFound
from projections.audit import PublicType
from projections.audit_queries import AuditFilter, AuditItem, AuditLog
from projections.documents import WorkflowDocument, epoch_ms
from projections.workflow_versions import VersionHistory

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
TIME_EXAMPLE = "2026-11-28T09:15:02.123Z"
POSITION_MAX = 2**63 - 1
"""The largest position either store can hold (a signed 64-bit integer)."""

Time = Annotated[
    str | None, QueryParameter(description=f"An RFC 3339 time with an offset, such as {TIME_EXAMPLE}")
]


AsOf = Annotated[
    str | None,
    QueryParameter(
        name="asOf",
        description=f"Answer the document as it was at this RFC 3339 time, such as {TIME_EXAMPLE}",
    ),
]


class AuditPage(CamelStruct):
    """A page of history or audit-log items, oldest first; pass `nextCursor` back as `cursor`."""

    items: list[AuditItem]
    next_cursor: str | None
    has_more: bool


def parse_time(value: str, field: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 time from a client; anything else is a 400."""
    problem = InvalidInput(field, f"must be an RFC 3339 time with an offset, such as {TIME_EXAMPLE}")
    if RFC3339.fullmatch(value) is None:
        raise problem
    try:
        return epoch_ms(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise problem from None


def optional_time(value: str | None, field: str) -> int | None:
    return None if value is None else parse_time(value, field)


def document_as_of(
    audit: AuditLog, history: VersionHistory, project_id: str, workflow_id: str, as_of: str
) -> WorkflowDocument:
    """The document at the content version current at `as_of`, with its lifecycle then; 404 before it."""
    point = audit.point_in_time(project_id, workflow_id, parse_time(as_of, "asOf"))
    document = None if point is None else history.document(project_id, workflow_id, point.version)
    if point is None or document is None:
        raise NotFound(f"no workflow had id {workflow_id!r} at {as_of}")
    return msgspec.structs.replace(document, updated_at=point.updated_at, deleted_at=point.deleted_at)


class AuditController(Controller):
    """A workflow's history and the project's audit log: every stored event, readable, in store order."""

    path = "/"
    tags = ["audit"]
    dependencies = {
        "principal": PRINCIPAL,
        "cursors": CURSORS,
        "audit": from_services(lambda services: services.audit),
    }

    @read("/workflows/history", "A workflow's stored events, oldest first")
    def get_workflow_history(
        self,
        audit: NamedDependency[AuditLog],
        cursors: CursorsDep,
        principal: PrincipalDep,
        id: WorkflowId,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AuditPage:
        """Each event with what it changed; `404` once the workflow is permanently deleted."""
        scope = f"history:{principal.project_id}:{id}"
        after = 0 if cursor is None else cursors.decode(scope, cursor)[0]
        found = audit.history(principal.project_id, id, after=after, limit=limit)
        if found is None:
            raise NotFound(f"no workflow has id {id!r}")
        items, more = found
        next_cursor = cursors.encode(scope, (items[-1].position, "")) if more else None
        return AuditPage(items=items, next_cursor=next_cursor, has_more=more)

    @read("/events", "The project's audit log")
    def list_events(
        self,
        audit: NamedDependency[AuditLog],
        cursors: CursorsDep,
        principal: PrincipalDep,
        limit: Limit = 50,
        cursor: Cursor = None,
        after: Annotated[
            int,
            QueryParameter(
                ge=0, le=POSITION_MAX, description="Start just past this position, to resume a read"
            ),
        ] = 0,
        type: Annotated[PublicType | None, QueryParameter(description="Only events of this type")] = None,
        workflow_id: Annotated[
            str | None, QueryParameter(name="workflowId", description="Only this workflow's events")
        ] = None,
        actor: Annotated[
            str | None, QueryParameter(description="Only events of this API key (its keyId)")
        ] = None,
        since: Time = None,
        until: Time = None,
    ) -> AuditPage:
        """Every stored event of the project in commit order; `since` is inclusive, `until` exclusive."""
        scope = f"events:{principal.project_id}"
        if cursor is not None:
            after = max(after, cursors.decode(scope, cursor)[0])
        where = AuditFilter(
            after=after,
            type=type,
            workflow_id=workflow_id,
            actor=actor,
            since_ms=optional_time(since, "since"),
            until_ms=optional_time(until, "until"),
        )
        items, more = audit.events(principal.project_id, where, limit=limit)
        next_cursor = cursors.encode(scope, (items[-1].position, "")) if more else None
        return AuditPage(items=items, next_cursor=next_cursor, has_more=more)
