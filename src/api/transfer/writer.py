"""Writes an export's lines into one open transaction, in batches, with each dialect's bulk path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from api.transfer.format import (
    PAGE_SIZE,
    REPLACED_TABLES,
    TRANSFERRED_TABLES,
    End,
    EventLine,
    EventTable,
    Line,
    RowLine,
    TransferError,
    decode_value,
)
from api.transfer.progress import Progress
from store.database import Dialect

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class StoreWriter:
    """Writes an export's lines into one open transaction, in batches, with the dialect's own bulk path."""

    def __init__(self, cursor: Any, dialect: Dialect, events: EventTable) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.events = events
        self.mark = "%s" if dialect == "postgres" else "?"
        self.max_position = 0

    def lock_events(self) -> None:
        """PostgreSQL: the lock the library's writers take, so no server writes while the import runs."""
        if self.dialect == "postgres":
            self.cursor.execute(f"LOCK TABLE {self.events.name} IN EXCLUSIVE MODE")

    def used_tables(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for table in ("events", *(t for t in TRANSFERRED_TABLES if t not in REPLACED_TABLES)):
            name = self.events.name if table == "events" else table
            self.cursor.execute(f"SELECT COUNT(*) AS n FROM {name}")  # noqa: S608
            count = int(self.cursor.fetchone()["n"])
            if count:
                used[table] = count
        return used

    def load(self, lines: Iterator[Line], progress: Progress) -> dict[str, int]:
        for table in REPLACED_TABLES:
            self.cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        counts: dict[str, int] = {"events": 0}
        events: list[EventLine] = []
        rows: list[RowLine] = []
        for line in lines:
            if isinstance(line, EventLine):
                events.append(line)
                if len(events) >= PAGE_SIZE:
                    self._events(events, counts, progress)
            elif isinstance(line, RowLine):
                if events:
                    self._events(events, counts, progress)
                if rows and (rows[0].table != line.table or len(rows) >= PAGE_SIZE):
                    self._rows(rows, counts)
                rows.append(line)
            elif isinstance(line, End):
                self._events(events, counts, progress)
                self._rows(rows, counts)
                _check_counts(line.counts, counts)
                return counts
            else:
                raise TransferError("the file has a second header: two exports joined together?")
        raise TransferError("the file ends before its `end` line: it was cut short; nothing was imported")

    def _events(self, batch: list[EventLine], counts: dict[str, int], progress: Progress) -> None:
        if not batch:
            return
        if batch[0].position <= self.max_position:
            raise TransferError(f"the event at position {batch[0].position} is out of order")
        if self.dialect == "postgres":
            self._copy_events(batch)
        else:
            self.cursor.executemany(
                f"INSERT INTO {self.events.name} (rowid, originator_id, originator_version, topic, state)"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (e.position, _sqlite_id(e.originator_id), e.originator_version, e.topic, e.state)
                    for e in batch
                ],
            )
        self.max_position = batch[-1].position
        counts["events"] += len(batch)
        progress.advance(len(batch))
        batch.clear()

    def _copy_events(self, batch: list[EventLine]) -> None:
        columns = "(notification_id, originator_id, originator_version, topic, state)"
        with self.cursor.copy(f"COPY {self.events.name} {columns} FROM STDIN") as copy:
            for e in batch:
                copy.write_row((e.position, e.originator_id, e.originator_version, e.topic, e.state))

    def _rows(self, batch: list[RowLine], counts: dict[str, int]) -> None:
        if not batch:
            return
        table = batch[0].table
        if table not in TRANSFERRED_TABLES:
            raise TransferError(f"the file has rows for an unknown table {table!r}")
        columns = sorted(batch[0].row)
        if not all(IDENTIFIER.fullmatch(column) for column in columns):
            raise TransferError(f"the file names a column of {table!r} that cannot exist")
        marks = ", ".join(self.mark for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        self.cursor.executemany(
            sql, [tuple(decode_value(line.row.get(c)) for c in columns) for line in batch]
        )
        counts[table] = counts.get(table, 0) + len(batch)
        batch.clear()

    def restart_positions(self) -> None:
        """PostgreSQL: the next event stored gets a position after the imported ones."""
        if self.dialect == "postgres" and self.max_position:
            self.cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (self.events.name, self.max_position),
            )


def _check_counts(expected: dict[str, int], loaded: dict[str, int]) -> None:
    for kind, count in expected.items():
        if loaded.get(kind, 0) != count:
            raise TransferError(
                f"the file's end line counts {count:,} {kind} but it holds {loaded.get(kind, 0):,};"
                " nothing was imported"
            )


def _sqlite_id(originator_id: str) -> str:
    """The SQLite recorder stores UUID ids as 32 hex digits (and any other id as it is)."""
    try:
        return UUID(originator_id).hex
    except ValueError:
        return originator_id
