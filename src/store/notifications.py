"""A dedicated PostgreSQL session, never pooled: LISTEN/NOTIFY and a session-level advisory lock.

The library's PostgreSQL recorder sends `NOTIFY <events table>` in every transaction that stores
events, so a listener hears each write once it commits, from any process or host. A session-level
advisory lock is held until the session ends: closed, or its process killed (the server sees the
socket close) or cut off (the keepalives below notice within seconds).
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import psycopg
from psycopg import Notify, sql

from store.outage import POSTGRES_CONNECTION_OPTIONS

PROJECTION_LEADER_LOCK = 7310433
"""The advisory lock the projection leader holds (7310431 serialises table creation, 7310432 rebuilds)."""
APPLIED_CHANNEL = "wfs_views_applied"
"""Where the projection leader announces, as the payload, a position every read model has reached."""
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2"
"""So that the server, too, drops the session (and its lock) of a host that vanished, within ~10 s."""


class SessionLost(Exception):
    """The dedicated session failed: its lock, if it held one, is gone; connect again."""


class ListeningSession:
    """One autocommit connection of its own, used by one thread only.

    It also listens on a channel of its own, `wake_channel`: a NOTIFY there (from any connection)
    ends a wait in `receive` at once, so the thread that owns the session can be stopped promptly.
    """

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self.wake_channel = f"wfs_wake_{uuid.uuid4().hex}"

    @classmethod
    def connect(cls, url: str, channels: list[str], role: str) -> ListeningSession:
        """Connect and LISTEN; `role` names the session in pg_stat_activity, with the pid and host."""
        name = f"workflow-service {role} pid {os.getpid()} on {socket.gethostname()}"[:63]
        try:
            connection = psycopg.connect(
                url,
                autocommit=True,
                application_name=name,
                options=SERVER_KEEPALIVES,
                **POSTGRES_CONNECTION_OPTIONS,
            )
        except psycopg.Error as error:
            raise SessionLost(str(error)) from error
        session = cls(connection)
        try:
            for channel in [*channels, session.wake_channel]:
                session._execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except SessionLost:
            connection.close()
            raise
        return session

    def try_lock(self, key: int) -> bool:
        """Take the session-level advisory lock if nobody holds it; held until this session ends."""
        row = self._execute(sql.SQL("SELECT pg_try_advisory_lock(%s)"), (key,))
        return bool(row and row[0])

    def notify(self, channel: str, payload: str) -> None:
        self._execute(sql.SQL("SELECT pg_notify(%s, %s)"), (channel, payload))

    def receive(self, timeout: float) -> list[Notify]:
        """Whatever has arrived, waiting up to `timeout` for the first notification (or a wake-up)."""
        try:
            received = list(self._connection.notifies(timeout=timeout, stop_after=1))
            if received:
                received += self._connection.notifies(timeout=0)
        except psycopg.Error as error:
            raise SessionLost(str(error)) from error
        return [notification for notification in received if notification.channel != self.wake_channel]

    def close(self) -> None:
        self._connection.close()

    def _execute(
        self, query: sql.SQL | sql.Composed, params: tuple[Any, ...] | None = None
    ) -> tuple[Any, ...] | None:
        try:
            cursor = self._connection.execute(query, params)
            return cursor.fetchone() if cursor.description else None
        except psycopg.Error as error:
            raise SessionLost(str(error)) from error
