"""Events a read model could not apply: recorded, skipped for that view only, and shown by `/ready`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from eventsourcing import persistence

from store.database import Database, Tx

FAILURES_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_failures ("
    " view_name TEXT NOT NULL, position BIGINT NOT NULL, topic TEXT NOT NULL,"
    " error_type TEXT NOT NULL, error_message TEXT NOT NULL, failed_at TEXT NOT NULL,"
    " PRIMARY KEY (view_name, position))",
)

MESSAGE_LIMIT = 1000
"""How much of an error's message is kept; enough to diagnose, bounded whatever the error holds."""

SQLITE_TRANSIENT_CODES = frozenset({5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 26})
"""BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB."""


@dataclass(frozen=True)
class ProjectionFailure:
    """One event one view could not apply."""

    view: str
    position: int
    topic: str
    error_type: str
    error_message: str
    failed_at: str
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, view: str, position: int, topic: str, error: BaseException) -> ProjectionFailure:
        message = str(error).replace("\x00", "\\x00")[:MESSAGE_LIMIT]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return cls(view, position, topic, type(error).__name__, message, now, error)


def is_transient(error: BaseException) -> bool:
    """True when the database, not the event, is at fault: unreachable, busy, locked, full.

    Such an error must never mark an event as failed (that would skip it for good); the batch is
    rolled back instead and tried again later. The library wraps driver errors, so the cause
    chain is searched for the driver's own exception.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        if isinstance(seen, psycopg.Error):
            return False
        if isinstance(seen, sqlite3.Error):
            code = getattr(seen, "sqlite_errorcode", None)
            if code is None:
                return isinstance(seen, sqlite3.OperationalError | sqlite3.InterfaceError)
            return (code & 0xFF) in SQLITE_TRANSIENT_CODES
        if seen.__cause__ is None and isinstance(
            seen, persistence.OperationalError | persistence.InterfaceError
        ):
            return True
        seen = seen.__cause__
    return False


def record_failures(tx: Tx, failures: Sequence[ProjectionFailure]) -> None:
    """Keep the failures in the transaction that skips their events, so both happen or neither."""
    for failure in failures:
        tx.execute(
            "INSERT INTO projection_failures"
            " (view_name, position, topic, error_type, error_message, failed_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (view_name, position) DO NOTHING",
            (
                failure.view,
                failure.position,
                failure.topic,
                failure.error_type,
                failure.error_message,
                failure.failed_at,
            ),
        )


def clear_failures(tx: Tx, view: str) -> None:
    """Forget a view's failures, as its rebuild applies their events again."""
    tx.execute("DELETE FROM projection_failures WHERE view_name = ?", (view,))


def read_failures(database: Database, limit: int) -> tuple[int, list[ProjectionFailure]]:
    """How many failures are recorded, and the first `limit` of them in event order."""
    with database.transaction(commit=False) as tx:
        count = tx.execute("SELECT COUNT(*) AS n FROM projection_failures").fetchone()["n"]
        rows = tx.execute(
            "SELECT view_name, position, topic, error_type, error_message, failed_at"
            " FROM projection_failures ORDER BY position, view_name LIMIT ?",
            (limit,),
        ).fetchall()
    failures = [
        ProjectionFailure(
            row["view_name"],
            int(row["position"]),
            row["topic"],
            row["error_type"],
            row["error_message"],
            row["failed_at"],
        )
        for row in rows
    ]
    return int(count), failures
