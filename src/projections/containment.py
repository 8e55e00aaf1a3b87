"""Failure containment: an event a view cannot apply is rolled back alone, recorded, logged and skipped."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from projections.failures import ProjectionFailure, is_transient
from projections.read_model import ReadModel
from projections.reading import DecodedEvent
from store.database import Tx

log = logging.getLogger("projections.containment")


class ViewFailed(Exception):
    """A view could not apply an event: the batch is rolled back and applied again, view by view."""


def apply_all(projection: ReadModel, tx: Tx, events: Sequence[DecodedEvent]) -> None:
    """Every event, uncontained: the first failure raises `ViewFailed` (or itself, when transient)."""
    for event in events:
        try:
            projection.apply(event.event, tx)
        except Exception as error:
            if is_transient(error):
                raise
            raise ViewFailed from error


def apply_contained(projection: ReadModel, tx: Tx, events: Sequence[DecodedEvent]) -> list[ProjectionFailure]:
    """All the events under one savepoint; when that fails, each under its own."""
    if not events:
        return []
    try:
        with savepoint(tx):
            for event in events:
                projection.apply(event.event, tx)
        return []
    except Exception as error:
        if is_transient(error):
            raise
        if len(events) == 1:
            return [ProjectionFailure.of(projection.name, events[0].position, events[0].topic, error)]
    return [failure for event in events for failure in apply_contained(projection, tx, [event])]


@contextmanager
def savepoint(tx: Tx) -> Iterator[None]:
    """Undo only what the block changed when it raises, keeping the rest of the transaction."""
    tx.execute("SAVEPOINT view_part")
    try:
        yield
    except BaseException:
        tx.execute("ROLLBACK TO SAVEPOINT view_part")
        tx.execute("RELEASE SAVEPOINT view_part")
        raise
    tx.execute("RELEASE SAVEPOINT view_part")


def log_failures(failures: Sequence[ProjectionFailure]) -> None:
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
