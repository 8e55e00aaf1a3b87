"""Export and import a whole store as JSON Lines: how a deployment moves between SQLite and PostgreSQL.

The export is the event store as stored (sealed content stays sealed: nothing is decrypted), in
position order, plus the rows that are not derived from events: projects, key hashes, wrapped data
keys, the cursor secret, upload metadata and idempotency records. Read models are never copied;
the import rebuilds them from the events. Events keep their positions, so an audit consumer's
`after=POSITION` survives the move.

Lines, each one JSON object tagged by `kind`: one `header`, then `event` lines in position order,
then `row` lines table by table, then one `end` line with the counts (a file without it was cut
short, and is refused).
"""

from __future__ import annotations

import base64
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from api.backend import Backend
from api.settings import Settings
from domain.database import Database, Dialect, StoreConfig
from domain.key_encryption import default_key_file, resolve_master_key

FORMAT = "workflow-service-export"
FORMAT_VERSION = 1
PAGE_SIZE = 1000
"""Events read (export) or written (import) per round trip; memory stays constant whatever the size."""
PROGRESS_EVERY = 10_000

TRANSFERRED_TABLES: dict[str, tuple[str, ...]] = {
    "projects": ("project_id",),
    "api_keys": ("key_id",),
    "data_keys": ("aggregate_id",),
    "data_key_check": ("id",),
    "service_secrets": ("name",),
    "files": ("storage_id",),
    "upload_slots": ("token_hash",),
    "idempotency_keys": ("scope", "idempotency_key"),
}
"""Every table not derived from events, and its primary key (the order rows are exported in)."""
REPLACED_TABLES = frozenset({"data_key_check", "service_secrets"})
"""Tables every new store fills for itself on first open; the import replaces their rows."""
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class TransferError(Exception):
    """The export file or the target store is not fit for an import; nothing was imported."""


class Header(msgspec.Struct, tag="header", tag_field="kind", rename="camel"):
    format: str
    version: int
    dialect: str
    exported_at: str
    head_position: int
    data_key_check: str | None
    counts: dict[str, int]


class EventLine(msgspec.Struct, tag="event", tag_field="kind", rename="camel"):
    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    """As stored (base64 in the file): sealed content stays sealed."""
    timestamp: str | None = None
    request_id: str | None = None


class RowLine(msgspec.Struct, tag="row", tag_field="kind"):
    table: str
    row: dict[str, Any]
    """Column → value; a binary value is written as {"base64": "..."}."""


class End(msgspec.Struct, tag="end", tag_field="kind"):
    counts: dict[str, int]


Line = Header | EventLine | RowLine | End
decode_line = msgspec.json.Decoder(Line).decode
encode_line = msgspec.json.Encoder().encode


@dataclass
class Progress:
    """Counts work done and says so on stderr every PROGRESS_EVERY items, and once at the end."""

    what: str
    total: int | None = None
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    every: int = PROGRESS_EVERY
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _next: int = 0

    def __post_init__(self) -> None:
        self._next = self.every

    def advance(self, count: int) -> None:
        self.done += count
        if self.done >= self._next:
            self._next = (self.done // self.every + 1) * self.every
            of = f" of {self.total:,}" if self.total is not None else ""
            print(f"{self.what}: {self.done:,}{of} ({self.rate():,.0f}/s)", file=self.stream, flush=True)

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.done / max(self.seconds(), 1e-9)


@dataclass(frozen=True)
class EventTable:
    """The library's events table: its qualified name and the column holding an event's position."""

    name: str
    position: str
    dialect: Dialect

    @classmethod
    def of(cls, backend: Backend) -> EventTable:
        recorder: Any = backend.workflows.recorder
        table = f'"{recorder.events_table_name}"'
        if backend.database.dialect == "postgres":
            return cls(f'"{recorder.datastore.schema}".{table}', "notification_id", "postgres")
        return cls(table, "rowid", "sqlite")


# ---------------------------------------------------------------------------------------------- export


def export_store(backend: Backend, out: IO[bytes], progress: Progress) -> dict[str, int]:
    """Write the whole store to `out`, reading in pages; returns what was written, per kind."""
    events = EventTable.of(backend)
    head = backend.workflows.recorder.max_notification_id() or 0
    counts = _count_rows(backend.database, events, head)
    progress.total = counts["events"]
    header = Header(
        format=FORMAT,
        version=FORMAT_VERSION,
        dialect=backend.database.dialect,
        exported_at=datetime.now(UTC).isoformat(),
        head_position=head,
        data_key_check=_check_value(backend.database),
        counts=counts,
    )
    _write(out, header)
    written = {"events": 0}
    for page in _event_pages(backend, head):
        for notification in page:
            _write(out, _event_line(backend, notification))
        written["events"] += len(page)
        progress.advance(len(page))
    for table, key in TRANSFERRED_TABLES.items():
        written[table] = 0
        for row in _table_rows(backend.database, table, key):
            _write(out, RowLine(table=table, row=_encode_row(row)))
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


def _event_pages(backend: Backend, head: int) -> Iterator[list[Notification]]:
    """Every event up to `head` in position order, a page at a time (no gap ever ends the read)."""
    recorder = backend.workflows.recorder
    position = 0
    while position < head:
        page = list(recorder.select_notifications(start=position + 1, limit=PAGE_SIZE, stop=head))
        if not page:
            return
        yield page
        position = page[-1].id


def _event_line(backend: Backend, notification: Notification) -> EventLine:
    """The stored event as it is, plus its time and request id from its clear (never sealed) part."""
    clear = backend.workflows.mapper.clear_state(notification)  # type: ignore[attr-defined]
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


def _encode_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        column: {"base64": bytes(value)} if isinstance(value, bytes | memoryview) else value
        for column, value in row.items()
    }


