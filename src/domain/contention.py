"""Writers of one aggregate take turns: a lock per aggregate in a process, retries across processes."""

from __future__ import annotations

import random
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from time import monotonic

from domain.errors import Busy

FIRST_PAUSE_SECONDS = 0.005
LONGEST_PAUSE_SECONDS = 0.2


class Turns:
    """A lock per key while some writer holds or awaits it; forgotten when its last writer leaves."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def turn(self, key: Hashable, deadline: float, busy: str) -> Iterator[bool]:
        """Hold `key`'s turn; yields whether another writer went first. Busy if not given by `deadline`."""
        lock = self._join(key)
        try:
            waited = not lock.acquire(blocking=False)
            if waited and not lock.acquire(timeout=max(0.0, deadline - monotonic())):
                raise Busy(busy)
            try:
                yield waited
            finally:
                lock.release()
        finally:
            self._leave(key)

    def __len__(self) -> int:
        return len(self._locks)

    def _join(self, key: Hashable) -> threading.Lock:
        with self._guard:
            lock, writers = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, writers + 1)
            return lock

    def _leave(self, key: Hashable) -> None:
        with self._guard:
            lock, writers = self._locks[key]
            if writers == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, writers - 1)


def pause_before_retry(attempt: int, deadline: float, busy: str) -> float:
    """A jittered, growing pause after losing a race to another process; Busy if it would pass `deadline`."""
    pause = random.uniform(0, min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2**attempt))
    if monotonic() + pause >= deadline:
        raise Busy(busy)
    return pause
