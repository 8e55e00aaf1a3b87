"""One view as the catch-up drives it: its tables, its tracking row, and which events it applies."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application

from projections.containment import apply_all, apply_contained
from projections.failures import FAILURES_DDL, ProjectionFailure
from projections.read_model import ReadModel
from projections.reading import DecodedEvent
from store.database import Database, Tx

BATCH_SIZE = 500


class TrackedView:
    """A read model in a database, with the tracking row that records how far it has applied the store.

    The row moves only with a compare-and-set (`advance`) in the transaction that changes the
    view's rows, so the rows and the position commit together (see `catch_up.CatchUp`).
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
        self.select_position = (
            f"SELECT notification_id FROM {projection.tracking_table} WHERE application_name = ?"
        )
        self.select_named_position = (
            f"SELECT '{projection.name}' AS view_name, notification_id FROM {projection.tracking_table}"
            " WHERE application_name = ?"
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

    def read_position(self, tx: Tx) -> int:
        """The position of the last event the view has applied (0: none yet)."""
        row = tx.execute(self.select_position, (self.application.name,)).fetchone()
        return int(row["notification_id"]) if row else 0

    def advance(self, tx: Tx, position: int, new_position: int) -> bool:
        """Move the tracking row, unless another catch-up moved it first."""
        row = tx.execute(self._advance, (new_position, self.application.name, position)).fetchone()
        return row is not None

    def set_position(self, tx: Tx, position: int) -> None:
        """Move the tracking row unconditionally: for a rebuild, which holds the row's lock."""
        tx.execute(self._reset, (position, self.application.name))

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
