"""Read models in tests: one view by name, a catch-up stopped after some batches, rebuilds, and every row."""

from __future__ import annotations

from typing import Any

from composition.services import Services
from projections.catch_up import CatchUp
from projections.containment import log_failures
from projections.failures import ProjectionFailure, clear_failures, record_failures
from projections.reading import read_batch
from projections.tracked_view import TrackedView

FLOAT_DIGITS = 6
"""Sums reached by adding in another order differ in the last bits; rows compare rounded to this."""


def view_named(services: Services, name: str) -> TrackedView:
    """The tracked view of the read model called `name`."""
    for tracked in services.projector.runners:
        if tracked.name == name:
            return tracked
    raise KeyError(name)


def catch_up(tracked: TrackedView, *, batches: int | None = None) -> int:
    """Catch one view up (or only `batches` batches of the way, like a process stopped); its position."""
    driver = CatchUp(tracked.application, tracked.database, [tracked])
    if batches is None:
        driver.run()
    else:
        for _ in range(batches):
            if not driver.step():
                break
    return view_position(tracked)


def view_position(tracked: TrackedView) -> int:
    with tracked.database.transaction(commit=False) as tx:
        return tracked.read_position(tx)


def drop_tables(tracked: TrackedView) -> None:
    """The view's tables and tracking row gone, and its recorded failures with them."""
    with tracked.database.transaction() as tx:
        for table in (*tracked.projection.tables, tracked.projection.tracking_table):
            tx.execute(f"DROP TABLE IF EXISTS {table}")
        clear_failures(tx, tracked.name)


def replay_from_scratch(services: Services, *names: str) -> None:
    """The named views (default: all) dropped, created again and caught up from the first event."""
    for tracked in services.projector.runners:
        if not names or tracked.name in names:
            drop_tables(tracked)
            tracked.create_tables()
            catch_up(tracked)


def rebuild_in_place(tracked: TrackedView) -> tuple[int, list[ProjectionFailure]]:
    """Every event applied again to the emptied view in one transaction; its position and failures.

    Readers keep the old view until the new one commits, and a database failure leaves the old one
    as it was. The view's recorded failures are cleared first, so their events are tried again.
    (`workflow-service rebuild` builds beside the live view instead: `projections.rebuild`.)
    """
    failures: list[ProjectionFailure] = []
    application = tracked.application
    with tracked.database.transaction() as tx:
        tracked.set_position(tx, 0)  # first: the tracking row is the view's lock against other catch-ups
        for table in tracked.projection.tables:
            tx.execute(f"DELETE FROM {table}")  # noqa: S608 - the view's own table names
        clear_failures(tx, tracked.name)
        head = application.recorder.max_notification_id() or 0
        reached = 0
        while reached < head:
            events, reached = read_batch(application, [tracked], reached, head, tracked.batch_size)
            failures += tracked.apply_events(tx, events, contain=True)
        tracked.set_position(tx, reached)
        record_failures(tx, failures)
    log_failures(failures)
    return reached, failures


def view_rows(services: Services, *names: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the named views' tables (default: all), sorted, floats rounded, by table."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with services.database.transaction(commit=False) as tx:
        for tracked in services.projector.runners:
            if names and tracked.name not in names:
                continue
            for table in tracked.projection.tables:
                found = tx.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
                rows[table] = sorted((_rounded(dict(row).values()) for row in found), key=repr)
    return rows


def _rounded(values: Any) -> tuple[Any, ...]:
    return tuple(round(value, FLOAT_DIGITS) if isinstance(value, float) else value for value in values)
