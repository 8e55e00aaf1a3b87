"""The one catch-up: reads new events in batches and applies each batch to every lagging view at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application

from projections.containment import ViewFailed, log_failures
from projections.failures import ProjectionFailure, record_failures
from projections.reading import DecodedEvent, read_batch
from projections.tracked_view import TrackedView
from store.database import Database


class _Overtaken(Exception):
    """Another catch-up advanced a view first: the batch is rolled back and read again."""


class CatchUp:
    """Brings views to a position (default: the store's head), one transaction per batch for them all.

    Each step reads the views' positions, reads and decodes the next batch once for every view
    behind, and applies it to each of them in one transaction, moving each tracking row with a
    compare-and-set: a batch is applied once, by whichever catch-up (thread, process or host)
    gets there first, and a crash loses nothing. An event a view cannot apply is recorded and
    skipped for that view alone; an unreachable or busy database raises, leaving every view where
    it was.
    """

    def __init__(
        self, application: Application[UUID], database: Database, views: Sequence[TrackedView]
    ) -> None:
        self.application = application
        self.database = database
        self.views = list(views)
        self._lock = threading.Lock()
        self._select_positions = " UNION ALL ".join(view.select_named_position for view in self.views)

    def run(self, up_to: int | None = None) -> None:
        """Step until every view has applied every event up to `up_to` (default: the head)."""
        with self._lock:  # threads of one process take turns rather than read the same batch
            while self.step(up_to):
                pass

    def step(self, up_to: int | None = None) -> bool:
        """Apply the next batch to the views behind; False once none is left to apply.

        Safe without `run`'s lock: the compare-and-set decides which of two steps applies a batch.
        Events are committed in position order (the recorder inserts one transaction at a time), so
        when `up_to` is given it is a head as good as the store's, and saves reading that.
        """
        positions = self.positions()
        if up_to is not None and min(positions.values()) >= up_to:
            return False
        head = up_to if up_to is not None else self.application.recorder.max_notification_id() or 0
        lagging = [view for view in self.views if positions[view.name] < head]
        if not lagging:
            return False
        start = min(positions[view.name] for view in lagging)
        batch_size = min(view.batch_size for view in self.views)
        events, new_position = read_batch(self.application, lagging, start, head, batch_size)
        try:
            failures = self._commit(lagging, positions, events, new_position)
        except _Overtaken:
            return True  # read again from the positions the other catch-up reached
        log_failures(failures)
        return new_position < head  # every view is at new_position now: no need to read it back

    def positions(self) -> dict[str, int]:
        """Every view's position, in one statement."""
        arguments = [self.application.name] * len(self.views)
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(self._select_positions, arguments).fetchall()
        found = {row["view_name"]: int(row["notification_id"]) for row in rows}
        return {view.name: found.get(view.name, 0) for view in self.views}

    def _commit(
        self,
        views: Sequence[TrackedView],
        positions: dict[str, int],
        events: Sequence[DecodedEvent],
        new_position: int,
    ) -> list[ProjectionFailure]:
        """The batch for every view at once; when a view fails, again with each view's part contained.

        The common case pays nothing for containment: savepoints are taken only after a failure.
        """
        try:
            return self._apply(views, positions, events, new_position, contain=False)
        except ViewFailed:
            pass  # retried outside the handler, so a failure's log shows its own cause, not this one
        return self._apply(views, positions, events, new_position, contain=True)

    def _apply(
        self,
        views: Sequence[TrackedView],
        positions: dict[str, int],
        events: Sequence[DecodedEvent],
        new_position: int,
        *,
        contain: bool,
    ) -> list[ProjectionFailure]:
        failures: list[ProjectionFailure] = []
        with self.database.transaction() as tx:
            for view in views:
                position = positions[view.name]
                if position >= new_position:
                    continue  # ahead of this batch, e.g. while another view is rebuilt
                if not view.advance(tx, position, new_position):
                    raise _Overtaken
                unseen = [event for event in events if event.position > position]
                failures += view.apply_events(tx, unseen, contain=contain)
            record_failures(tx, failures)
        return failures
