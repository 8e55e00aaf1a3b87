"""Read models replayed beside the live ones, in memory, by the views' own DDL and apply code.

The scratch is an in-memory SQLite database, whichever store is live: the views' SQL runs there
unchanged, and without a round trip per statement a replay is several times faster than on
PostgreSQL. Events are read from the live store in large pages, decoded once for every view (data
keys remembered for the length of the replay) and applied view by view, each up to its own stop
position; an event a view cannot apply is recorded as a failure, as the catch-up does. `rebuild`
swaps the replayed tables in; `verify` compares them with the live ones.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from projections.failures import ProjectionFailure
from projections.reading import decode, read_notifications
from projections.tracked_view import TrackedView
from store.database import Dialect, Tx
from store.sealing import DataKeys, SealingMapper

REPLAY_BATCH = 5000
"""Events read and decoded per round trip; large pages make a replay several times faster."""
PROGRESS_EVERY = 10_000
"""Events between two progress lines on stderr."""
REMEMBERED_KEYS = 100_000
"""Data keys a replay keeps unwrapped, so a workflow's events cost one key lookup, not one each."""


class PostgresLikeTx(Tx):
    """A SQLite transaction that refuses what PostgreSQL would: text holding U+0000.

    A replay for a PostgreSQL store must skip the events the live views could not store, or
    `verify` would report them and `rebuild` could not copy its rows into PostgreSQL.
    """

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        for value in params:  # a plain loop: this runs for every statement of a replay
            if isinstance(value, str) and "\x00" in value:
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return super().execute(sql, params)


class MemoryScratch:
    """An in-memory SQLite database where the views' unqualified table names mean new, empty tables.

    `like` is the live store's dialect: for PostgreSQL, what it refuses is refused here too.
    """

    def __init__(self, like: Dialect = "sqlite") -> None:
        self.connection = sqlite3.connect(
            ":memory:", isolation_level=None, check_same_thread=False, timeout=30
        )
        self.connection.row_factory = sqlite3.Row
        self.tx_class = PostgresLikeTx if like == "postgres" else Tx

    @contextmanager
    def transaction(self, begin: str = "BEGIN") -> Iterator[Tx]:
        cursor = self.connection.cursor()
        cursor.execute(begin)
        try:
            yield self.tx_class(cursor, "sqlite")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def create_tables(self, runners: Sequence[TrackedView]) -> None:
        """The views' tables and indexes, empty, from their own DDL."""
        with self.transaction() as tx:
            for runner in runners:
                for statement in runner.projection.ddl:
                    tx.execute(statement)

    def columns(self, table: str) -> list[str]:
        rows = self.connection.execute(f"PRAGMA main.table_info({table})").fetchall()
        return [row["name"] for row in rows]

    def primary_key(self, table: str) -> list[str]:
        rows = self.connection.execute(f"PRAGMA main.table_info({table})").fetchall()
        keyed = sorted((row["pk"], row["name"]) for row in rows if row["pk"])
        return [name for _, name in keyed] or [row["name"] for row in rows]

    def rows(self, table: str) -> list[dict[str, Any]]:
        found = self.connection.execute(f"SELECT * FROM main.{table}").fetchall()  # noqa: S608
        return [dict(row) for row in found]

    def close(self) -> None:
        self.connection.close()


@dataclass
class Progress:
    """Says on stderr how far a replay is, every PROGRESS_EVERY events, and how fast it goes."""

    what: str
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    shown: int = 0
    quiet: bool = False

    def update(self, position: int) -> None:
        if self.quiet or position - self.shown < PROGRESS_EVERY:
            return
        self.shown = position
        print(
            f"{self.what}: {position:,} of {self.total:,} events ({self.rate(position):,.0f} events/s)",
            file=sys.stderr,
            flush=True,
        )

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self, events: int) -> float:
        return events / max(self.seconds(), 1e-6)


@dataclass
class Replayed:
    """Per view: the events it skipped, or the error that stopped its replay (its tables are then partial)."""

    failures: dict[str, list[ProjectionFailure]]
    errors: dict[str, BaseException] = field(default_factory=dict)


class RememberedKeys:
    """A replay's data keys: each page's fetched in one query, and remembered; a replay never makes one."""

    def __init__(self, keys: DataKeys) -> None:
        self.keys = keys
        self.known: OrderedDict[str, bytes | None] = OrderedDict()

    def key(self, aggregate_id: str) -> bytes | None:
        if aggregate_id not in self.known:
            self._remember(aggregate_id, self.keys.fetch([aggregate_id]).get(aggregate_id))
        return self.known[aggregate_id]

    def prefetch(self, notifications: Sequence[Notification]) -> None:
        """The keys of the page's aggregates not yet known (a run's is its workflow's: known by then)."""
        wanted = {str(n.originator_id) for n in notifications} - self.known.keys()
        if not wanted:
            return
        found = self.keys.fetch(wanted)
        for aggregate_id in sorted(wanted):
            self._remember(aggregate_id, found.get(aggregate_id))

    def _remember(self, aggregate_id: str, key: bytes | None) -> None:
        self.known[aggregate_id] = key
        if len(self.known) > REMEMBERED_KEYS:
            self.known.popitem(last=False)


def replay_mapper(application: Application[UUID]) -> tuple[Mapper[UUID], RememberedKeys | None]:
    """The application's mapper, but remembering data keys: a key destroyed meanwhile reads as it was,
    as it would have in a live catch-up that decoded the event before the erase; the erase itself,
    replayed later, then removes what was decoded."""
    mapper = application.mapper
    if not isinstance(mapper, SealingMapper):
        return mapper, None
    keys = RememberedKeys(mapper.keys)
    return mapper.with_keys(keys), keys


def replay(
    application: Application[UUID],
    scratch: MemoryScratch,
    runners: Sequence[TrackedView],
    stops: dict[str, int],
    progress: Progress | None = None,
    start: int = 0,
) -> Replayed:
    """Apply the events after `start` to the scratch views, each view up to its stop.

    One read and one decode per batch serve every view; each batch is one scratch transaction.
    A view that raises (not an event it cannot apply: those are recorded and skipped) stops alone.
    """
    result = Replayed({runner.name: [] for runner in runners})
    mapper, keys = replay_mapper(application)
    head = max(stops.values(), default=0)
    for notifications, position in _pages(application, runners, start, head):
        if keys is not None:
            keys.prefetch(notifications)
        events = decode(mapper, notifications)
        with scratch.transaction() as tx:
            for runner in runners:
                if runner.name in result.errors:
                    continue
                mine = [event for event in events if event.position <= stops[runner.name]]
                try:
                    result.failures[runner.name] += runner.apply_events(tx, mine, contain=True)
                except Exception as error:
                    result.errors[runner.name] = error
        if progress is not None:
            progress.update(position)
    return result


def _pages(
    application: Application[UUID], runners: Sequence[TrackedView], start: int, head: int
) -> Iterator[tuple[Sequence[Notification], int]]:
    """The stored events after `start` up to `head`, page by page; each next page is read from the
    store in a thread while the caller decodes and applies the one before (the read waits on I/O)."""
    if start >= head:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-read") as reader:
        pending = reader.submit(read_notifications, application, runners, start, head, REPLAY_BATCH)
        while True:
            notifications, position = pending.result()
            if position < head:
                pending = reader.submit(
                    read_notifications, application, runners, position, head, REPLAY_BATCH
                )
            yield notifications, position
            if position >= head:
                return