# ---------------------------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What an import stored, and how long the two phases took."""

    counts: dict[str, int]
    store_seconds: float
    views_seconds: float = 0.0
    source_dialect: str = ""


def import_store(
    backend: Backend,
    lines: Iterable[bytes],
    progress: Progress,
    view_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Load an export into an empty store in one transaction, then bring every read model up to date."""
    stream = _decoded(lines)
    header = _header(next(stream, None))
    _check_master_key(backend, header)
    progress.total = header.counts.get("events")
    with backend.database.datastore.transaction(commit=True) as cursor:
        writer = _Writer(cursor, backend.database.dialect, EventTable.of(backend))
        writer.lock_events()
        _refuse_a_used_store(writer)
        counts = writer.load(stream, progress)
        writer.restart_positions()
    result = ImportResult(counts, progress.seconds(), source_dialect=header.dialect)
    started = time.monotonic()
    _catch_up(backend, view_progress)
    result.views_seconds = time.monotonic() - started
    return result


def read_header(path: Path) -> Header:
    """The header of an export file, read alone, so an import can be refused before the store is opened."""
    with path.open("rb") as file:
        return _header(next(_decoded([file.readline()]), None))


def check_master_key_for(settings: Settings, header: Header) -> None:
    """Refuse, before the target store is touched, a master key that cannot open the exported data keys.

    An embedded SQLite target without a configured key would get a new random key file on first
    open; it is refused instead, so the operator can put the source's key file there.
    """
    config = StoreConfig.from_url(settings.database_url)
    sqlite_path = config.env["SQLITE_DBNAME"] if config.dialect == "sqlite" else None
    configured = settings.master_key or settings.master_key_file
    if sqlite_path is not None and not configured and not default_key_file(sqlite_path).exists():
        raise TransferError(
            "the target needs the source deployment's master key: set WFS_MASTER_KEY, or copy the"
            f" source's key file to {default_key_file(sqlite_path)}"
        )
    master_key = resolve_master_key(
        value=settings.master_key, file=settings.master_key_file, sqlite_path=sqlite_path
    )
    if header.data_key_check is not None and not master_key.opens(header.data_key_check):
        raise TransferError(_wrong_key(master_key.source))


def _wrong_key(source: str) -> str:
    return (
        f"the master key from {source} is not the one the exported data keys are wrapped"
        " with: set WFS_MASTER_KEY (or WFS_MASTER_KEY_FILE) to the source deployment's key"
        " (for the embedded SQLite store, the content of the `<database file>.key` file)"
    )


def _decoded(lines: Iterable[bytes]) -> Iterator[Line]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield decode_line(raw)
        except msgspec.DecodeError as error:
            raise TransferError(
                f"line {number} is not a line of a workflow-service export: {error}"
            ) from None


def _header(first: Line | None) -> Header:
    if not isinstance(first, Header) or first.format != FORMAT:
        raise TransferError("the file does not start with a workflow-service export header")
    if first.version != FORMAT_VERSION:
        raise TransferError(
            f"the file is export format version {first.version}; this version reads {FORMAT_VERSION}"
        )
    return first


def _check_master_key(backend: Backend, header: Header) -> None:
    """The target's master key must open the exported data keys, or every imported workflow is lost."""
    master_key = backend.workflows.data_keys.master_key
    if header.data_key_check is not None and not master_key.opens(header.data_key_check):
        raise TransferError(_wrong_key(master_key.source))


def _refuse_a_used_store(writer: _Writer) -> None:
    used = writer.used_tables()
    if used:
        listed = ", ".join(f"{count:,} {table}" for table, count in used.items())
        raise TransferError(f"the target store is not empty ({listed}); import only into a new, empty store")


def _catch_up(backend: Backend, report: Callable[[int, int], None] | None) -> None:
    """Every read model from position 0 to the head, a step at a time so progress can be shown."""
    head = backend.workflows.recorder.max_notification_id() or 0
    step = PROGRESS_EVERY
    position = 0
    while position < head:
        position = min(position + step, head)
        backend.projector.catch_up(position)
        if report is not None:
            report(position, head)


class _Writer:
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
            sql, [tuple(_decode_value(line.row.get(c)) for c in columns) for line in batch]
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


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value


SummaryKind = Literal["export", "import"]


def summary(kind: SummaryKind, counts: dict[str, int], seconds: float) -> str:
    """One line: what moved, how long it took, and the event rate."""
    events = counts.get("events", 0)
    others = ", ".join(f"{count:,} {table}" for table, count in counts.items() if table != "events")
    rate = events / max(seconds, 1e-9)
    verb = "exported" if kind == "export" else "imported"
    return f"{verb} {events:,} events ({others}) in {seconds:.1f} s: {rate:,.0f} events/s"
