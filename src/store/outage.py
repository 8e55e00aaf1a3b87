"""When the database cannot be reached: every wait is bounded, and an outage is told apart from a bug.

The library's PostgreSQL pool would otherwise wait 130 s for a new connection, keep retrying a
dead server for minutes with ever longer pauses, and never notice a connection that went silent;
and its recorder retries every call ten times, which turns a 1 s wait into 12 s.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import ConnectionUnavailableError, StoredEvent
from eventsourcing.postgres import ConnectionPool, PostgresApplicationRecorder, PostgresFactory

from store.recorders import insert_data_keys

CONNECTION_WAIT_SECONDS = 2
"""How long a request waits for a pooled connection before the store counts as unavailable: inside
the contract's 3 s, with room for a new connection to a busy server (1 s gave spurious 503s under load)."""
SQLITE_BUSY_SECONDS = 2
"""How long SQLite waits for another process's write lock before the store counts as unavailable."""
RECONNECT_GIVE_UP_SECONDS = 5.0
"""After this long failing, a pool slot stops retrying by itself; the next request in need tries again."""
POSTGRES_CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2,  # libpq's minimum
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 1500,  # ms: a query whose bytes the server does not acknowledge fails
}

PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle for longer is checked with an empty query before use (pre-ping); one in
use within the last second is not: if it died since, that request answers 503 and the pool replaces it."""
HANDED_OUT = "_wfs_handed_out"

OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
"""Connection, transaction rollback, insufficient resources, operator intervention, system error."""
OUTAGE_SQLSTATES = frozenset({"55P03"})  # lock not available (lock_timeout)
SQLITE_OUTAGE_MESSAGES = ("locked", "busy", "unable to open", "disk i/o")


def _once(method: Any) -> Any:
    """The library's recorder method without its retry loop (a pooled connection is checked instead)."""
    return method.__wrapped__


class PostgresRecorder(PostgresApplicationRecorder):
    """The library's recorder, each call tried once: an outage surfaces within one connection wait."""

    insert_events = _once(PostgresApplicationRecorder.insert_events)
    select_events = _once(PostgresApplicationRecorder.select_events)
    select_notifications = _once(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _once(PostgresApplicationRecorder.max_notification_id)

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """Runs first in the insert's transaction and pipeline: a save's new data keys, with its events."""
        insert_data_keys(curs, kwargs, "%s")


class PostgresStore(PostgresFactory):
    """The library's PostgreSQL infrastructure, with its connection pool's waits bounded."""

    application_recorder_class = PostgresRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        assert isinstance(pool.kwargs, dict)
        pool.kwargs.update(POSTGRES_CONNECTION_OPTIONS)
        pool.reconnect_timeout = RECONNECT_GIVE_UP_SECONDS
        if pool._check is not None:  # POSTGRES_PRE_PING
            pool._check = ping_if_idle


def ping_if_idle(connection: Any) -> None:
    """The pool's check before handing a connection out: a round trip, unless it was handed out
    within PING_AFTER_IDLE_SECONDS (then it worked a moment ago, and a request pays no extra trip)."""
    now = time.monotonic()
    last: float | None = getattr(connection, HANDED_OUT, None)
    setattr(connection, HANDED_OUT, now)
    if last is None or now - last >= PING_AFTER_IDLE_SECONDS or connection.closed:
        ConnectionPool.check_connection(connection)


def is_outage(error: BaseException) -> bool:
    """Whether the store failed for want of a connection, a lock or time, not because of what was asked."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionUnavailableError):
            return True
        if isinstance(seen, psycopg.Error):
            return _is_postgres_outage(seen)
        if isinstance(seen, sqlite3.OperationalError):
            return any(message in str(seen).lower() for message in SQLITE_OUTAGE_MESSAGES)
        seen = seen.__cause__ or seen.__context__
    return False


def _is_postgres_outage(error: psycopg.Error) -> bool:
    state = error.sqlstate
    if state is None:  # raised by the client itself: no connection, connection lost, pool timeout
        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return state[:2] in OUTAGE_SQLSTATE_CLASSES or state in OUTAGE_SQLSTATES
