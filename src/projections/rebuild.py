"""Blue/green rebuild of read models beside a live service: build new tables, catch up, swap, drop the old.

The new tables are replayed in memory from every stored event (see `scratch`) while the live
service keeps reading and updating the old ones, so no lock is held for the length of the
rebuild. Then, one view at a time, one short transaction on the live store locks the view's
tracking row (the row every catch-up must update before it touches the view), applies to the new
tables the few events the old view saw since the replay read its last, replaces the old tables
by the new ones and sets the position. Readers see the old view until that commit and the new
one, as far along as the old, from then on: never an error, an empty or a half-built view.

PostgreSQL: the replayed rows are first copied (COPY) into tables of a schema of the rebuild's
own, created by the views' DDL; the swap drops the old tables and moves the new ones, indexes and
all, into `public`, whatever their size. SQLite: the swap attaches the live file to the in-memory
database and copies the new rows over the old, under the write lock (O(rows) of that one view).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from psycopg.rows import dict_row

from projections.catch_up import CatchUp
from projections.containment import log_failures
from projections.failures import ProjectionFailure, clear_failures, record_failures
from projections.reading import read_batch
from projections.scratch import REPLAY_BATCH, MemoryScratch, Progress, replay
from projections.tracked_view import TrackedView
from store.database import StoreConfig, Tx

SCHEMA = "wfs_rebuild"
"""PostgreSQL: where the new tables wait for their swap; dropped, with anything left in it, at the end."""
SCHEMA_LOCK_KEY = 7310432
"""PostgreSQL: an advisory lock, so two rebuilds never share (and drop) the same schema."""
SWAP_LOCK_TIMEOUT = "10s"
"""PostgreSQL: how long the swap waits for readers of the old tables before giving up (view kept)."""
SQLITE_SWAP_WAIT_SECONDS = 30
"""SQLite: how long the swap waits for the live service's write lock."""

log = logging.getLogger(__name__)


class RebuildRefused(Exception):
    """The rebuild cannot start; nothing was changed."""


@dataclass
class Rebuilt:
    """One view's rebuild: the position it was swapped in at, and the events it skipped; or its error."""

    name: str
    position: int = 0
    failures: list[ProjectionFailure] = field(default_factory=list)
    error: BaseException | None = None
    swap_seconds: float = 0.0
    """How long the swap took, waiting for its lock included (SQLite: the store's write lock)."""


@dataclass
class RebuildReport:
    """What a rebuild did, for its summary line."""

    views: list[Rebuilt]
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / max(self.seconds, 1e-6)


def rebuildable(runners: Sequence[TrackedView]) -> list[TrackedView]:
    """The read models a rebuild can build; a policy without tables (erasure) has nothing to rebuild."""
    return [runner for runner in runners if runner.projection.tables]


def rebuild_live(
    application: Application[UUID],
    runners: Sequence[TrackedView],
    url: str,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild `runners` beside the live views of the store at `url`, then swap each in."""
    progress = progress or Progress("rebuild", quiet=True)
    views = {runner.name: Rebuilt(runner.name) for runner in runners}
    scratch = MemoryScratch(like=StoreConfig.from_url(url).dialect)
    try:
        with _target(url, scratch) as target:
            scratch.create_tables(runners)
            built = _build(application, scratch, runners, views, progress)
            for runner in runners:
                if views[runner.name].error is None:
                    _swap_or_keep(application, target, runner, built, views[runner.name])
    finally:
        scratch.close()
    for runner in runners:
        if views[runner.name].error is None:
            _catch_up(runner)
    for view in views.values():
        log_failures(view.failures)
    return RebuildReport(list(views.values()), progress.total, progress.seconds())


def _catch_up(runner: TrackedView) -> None:
    """Best effort: the swap is committed, and a live service's catch-up does this too."""
    try:
        CatchUp(runner.application, runner.database, [runner]).run()
    except Exception:
        log.exception("catching up the rebuilt %s failed; the service's catch-up will", runner.name)


def _build(
    application: Application[UUID],
    scratch: MemoryScratch,
    runners: Sequence[TrackedView],
    views: dict[str, Rebuilt],
    progress: Progress,
) -> int:
    """Every event up to the head, then once more what was written meanwhile; the position reached."""
    position = 0
    head = application.recorder.max_notification_id() or 0
    for _ in range(2):
        working = [runner for runner in runners if views[runner.name].error is None]
        if not working or head <= position:
            break
        progress.total = head
        replayed = replay(application, scratch, working, dict.fromkeys(views, head), progress, position)
        for name, failures in replayed.failures.items():
            views[name].failures += failures
        for name, error in replayed.errors.items():
            views[name].error = error
        position = head
        head = application.recorder.max_notification_id() or 0
    return position


class _SqliteTarget:
    """SQLite: the swap attaches the live file to the in-memory build and copies a view's rows over."""

    row_lock = ""

    def __init__(self, url: str, scratch: MemoryScratch) -> None:
        self.live_file = StoreConfig.from_url(url).env["SQLITE_DBNAME"]
        self.scratch = scratch

    def stage(self, runner: TrackedView) -> None:
        """Nothing to do: the new tables are the in-memory ones."""

    @contextmanager
    def swap_transaction(self) -> Iterator[Tx]:
        """Unqualified names: the in-memory tables first, then the live file's (tracking, failures)."""
        connection = self.scratch.connection
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_SWAP_WAIT_SECONDS * 1000}")
        connection.execute("ATTACH DATABASE ? AS live", (self.live_file,))
        try:
            connection.execute("PRAGMA live.secure_delete = ON")  # as every live connection does
            with self.scratch.transaction("BEGIN IMMEDIATE") as tx:
                yield tx
        finally:
            connection.execute("DETACH DATABASE live")

    def replace(self, tx: Tx, tables: Sequence[str]) -> None:
        """The live tables made equal to the in-memory ones, writing only the rows that differ.

        Comparing row by row through the primary keys is reading, several times faster than
        rewriting every row and index entry, and the store's write lock is held meanwhile.
        """
        for table in tables:
            columns = self.scratch.columns(table)
            key = self.scratch.primary_key(table)
            same_key = " AND ".join(f"new.{column} = old.{column}" for column in key)
            differs = " OR ".join(f"new.{column} IS NOT old.{column}" for column in columns)
            tx.execute(
                f"DELETE FROM live.{table} AS old WHERE NOT EXISTS"  # noqa: S608 - the views' own names
                f" (SELECT 1 FROM main.{table} AS new WHERE {same_key})"
            )
            tx.execute(
                f"INSERT OR REPLACE INTO live.{table} ({', '.join(columns)})"  # noqa: S608
                f" SELECT {', '.join(f'new.{column}' for column in columns)} FROM main.{table} AS new"
                f" LEFT JOIN live.{table} AS old ON {same_key} WHERE old.{key[0]} IS NULL OR {differs}"
            )


