"""The catch-up driver: applies new events to a projection in batches, each with its position, atomically."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from domain.database import Database, Tx
from domain.sealing import ErasedError

BATCH_SIZE = 500

log = logging.getLogger(__name__)


class Projection(ABC):
    """A read model: its tables, the event topics it reads, and how each event changes its rows."""

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

    @property
    def name(self) -> str:
        return self.projection.name

    def create_tables(self) -> None:
        self.database.run_ddl(self.projection.all_ddl())
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


class _Overtaken(Exception):
    """Another runner advanced a view first: the batch is rolled back and read again."""


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
    commit together, so a write waits for one commit, not one per read model.
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
            topics = sorted({topic for runner in lagging for topic in runner.projection.topics})
            if any(not runner.projection.topics for runner in lagging):
                topics = []
            notifications = application.recorder.select_notifications(
                start=min(positions[runner.name] for runner in lagging) + 1,
                limit=batch_size,
                stop=head,
                topics=topics,
            )
            full = len(notifications) == batch_size
            new_position = notifications[-1].id if full else head
            events = _decode(application, notifications)
            try:
                with database.transaction() as tx:
                    for runner in lagging:
                        position = positions[runner.name]
                        if position >= new_position:
                            continue  # ahead of this batch, e.g. while another view is rebuilt
                        if not runner.advance(tx, position, new_position):
                            raise _Overtaken
                        wanted = runner.projection.topics
                        for notification_id, topic, event in events:
                            if notification_id > position and (not wanted or topic in wanted):
                                runner.projection.apply(event, tx)
            except _Overtaken:
                continue
            batches += 1


def _decode(
    application: Application[UUID], notifications: Sequence[Notification]
) -> list[tuple[int, str, object]]:
    """Notifications as domain events; an erased workflow's content events are skipped."""
    events: list[tuple[int, str, object]] = []
    for notification in notifications:
        try:
            events.append(
                (notification.id, notification.topic, application.mapper.to_domain_event(notification))
            )
        except ErasedError:
            continue
    return events


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
