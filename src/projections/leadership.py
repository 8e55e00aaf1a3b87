"""One projection leader among every process and host on PostgreSQL, woken by NOTIFY; the others wait on it.

Leadership is a session-level advisory lock on a connection of its own, so it ends with the
leader's session: a clean stop, a killed process, a host cut off (keepalives). Nothing depends on
there being exactly one applier for correctness (each batch moves the tracking rows with a
compare-and-set), only for efficiency: so a process that waited too long catches up itself.
"""

from __future__ import annotations

import logging
import threading
import time

from projections.projector import Projector
from store.notifications import APPLIED_CHANNEL, PROJECTION_LEADER_LOCK, ListeningSession, SessionLost

log = logging.getLogger("projections.leadership")

TICK_SECONDS = 0.05
"""The longest the thread waits for a notification before it looks at the clock (and at `stop`, when
the wake-up `stop` sends could not be delivered); an idle wake-up costs microseconds."""
LOCK_RETRY_SECONDS = 1.0
"""How often a process that does not lead tries the lock: the fail-over time, once the session ends."""
SAFETY_POLL_SECONDS = 5.0
"""How often the leader catches up unprompted, in case a notification was missed."""
RETRY_SECONDS = 1.0
"""The pause after a failed catch-up or a lost session before trying again."""


class AppliedPosition:
    """The highest position every read model is known to have reached, for threads to wait on."""

    def __init__(self) -> None:
        self._position = 0
        self._changed = threading.Condition()

    def advance(self, position: int) -> None:
        with self._changed:
            if position > self._position:
                self._position = position
                self._changed.notify_all()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Whether every read model reached `position` within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._position >= position, timeout)


class ProjectionLeadership:
    """Runs in every API process on PostgreSQL; the process that holds the lock applies the events.

    The leader catches up when the store announces a write (the library's NOTIFY on the events
    table), and every few seconds in case one was missed, and announces on `APPLIED_CHANNEL` each
    position it reached. Every process hears those announcements and wakes the requests waiting in
    `wait_until_applied`; the processes that do not lead try the lock every second.
    """

    def __init__(self, projector: Projector, url: str, events_channel: str) -> None:
        self.projector = projector
        self.url = url
        self.events_channel = events_channel
        self.applied = AppliedPosition()
        self._failing = False
        self._published = 0
        self._session: ListeningSession | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projection-leadership", daemon=True)

    @property
    def leading(self) -> bool:
        """Whether this process applies the events now (exposed as `wfs_projection_leader`)."""
        return self.projector.leading

    def start(self) -> None:
        """Connect and try the lock before returning, so that a lone process leads from its first request."""
        try:
            self._session = self._connect()
            self._try_to_lead(self._session)
        except SessionLost as error:
            self._lost(error)
        self._thread.start()

    def stop(self) -> None:
        """Release the lock (by closing the session): another process takes over within a second."""
        self._stopped.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._drop_session()

    def _wake(self) -> None:
        """End the thread's wait for a notification, so a stop (and the hand-over) takes milliseconds."""
        session = self._session
        if session is None or not self._thread.is_alive():
            return
        try:
            with self.projector.database.transaction() as tx:
                tx.execute("SELECT pg_notify(?, '')", (session.wake_channel,))
        except Exception:  # the thread still sees `stop` within a tick
            log.debug("waking the projection leadership thread failed", exc_info=True)

    def wait_until_applied(self, position: int, timeout: float) -> bool:
        return self.applied.wait_for(position, timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if self._session is None:
                    self._session = self._connect()
                self._follow(self._session)
            except SessionLost as error:
                self._lost(error)
                self._stopped.wait(RETRY_SECONDS)
        self._drop_session()

    def _follow(self, session: ListeningSession) -> None:
        """Until stopped or the session fails: lead if the lock is free, pass announcements on."""
        next_lock_try = 0.0
        next_poll = 0.0
        while not self._stopped.is_set():
            now = time.monotonic()
            if not self.leading and now >= next_lock_try:
                self._try_to_lead(session)
                next_lock_try = now + LOCK_RETRY_SECONDS
                next_poll = now  # a new leader catches up at once: events may have waited for one
            if self.leading and now >= next_poll:
                next_poll = now + (SAFETY_POLL_SECONDS if self._lead(session) else RETRY_SECONDS)
            if self._receive(session):
                next_poll = 0.0

    def _connect(self) -> ListeningSession:
        session = ListeningSession.connect(self.url, [self.events_channel, APPLIED_CHANNEL], "projections")
        if self._failing:
            log.info("projection leadership: connected to the store again")
        self._failing = False
        try:  # announcements may have been missed while disconnected
            self.applied.advance(self.projector.applied())
        except Exception:
            log.debug("reading the read models' positions failed", exc_info=True)
        return session

    def _try_to_lead(self, session: ListeningSession) -> None:
        if session.try_lock(PROJECTION_LEADER_LOCK):
            self.projector.leading = True
            log.info("this process now leads the projections: it applies new events to the read models")

    def _lead(self, session: ListeningSession) -> bool:
        """Catch every view up and announce where they are; False if the store refused (retried soon)."""
        try:
            self.projector.catch_up()
            self._publish(session)
        except SessionLost:
            raise
        except Exception:
            log.exception("the projection leader could not catch the read models up; retrying")
            return False
        return True

    def _publish(self, session: ListeningSession) -> None:
        position = self.projector.applied()
        if position > self._published:
            session.notify(APPLIED_CHANNEL, str(position))
            self._published = position
        self.applied.advance(position)

    def _receive(self, session: ListeningSession) -> bool:
        """Pass announcements on; whether any event was stored since the last call."""
        stored = False
        for notification in session.receive(TICK_SECONDS):
            if notification.channel != APPLIED_CHANNEL:
                stored = True
            elif notification.payload.isdigit():
                self.applied.advance(int(notification.payload))
        return stored

    def _lost(self, error: SessionLost) -> None:
        if self.leading:
            log.warning(
                "projection leadership lost with its store session (%s); another process takes over", error
            )
        elif not self._failing:
            log.warning("projection leadership: cannot reach the store (%s); retrying every second", error)
        self._failing = True
        self._drop_session()

    def _drop_session(self) -> None:
        """Closing the session releases the lock."""
        self.projector.leading = False
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:
                log.debug("closing the leadership session failed", exc_info=True)
