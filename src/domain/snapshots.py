"""Snapshots of long workflows, so a write loads the latest snapshot and a few events, not the whole stream.

A snapshot holds the whole state of a workflow, content included, so it is sealed with the
workflow's data key like its events (`Workflow.Snapshot` is `Sealed`): erasing the key makes it
unreadable too. Snapshots are a cache: a store without any (an old one, or `WFS_SNAPSHOT_INTERVAL=0`)
loads the same aggregates by replaying every event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, LRUCache, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore, IntegrityError

from domain.workflow import Workflow

SNAPSHOT_INTERVAL_VARIABLE = "WFS_SNAPSHOT_INTERVAL"
DEFAULT_SNAPSHOT_INTERVAL = 20
"""A snapshot every this many events of a workflow; chosen by scripts/bench_history.py.

Each event a load replays costs a read of the workflow's data key, so a load after a snapshot
replays at most this many: a write on a workflow of any length then costs about what it costs on a
new workflow of half this many versions, and one write in this many stores a snapshot too.
"""
SNAPSHOTTED = (Workflow,)
"""The aggregate types that get snapshots: runs and run-number claims have short streams."""
UNSNAPSHOTTED_IDS_REMEMBERED = 100_000

log = logging.getLogger(__name__)


def snapshot_interval(value: str | None) -> int:
    """The interval from its environment variable: a whole number of events, 0 to take and read none."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_SNAPSHOT_INTERVAL
    if not (text.isascii() and text.isdigit()) or int(text) == 1:
        raise ValueError(
            f"{SNAPSHOT_INTERVAL_VARIABLE} must be 0 (off) or a whole number from 2, not {value!r}"
        )
    return int(text)


class Snapshots:
    """Takes a workflow's snapshot after a save that reached a multiple of the interval, or after a
    load that replayed a whole interval of events (a store from before snapshots, a missed one)."""

    def __init__(self, store: EventStore[UUID], interval: int) -> None:
        self.store = store
        self.interval = interval

    def after_save(self, aggregates: Iterable[object], saved_versions: dict[UUID, list[int]]) -> None:
        """Snapshot each saved workflow whose new events include a multiple of the interval.

        The state saved is already in memory, so nothing is read back.
        """
        for aggregate in aggregates:
            if isinstance(aggregate, Workflow) and any(
                version % self.interval == 0 for version in saved_versions.get(aggregate.id, [])
            ):
                self.take(aggregate)

    def after_load(self, aggregate: object, replayed: int) -> None:
        """Snapshot a workflow whose load replayed at least an interval of events after its snapshot."""
        if isinstance(aggregate, Workflow) and replayed >= self.interval:
            self.take(aggregate)

    def take(self, workflow: Workflow) -> None:
        """Store the workflow's state as it is (never an erased one's).

        Its events are committed by now: a snapshot that cannot be stored (erased meanwhile, taken
        by another writer already, an outage) is logged and skipped, never answered as a failed
        write or read; a later save or load tries again.
        """
        if workflow.erased:
            return
        try:
            self.store.put([Workflow.Snapshot.take(workflow)])
        except IntegrityError:
            pass  # another process took the same one
        except Exception:
            log.warning(
                "no snapshot of workflow %s at version %d", workflow.id, workflow.version, exc_info=True
            )

    def latest(self, aggregate_id: UUID, at_most: int | None = None) -> Any:
        """The latest snapshot at or before event version `at_most` (None: any), or None."""
        return next(iter(self.store.get(aggregate_id, desc=True, limit=1, lte=at_most)), None)


class SnapshotRepository(Repository[UUID]):
    """Loads from the latest snapshot when an aggregate may have one.

    Runs and run-number claims never have one, so once this process has seen an id of theirs (saved
    or loaded it), loading it skips the look-up in the snapshot table.
    """

    def __init__(self, event_store: EventStore[UUID], snapshots: Snapshots | None) -> None:
        super().__init__(event_store, snapshot_store=None if snapshots is None else snapshots.store)
        self.snapshots = snapshots
        self._unsnapshotted: LRUCache[UUID, bool] = LRUCache(maxsize=UNSNAPSHOTTED_IDS_REMEMBERED)

    def remember(self, aggregates: Iterable[object]) -> None:
        """Note the ids of aggregates that never have snapshots."""
        for aggregate in aggregates:
            if isinstance(aggregate, Aggregate) and not isinstance(aggregate, SNAPSHOTTED):
                self._unsnapshotted.put(aggregate.id, True)

    def _reconstruct_aggregate(
        self, aggregate_id: UUID, version: int | None, projector_func: Callable[..., Any]
    ) -> Any:
        snapshot = None
        if self.snapshots is not None and not self._never_snapshotted(aggregate_id):
            snapshot = self.snapshots.latest(aggregate_id, at_most=version)
        start = 0 if snapshot is None else snapshot.originator_version
        events = list(self.event_store.get(aggregate_id, gt=start or None, lte=version))
        aggregate = projector_func(None, [snapshot, *events] if snapshot is not None else events)
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} not found.")
        self.remember([aggregate])
        if self.snapshots is not None and version is None:
            self.snapshots.after_load(aggregate, replayed=len(events))
        return aggregate

    def _never_snapshotted(self, aggregate_id: UUID) -> bool:
        try:
            return self._unsnapshotted.get(aggregate_id)
        except KeyError:
            return False
