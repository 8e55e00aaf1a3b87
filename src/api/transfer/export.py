"""Export: the event store as stored, then the tables not derived from events, read a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from eventsourcing.persistence import Notification

from api.transfer.format import (
    FORMAT,
    FORMAT_VERSION,
    PAGE_SIZE,
    TRANSFERRED_TABLES,
    End,
    EventLine,
    EventTable,
    Header,
    Line,
    RowLine,
    encode_line,
    encode_row,
)
from api.transfer.progress import Progress
from composition.services import Services
from store.database import Database


def export_store(services: Services, out: IO[bytes], progress: Progress) -> dict[str, int]:
    """Write the whole store to `out`, reading in pages; returns what was written, per kind."""
    events = EventTable.of(services)
    head = services.workflows.recorder.max_notification_id() or 0
    counts = _count_rows(services.database, events, head)
    progress.total = counts["events"]
    header = Header(
        format=FORMAT,
        version=FORMAT_VERSION,
        dialect=services.database.dialect,
        exported_at=datetime.now(UTC).isoformat(),
        head_position=head,
        data_key_check=_check_value(services.database),
        counts=counts,
    )
    _write(out, header)
    written = {"events": 0}
    for page in _event_pages(services, head):
        for notification in page:
            _write(out, _event_line(services, notification))
        written["events"] += len(page)
        progress.advance(len(page))
    for table, key in TRANSFERRED_TABLES.items():
        written[table] = 0
        for row in _table_rows(services.database, table, key):
            _write(out, RowLine(table=table, row=encode_row(row)))
            written[table] += 1
    _write(out, End(counts=written))
    out.flush()
    return written


def _write(out: IO[bytes], line: Line) -> None:
    out.write(encode_line(line))
    out.write(b"\n")


def _count_rows(database: Database, events: EventTable, head: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with database.transaction(commit=False) as tx:
        sql = f"SELECT COUNT(*) AS n FROM {events.name} WHERE {events.position} <= ?"  # noqa: S608
        counts["events"] = int(tx.execute(sql, (head,)).fetchone()["n"])
        for table in TRANSFERRED_TABLES:
            counts[table] = int(tx.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"])  # noqa: S608
    return counts


def _check_value(database: Database) -> str | None:
    with database.transaction(commit=False) as tx:
        row = tx.execute("SELECT check_value FROM data_key_check WHERE id = 1").fetchone()
    return None if row is None else str(row["check_value"])


def _event_pages(services: Services, head: int) -> Iterator[list[Notification]]:
    """Every event up to `head` in position order, a page at a time (no gap ever ends the read)."""
    recorder = services.workflows.recorder
    position = 0
    while position < head:
        page = list(recorder.select_notifications(start=position + 1, limit=PAGE_SIZE, stop=head))
        if not page:
            return
        yield page
        position = page[-1].id


def _event_line(services: Services, notification: Notification) -> EventLine:
    """The stored event as it is, plus its time and request id from its clear (never sealed) part."""
    clear = services.workflows.mapper.clear_state(notification)  # type: ignore[attr-defined]
    moment = clear.get("timestamp")
    request_id = clear.get("request_id")
    return EventLine(
        position=notification.id,
        originator_id=str(notification.originator_id),
        originator_version=notification.originator_version,
        topic=notification.topic,
        state=bytes(notification.state),
        timestamp=moment.isoformat() if isinstance(moment, datetime) else None,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _table_rows(database: Database, table: str, key: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every row of a table in key order, PAGE_SIZE at a time."""
    columns = ", ".join(key)
    marks = ", ".join("?" for _ in key)
    after: tuple[Any, ...] | None = None
    while True:
        with database.transaction(commit=False) as tx:
            if after is None:
                sql = f"SELECT * FROM {table} ORDER BY {columns} LIMIT ?"  # noqa: S608
                rows = tx.execute(sql, (PAGE_SIZE,)).fetchall()
            else:
                sql = f"SELECT * FROM {table} WHERE ({columns}) > ({marks}) ORDER BY {columns} LIMIT ?"  # noqa: S608
                rows = tx.execute(sql, (*after, PAGE_SIZE)).fetchall()
        found = [dict(row) for row in rows]
        yield from found
        if len(found) < PAGE_SIZE:
            return
        after = tuple(found[-1][column] for column in key)
