"""The catch-up driver: applies new events to a projection in batches, each with its position, atomically."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from domain.database import Database, Tx
from domain.sealing import REQUEST_ID, ErasedError
from projections.failures import (
    FAILURES_DDL,
    ProjectionFailure,
    clear_failures,
    is_transient,
    read_failures,
    record_failures,
)

BATCH_SIZE = 500

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tombstone:
    """An erased event as views see it: what stays readable after its workflow's data key is destroyed.

    Its content is gone; its kind (`topic`), place, time, actor and request id are not, so the audit
    log keeps an item for it after any rebuild. `project_id` is set on creations and run events,
    `workflow_id` on run events. Views that keep nothing of erased workflows ignore tombstones.
    """

    position: int
    topic: str
    originator_id: UUID
    originator_version: int
    timestamp: datetime
    actor: Any
    project_id: str | None
    workflow_id: str | None
    request_id: str | None


POSITION = "position"
"""The attribute that holds a decoded event's position in the store (its notification id)."""


def position_of(event: object) -> int:
    """The store position of an event handed to a view, set by the catch-up driver."""
    position: int = getattr(event, POSITION)
    return position


class Projection(ABC):
    """A read model: its tables, the event topics it reads, and how each event changes its rows.

    `apply` gets domain events and `Tombstone`s, each with its store position (`position_of`).
    """

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]] = ()
    tables: ClassVar[tuple[str, ...]] = ()
    ddl: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def apply(self, event: Any, tx: Tx) -> None:
        """Change the view's rows for one event, inside the batch's transaction."""

    @property
    def tracking_table(self) -> str:
        return f"{self.name}_tracking"

    def all_ddl(self) -> list[str]:
        return [
            *self.ddl,
            f"CREATE TABLE IF NOT EXISTS {self.tracking_table} ("
            " application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)",
        ]


