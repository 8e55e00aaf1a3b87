"""Group commit: concurrent saves in one process share one insert transaction.

The event table's lock lets one insert transaction commit at a time, so while one is in flight the
saves that arrive wait in a queue, and the next leader inserts all of them at once: a lone save
commits at once, with no added wait, and sixteen concurrent ones share a commit or two.
A shared insert that fails on a clash (IntegrityError) or on one event's data is tried again save
by save, so only the clashing save fails; an outage fails the whole group, and those queued behind
it, at once, so none waits for a second connection timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import StoredEvent

from store.outage import is_outage

Insert = Callable[[Sequence[StoredEvent], dict[str, str]], Sequence[int] | None]
"""Stores events and data keys in one transaction; returns the events' positions (notification ids)."""


@dataclass(eq=False)
class _Save:
    """One save waiting for its turn: its events, its new wrapped keys, then its outcome."""

    events: Sequence[StoredEvent]
    keys: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    positions: Sequence[int] | None = None
    error: BaseException | None = None

    def outcome(self) -> Sequence[int] | None:
        if self.error is not None:
            raise self.error
        return self.positions


class GroupCommit:
    """Inserts each save's events, sharing one transaction among the saves that arrive together."""

    def __init__(self, insert: Insert) -> None:
        self._insert = insert
        self._lock = threading.Lock()
        self._queue: list[_Save] = []
        self._busy = False
        self._in_flight = 0

    @property
    def waiting(self) -> int:
        """Saves queued behind the insert in flight."""
        with self._lock:
            return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Saves in the insert now under way."""
        with self._lock:
            return self._in_flight

    def insert(self, events: Sequence[StoredEvent], keys: dict[str, str]) -> Sequence[int] | None:
        mine = _Save(events, keys)
        with self._lock:
            self._queue.append(mine)
            leading = not self._busy
            self._busy = True
        if not leading:
            mine.done.wait()
            if not mine.lead:
                return mine.outcome()
        self._lead()
        return mine.outcome()

    def _lead(self) -> None:
        """Insert everything queued, then hand the lead to the first save that queued meanwhile."""
        with self._lock:
            group, self._queue = self._queue, []
            self._in_flight = len(group)
        try:
            self._commit(group)
        finally:
            self._finish(group)

    def _finish(self, group: list[_Save]) -> None:
        outages = [save.error for save in group if save.error is not None and is_outage(save.error)]
        failed = outages[0] if outages else None
        with self._lock:
            self._in_flight = 0
            if failed is not None:
                for save in self._queue:
                    save.error = failed
                group, self._queue = group + self._queue, []
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].done.set()
            else:
                self._busy = False
        for save in group:
            if save.positions is None and save.error is None and save.events:
                save.error = RuntimeError("the save's group commit ended without storing it")
            save.done.set()

    def _commit(self, group: list[_Save]) -> None:
        if len(group) == 1:
            self._commit_alone(group[0])
            return
        events = [event for save in group for event in save.events]
        keys = {aggregate_id: key for save in group for aggregate_id, key in save.keys.items()}
        try:
            positions = self._insert(events, keys)
        except Exception as error:
            if is_outage(error):
                for save in group:
                    save.error = error
                return
            for save in group:  # a clash or one save's bad data: each alone, so only that one fails
                self._commit_alone(save)
            return
        _share(group, positions)

    def _commit_alone(self, save: _Save) -> None:
        try:
            save.positions = self._insert(save.events, save.keys)
        except Exception as error:
            save.error = error


def _share(group: list[_Save], positions: Sequence[int] | None) -> None:
    """Each save's positions, in the order its events were given."""
    start = 0
    for save in group:
        end = start + len(save.events)
        save.positions = None if positions is None else list(positions[start:end])
        start = end


def insert_with_keys(recorder: Any) -> Insert:
    """The recorder's insert, passing a save's new data keys along (see `store.recorders`)."""

    def insert(events: Sequence[StoredEvent], keys: dict[str, str]) -> Sequence[int] | None:
        result: Sequence[int] | None = recorder.insert_events(events, data_keys=keys)
        return result

    return insert
