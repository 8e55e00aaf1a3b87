"""The catch-up driver: applies new events to a projection in batches, each with its position, atomically."""

from __future__ import annotations

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
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(self._select_position, (self.application.name,)).fetchone()
        return int(row["notification_id"]) if row else 0

    def catch_up(self, up_to: int | None = None, max_batches: int | None = None) -> int:
        """Apply events until the view has seen `up_to` (default: the head); returns the position."""
        with self._lock:
            batches = 0
            while max_batches is None or batches < max_batches:
                position = self.position()
                if up_to is not None and position >= up_to:
                    return position
                head = self.application.recorder.max_notification_id() or 0
                if position >= head:
                    return position
                notifications = self.application.recorder.select_notifications(
                    start=position + 1,
                    limit=self.batch_size,
                    stop=head,
                    topics=self.projection.topics,
                )
                full = len(notifications) == self.batch_size
                new_position = notifications[-1].id if full else head
                self._apply_batch(position, new_position, notifications)
                batches += 1
            return self.position()

    def _apply_batch(self, position: int, new_position: int, notifications: Sequence[Notification]) -> None:
        events = []
        mapper = self.application.mapper
        for notification in notifications:
            try:
                events.append(mapper.to_domain_event(notification))
            except ErasedError:
                continue
        with self.database.transaction() as tx:
            moved = tx.execute(self._advance, (new_position, self.application.name, position)).fetchone()
            if moved is None:
                return
            for event in events:
                self.projection.apply(event, tx)


class Projector:
    """All of a deployment's projections, driven together."""

    def __init__(
        self, application: Application[UUID], database: Database, projections: Sequence[Projection]
    ) -> None:
        self.runners = [ProjectionRunner(application, database, p) for p in projections]

    def create_tables(self) -> None:
        for runner in self.runners:
            runner.create_tables()

    def catch_up(self, up_to: int | None = None) -> None:
        """Return once every view has applied every event up to `up_to` (default: the head)."""
        for runner in self.runners:
            runner.catch_up(up_to)

    def positions(self) -> dict[str, int]:
        return {runner.name: runner.position() for runner in self.runners}

    def runner(self, name: str) -> ProjectionRunner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        raise KeyError(name)
