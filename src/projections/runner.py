"""The catch-up driver: applies new events to a projection in batches, each with its position, atomically."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application

from projections.containment import ViewFailed, apply_all, apply_contained, log_failures
from projections.failures import FAILURES_DDL, ProjectionFailure, clear_failures, record_failures
from projections.read_model import ReadModel
from projections.reading import DecodedEvent, read_batch
from store.database import Database, Tx

BATCH_SIZE = 500


class TrackedView:
    """Brings one projection up to the event store's head; safe from many threads and processes.

    Each batch moves the tracking row from the position it read to the new one with a
    compare-and-set in the same transaction as the row changes, so a batch is applied once,
    by whichever runner gets there first, and a crash loses nothing.
    """

    def __init__(
        self,
        application: Application[UUID],
        database: Database,
        projection: ReadModel,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.application = application
        self.database = database
        self.projection = projection
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self.select_position = (
            f"SELECT notification_id FROM {projection.tracking_table} WHERE application_name = ?"
        )
        self._advance = (
            f"UPDATE {projection.tracking_table} SET notification_id = ?"
            " WHERE application_name = ? AND notification_id = ? RETURNING notification_id"
        )
        self._reset = f"UPDATE {projection.tracking_table} SET notification_id = ? WHERE application_name = ?"

    @property
    def name(self) -> str:
        return self.projection.name

    def create_tables(self) -> None:
        self.database.run_ddl([*FAILURES_DDL, *self.projection.all_ddl()])
        with self.database.transaction() as tx:
            tx.execute(
                f"INSERT INTO {self.projection.tracking_table} (application_name, notification_id)"
                " VALUES (?, 0) ON CONFLICT (application_name) DO NOTHING",
                (self.application.name,),
            )

    def drop_tables(self) -> None:
        with self.database.transaction() as tx:
            for table in (*self.projection.tables, self.projection.tracking_table):
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            clear_failures(tx, self.name)

    def position(self) -> int:
        return read_positions(self.database, [self])[self.name]

    def catch_up(self, up_to: int | None = None, max_batches: int | None = None) -> int:
        """Apply events until the view has seen `up_to` (default: the head); returns the position."""
        catch_up(self.application, self.database, [self], self._lock, up_to, max_batches)
        return self.position()

    def advance(self, tx: Tx, position: int, new_position: int) -> bool:
        """Move the tracking row, unless another runner moved it first."""
        row = tx.execute(self._advance, (new_position, self.application.name, position)).fetchone()
        return row is not None

    def rebuild(self) -> tuple[int, list[ProjectionFailure]]:
        """Apply every event again to the emptied view, in one transaction; returns position, failures.

        For tests and in-process use: it holds the view's lock (on SQLite the store's write lock)
        for the whole rebuild. `workflow-service rebuild` builds beside the live view instead
        (`projections.rebuild`).

        Readers keep the old view until the new one commits, and a failure (the database, not an
        event: those are recorded and skipped) leaves the old one as it was. The view's recorded
        failures are cleared first, so their events are tried again.
        """
        failures: list[ProjectionFailure] = []
        with self._lock, self.database.transaction() as tx:
            # The tracking row first: it is the view's lock against runners in other processes.
            tx.execute(self._reset, (0, self.application.name))
            for table in self.projection.tables:
                tx.execute(f"DELETE FROM {table}")
            clear_failures(tx, self.name)
            head = self.application.recorder.max_notification_id() or 0
            position = 0
            while position < head:
                events, next_position = read_batch(self.application, [self], position, head, self.batch_size)
                failures += self.apply_events(tx, events, contain=True)
                position = next_position
            tx.execute(self._reset, (position, self.application.name))
            record_failures(tx, failures)
        log_failures(failures)
        return position, failures

    def wants(self, topic: str) -> bool:
        return not self.projection.topics or topic in self.projection.topics

    def apply_events(
        self, tx: Tx, events: Sequence[DecodedEvent], *, contain: bool
    ) -> list[ProjectionFailure]:
        """Apply the events this view reads; with `contain`, each failing event is rolled back alone."""
        wanted = [event for event in events if self.wants(event.topic)]
        failures = [
            ProjectionFailure.of(self.name, event.position, event.topic, event.error)
            for event in wanted
            if event.error is not None
        ]
        decoded = [event for event in wanted if event.error is None]
        if contain:
            failures += apply_contained(self.projection, tx, decoded)
        else:
            apply_all(self.projection, tx, decoded)
        return sorted(failures, key=lambda failure: failure.position)


class _Overtaken(Exception):
    """Another runner advanced a view first: the batch is rolled back and read again."""


def read_positions(database: Database, runners: Sequence[TrackedView]) -> dict[str, int]:
    """Every runner's position, read in one transaction."""
    positions: dict[str, int] = {}
    with database.transaction(commit=False) as tx:
        for runner in runners:
            row = tx.execute(runner.select_position, (runner.application.name,)).fetchone()
            positions[runner.name] = int(row["notification_id"]) if row else 0
    return positions


def catch_up(
    application: Application[UUID],
    database: Database,
    runners: Sequence[TrackedView],
    lock: threading.Lock,
    up_to: int | None = None,
    max_batches: int | None = None,
) -> None:
    """Bring the runners' views to `up_to` (default: the head), one transaction per batch for all.

    Each event is read and decoded once for every view, and all the views' rows and positions
    commit together, so a write waits for one commit, not one per read model. An event a view
    cannot apply is recorded and skipped for that view alone; an unreachable or busy database
    raises, leaving every view where it was.
    """
    batch_size = min(runner.batch_size for runner in runners)
    with lock:
        batches = 0
        while max_batches is None or batches < max_batches:
            positions = read_positions(database, runners)
            if up_to is not None and min(positions.values()) >= up_to:
                return
            head = application.recorder.max_notification_id() or 0
            lagging = [runner for runner in runners if positions[runner.name] < head]
            if not lagging:
                return
            start = min(positions[runner.name] for runner in lagging)
            events, new_position = read_batch(application, lagging, start, head, batch_size)
            try:
                failures = _commit_batch(database, lagging, positions, events, new_position)
            except _Overtaken:
                continue
            log_failures(failures)
            batches += 1


def _commit_batch(
    database: Database,
    runners: Sequence[TrackedView],
    positions: dict[str, int],
    events: Sequence[DecodedEvent],
    new_position: int,
) -> list[ProjectionFailure]:
    """Apply a batch to every view at once; when a view fails, again with each view's part contained.

    The common case pays nothing for containment: savepoints are taken only after a failure.
    """
    try:
        return _apply_batch(database, runners, positions, events, new_position, contain=False)
    except ViewFailed:
        pass  # retried outside the handler, so a failure's log shows its own cause, not this one
    return _apply_batch(database, runners, positions, events, new_position, contain=True)


def _apply_batch(
    database: Database,
    runners: Sequence[TrackedView],
    positions: dict[str, int],
    events: Sequence[DecodedEvent],
    new_position: int,
    *,
    contain: bool,
) -> list[ProjectionFailure]:
    failures: list[ProjectionFailure] = []
    with database.transaction() as tx:
        for runner in runners:
            position = positions[runner.name]
            if position >= new_position:
                continue  # ahead of this batch, e.g. while another view is rebuilt
            if not runner.advance(tx, position, new_position):
                raise _Overtaken
            unseen = [event for event in events if event.position > position]
            failures += runner.apply_events(tx, unseen, contain=contain)
        record_failures(tx, failures)
    return failures