class _PostgresTarget:
    """PostgreSQL: the new tables wait in a schema of the rebuild's own; the swap moves them in."""

    row_lock = " FOR UPDATE"

    def __init__(self, url: str, scratch: MemoryScratch) -> None:
        self.scratch = scratch
        self.connection = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        got = self.connection.execute("SELECT pg_try_advisory_lock(%s) AS got", (SCHEMA_LOCK_KEY,)).fetchone()
        if not got or not got["got"]:
            self.connection.close()
            raise RebuildRefused("another rebuild is running on this database")
        self.connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        self.connection.execute(f"CREATE SCHEMA {SCHEMA}")
        self.connection.execute(f"SET search_path = {SCHEMA}")

    def stage(self, runner: TrackedView) -> None:
        """The view's replayed rows, by COPY, into tables of the schema made by the view's own DDL.

        Tables a view's DDL makes but does not own (`erased_workflows`) are dropped again, so the
        swap's catch-up reads the live ones, as the live catch-up does.
        """
        with self.connection.transaction(), self.connection.cursor() as cursor:
            tx = Tx(cursor, "postgres")
            for statement in runner.projection.ddl:
                tx.execute(statement)
            made = tx.execute("SELECT tablename FROM pg_tables WHERE schemaname = ?", (SCHEMA,)).fetchall()
            for row in made:
                if row["tablename"] not in runner.projection.tables:
                    tx.execute(f"DROP TABLE {SCHEMA}.{row['tablename']}")
            for table in runner.projection.tables:
                self._copy(cursor, table)

    def _copy(self, cursor: psycopg.Cursor[dict[str, object]], table: str) -> None:
        columns = ", ".join(self.scratch.columns(table))
        rows = self.scratch.connection.execute(f"SELECT {columns} FROM main.{table}")  # noqa: S608
        with cursor.copy(f"COPY {SCHEMA}.{table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row))

    @contextmanager
    def swap_transaction(self) -> Iterator[Tx]:
        """Unqualified names: the schema's new tables first, then the live ones (tracking, failures)."""
        with self.connection.transaction(), self.connection.cursor() as cursor:
            tx = Tx(cursor, "postgres")
            tx.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
            tx.execute(f"SET LOCAL search_path = {SCHEMA}, public")
            yield tx

    def replace(self, tx: Tx, tables: Sequence[str]) -> None:
        """The old tables go, the new ones (and their indexes) move in under the same names."""
        for table in tables:
            tx.execute(f"DROP TABLE IF EXISTS public.{table}")
            tx.execute(f"ALTER TABLE {SCHEMA}.{table} SET SCHEMA public")

    def close(self) -> None:
        try:
            self.connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        finally:
            self.connection.close()


_Target = _SqliteTarget | _PostgresTarget


@contextmanager
def _target(url: str, scratch: MemoryScratch) -> Iterator[_Target]:
    if StoreConfig.from_url(url).dialect == "sqlite":
        yield _SqliteTarget(url, scratch)
        return
    target = _PostgresTarget(url, scratch)
    try:
        yield target
    finally:
        target.close()


def _swap_or_keep(
    application: Application[UUID], target: _Target, runner: TrackedView, built: int, view: Rebuilt
) -> None:
    try:
        target.stage(runner)
        view.position = _swap(application, target, runner, built, view)
    except Exception as error:
        log.exception("swapping in the rebuilt %s failed; the old view is kept", runner.name)
        view.error = error


def _swap(
    application: Application[UUID], target: _Target, runner: TrackedView, built: int, view: Rebuilt
) -> int:
    """In one transaction: catch the new tables up to the old view, replace it, move its position.

    The tracking row is read first and locked (on SQLite the write lock does it): every catch-up
    updates it before touching the view, so none can change the old view meanwhile.
    """
    started = time.monotonic()
    with target.swap_transaction() as tx:
        row = tx.execute(runner.select_position + target.row_lock, (application.name,)).fetchone()
        live_position = int(row["notification_id"]) if row else 0
        failures = list(view.failures)
        position = built
        while position < live_position:  # what the old view applied since the replay read its last
            events, position = read_batch(application, [runner], position, live_position, REPLAY_BATCH)
            failures += runner.apply_events(tx, events, contain=True)
        target.replace(tx, runner.projection.tables)
        position = max(built, live_position)
        tx.execute(runner._reset, (position, application.name))
        clear_failures(tx, runner.name)
        record_failures(tx, failures)
    view.failures = failures
    view.swap_seconds = time.monotonic() - started
    return position