class ProjectionRunner:
    """Brings one projection up to the event store's head; safe from many threads and processes.

    Each batch moves the tracking row from the position it read to the new one with a
    compare-and-set in the same transaction as the row changes, so a batch is applied once,
    by whichever runner gets there first, and a crash loses nothing.
    """

    def __init__(
        self,
        application: Application[UUID],
        database: Database,
        projection: Projection,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.application = application
        self.database = database
        self.projection = projection
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._select_position = (
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
                events, next_position = _read_batch(self.application, [self], position, head, self.batch_size)
                failures += self.apply_events(tx, events, contain=True)
                position = next_position
            tx.execute(self._reset, (position, self.application.name))
            record_failures(tx, failures)
        _log(failures)
        return position, failures

    def wants(self, topic: str) -> bool:
        return not self.projection.topics or topic in self.projection.topics

    def apply_events(self, tx: Tx, events: Sequence[_Event], *, contain: bool) -> list[ProjectionFailure]:
        """Apply the events this view reads; with `contain`, each failing event is rolled back alone."""
        wanted = [event for event in events if self.wants(event.topic)]
        failures = [
            ProjectionFailure.of(self.name, event.position, event.topic, event.error)
            for event in wanted
            if event.error is not None
        ]
        decoded = [event for event in wanted if event.error is None]
        if contain:
            failures += self._apply_contained(tx, decoded)
        else:
            self._apply_all(tx, decoded)
        return sorted(failures, key=lambda failure: failure.position)

    def _apply_all(self, tx: Tx, events: Sequence[_Event]) -> None:
        for event in events:
            try:
                self.projection.apply(event.event, tx)
            except Exception as error:
                if is_transient(error):
                    raise
                raise _ViewFailed from error

    def _apply_contained(self, tx: Tx, events: Sequence[_Event]) -> list[ProjectionFailure]:
        """All the events under one savepoint; when that fails, each under its own."""
        if not events:
            return []
        try:
            with _savepoint(tx):
                for event in events:
                    self.projection.apply(event.event, tx)
            return []
        except Exception as error:
            if is_transient(error):
                raise
            if len(events) == 1:
                return [ProjectionFailure.of(self.name, events[0].position, events[0].topic, error)]
        return [failure for event in events for failure in self._apply_contained(tx, [event])]


class _Overtaken(Exception):
    """Another runner advanced a view first: the batch is rolled back and read again."""


class _ViewFailed(Exception):
    """A view could not apply an event: the batch is rolled back and applied again, view by view."""


@dataclass(frozen=True)
class _Event:
    """A stored event as the views see it: decoded, or the reason it could not be."""

    position: int
    topic: str
    event: object = None
    error: Exception | None = None


def read_positions(database: Database, runners: Sequence[ProjectionRunner]) -> dict[str, int]:
    """Every runner's position, read in one transaction."""
    positions: dict[str, int] = {}
    with database.transaction(commit=False) as tx:
        for runner in runners:
            row = tx.execute(runner._select_position, (runner.application.name,)).fetchone()
            positions[runner.name] = int(row["notification_id"]) if row else 0
    return positions


def catch_up(
    application: Application[UUID],
    database: Database,
    runners: Sequence[ProjectionRunner],
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
            events, new_position = _read_batch(application, lagging, start, head, batch_size)
            try:
                failures = _commit_batch(database, lagging, positions, events, new_position)
            except _Overtaken:
                continue
            _log(failures)
            batches += 1


def _read_batch(
    application: Application[UUID],
    runners: Sequence[ProjectionRunner],
    after: int,
    head: int,
    batch_size: int,
    mapper: Mapper[UUID] | None = None,
    prepare: Callable[[Sequence[Notification]], None] | None = None,
) -> tuple[list[_Event], int]:
    """The next events any of the runners reads, and the position the batch takes them to.

    `mapper` decodes them instead of the application's, after `prepare` has seen them (a replay's
    fetches their data keys in one query, and remembers them).
    """
    topics = sorted({topic for runner in runners for topic in runner.projection.topics})
    if any(not runner.projection.topics for runner in runners):
        topics = []
    notifications = application.recorder.select_notifications(
        start=after + 1, limit=batch_size, stop=head, topics=topics
    )
    full = len(notifications) == batch_size
    new_position = notifications[-1].id if full else head
    if prepare is not None:
        prepare(notifications)
    return _decode(mapper or application.mapper, notifications), new_position


def _commit_batch(
    database: Database,
    runners: Sequence[ProjectionRunner],
    positions: dict[str, int],
    events: Sequence[_Event],
    new_position: int,
) -> list[ProjectionFailure]:
    """Apply a batch to every view at once; when a view fails, again with each view's part contained.

    The common case pays nothing for containment: savepoints are taken only after a failure.
    """
    try:
        return _apply_batch(database, runners, positions, events, new_position, contain=False)
    except _ViewFailed:
        pass  # retried outside the handler, so a failure's log shows its own cause, not this one
    return _apply_batch(database, runners, positions, events, new_position, contain=True)


def _apply_batch(
    database: Database,
    runners: Sequence[ProjectionRunner],
    positions: dict[str, int],
    events: Sequence[_Event],
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


def _decode(mapper: Mapper[UUID], notifications: Sequence[Notification]) -> list[_Event]:
    """Notifications as domain events, each with its position; an erased event as a tombstone."""
    events: list[_Event] = []
    for notification in notifications:
        try:
            event: object = mapper.to_domain_event(notification)
            vars(event)[POSITION] = notification.id  # events are frozen; their state is this dict
        except ErasedError:
            event = _tombstone(mapper, notification)
        except Exception as error:
            if is_transient(error):
                raise
            events.append(_Event(notification.id, notification.topic, error=error))
            continue
        events.append(_Event(notification.id, notification.topic, event))
    return events


def _tombstone(mapper: Mapper[UUID], notification: Notification) -> Tombstone:
    state: dict[str, Any] = mapper.clear_state(notification)  # type: ignore[attr-defined]
    return Tombstone(
        position=notification.id,
        topic=notification.topic,
        originator_id=UUID(str(notification.originator_id)),
        originator_version=notification.originator_version,
        timestamp=state["timestamp"],
        actor=state.get("actor"),
        project_id=state.get("project_id"),
        workflow_id=state.get("workflow_id"),
        request_id=state.get(REQUEST_ID),
    )


@contextmanager
def _savepoint(tx: Tx) -> Iterator[None]:
    """Undo only what the block changed when it raises, keeping the rest of the transaction."""
    tx.execute("SAVEPOINT view_part")
    try:
        yield
    except BaseException:
        tx.execute("ROLLBACK TO SAVEPOINT view_part")
        tx.execute("RELEASE SAVEPOINT view_part")
        raise
    tx.execute("RELEASE SAVEPOINT view_part")


def _log(failures: Sequence[ProjectionFailure]) -> None:
    """Once per failure, after the transaction that recorded it has committed."""
    for failure in failures:
        log.error(
            "read model %s skipped the event at position %d (%s): %s: %s",
            failure.view,
            failure.position,
            failure.topic,
            failure.error_type,
            failure.error_message,
            exc_info=failure.error,
        )


class Projector:
    """All of a deployment's projections, driven together."""

    def __init__(
        self, application: Application[UUID], database: Database, projections: Sequence[Projection]
    ) -> None:
        self.application = application
        self.database = database
        self.runners = [ProjectionRunner(application, database, p) for p in projections]
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        for runner in self.runners:
            runner.create_tables()

    def failures(self, limit: int = 20) -> tuple[int, list[ProjectionFailure]]:
        """How many events some view skipped because it could not apply them, and the first few."""
        return read_failures(self.database, limit)

    def catch_up(self, up_to: int | None = None) -> None:
        """Return once every view has applied every event up to `up_to` (default: the head)."""
        catch_up(self.application, self.database, self.runners, self._lock, up_to)

    def positions(self) -> dict[str, int]:
        return read_positions(self.database, self.runners)

    def runner(self, name: str) -> ProjectionRunner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        raise KeyError(name)


class Follower:
    """Keeps the read models following events written elsewhere (scripts, imports, other hosts)."""

    def __init__(self, projector: Projector, interval: float = 1.0) -> None:
        self.projector = projector
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projection-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.projector.catch_up()
            except Exception:
                log.exception("catching up the read models failed; retrying")
